"""d2l-cnn-harness: re-runs the CNN chapter of Dive into Deep Learning (PyTorch) and judges it against the book."""

import logging

import torch


def _quiet_cuda_home_notice() -> None:
    """Keep torch's "No CUDA runtime is found, using CUDA_HOME=..." off a CPU-only run.

    torch.utils.cpp_extension logs it when it is imported (by torch.utils.benchmark's C++ timer support and by
    torch.compile's C++ backend, both used here) on a machine that has nvcc on its PATH but no usable GPU. It
    concerns building CUDA extensions, which the harness never does; only that module's logger is turned down,
    and only where CUDA is unavailable.
    """
    if not torch.cuda.is_available():
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


_quiet_cuda_home_notice()
