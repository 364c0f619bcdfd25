"""pytest-benchmark: record torch, CUDA, cuDNN and the devices with every saved benchmark run; the real data."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def fashion_mnist():
    """The real Fashion-MNIST in memory, or a skip that says where it was looked for."""
    from harness.book import data as D

    try:
        return D.load_fashion_mnist()
    except D.DataError as err:
        pytest.skip(str(err))


def pytest_benchmark_update_machine_info(config, machine_info):
    import torch

    from harness.machine import env

    fp = env.fingerprint()
    machine_info["torch"] = {
        "version": fp["torch"],
        "cuda": fp["torch.cuda"],
        "cudnn": fp["cudnn"],
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }
    machine_info["devices"] = {
        "cpu": fp["cpu.model"],
        "cpu_count": fp["cpu.count"],
        "cuda_available": env.cuda_available(),
        "gpu": fp["gpu.model"],
        "gpu_count": fp["gpu.count"],
    }
    machine_info["harness"] = {"git_commit": fp["git.commit"], "git_dirty": fp["git.dirty"],
                               "numpy": fp["numpy"], "python": fp["python"]}
