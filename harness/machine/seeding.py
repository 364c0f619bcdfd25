"""Seeds and determinism switches, set before every (seed, device) run."""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

from harness import CUBLAS_WORKSPACE
from harness.machine import device


def seed_everything(seed: int, deterministic: bool = True, on: str = "cpu") -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device); optionally force deterministic kernels.

    On CUDA, deterministic matrix products need ``CUBLAS_WORKSPACE_CONFIG`` set before the first CUDA call:
    the harness sets it when imported (``harness/__init__.py``); a run that finds it changed is warned.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    dev = device.get(on)
    if deterministic and dev.is_cuda and os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in (CUBLAS_WORKSPACE,
                                                                                          ":16:8"):
        warnings.warn("CUBLAS_WORKSPACE_CONFIG is not :4096:8 or :16:8: cuBLAS may not be deterministic", stacklevel=2)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    dev.set_deterministic(deterministic)


def generator(seed: int, device: str = "cpu") -> torch.Generator:
    """A private generator, so a task's data draws do not depend on what ran before it."""
    return torch.Generator(device=device).manual_seed(seed)
