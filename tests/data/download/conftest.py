"""Fixtures for `data download` tests (the helpers live in ``download_helpers``)."""

from __future__ import annotations

import pytest
from download_helpers import LocalServer


@pytest.fixture
def server():
    running = LocalServer()
    yield running
    running.close()


@pytest.fixture(scope="session")
def tiny_sd_model(tmp_path_factory):
    """The folder of a tiny random Stable Diffusion pipeline (built once per test session)."""
    from download_helpers import build_tiny_stable_diffusion

    folder = tmp_path_factory.mktemp("tiny-sd")
    build_tiny_stable_diffusion(folder)
    return str(folder)


@pytest.fixture
def one_torch_thread():
    """Run the tiny pipeline on one thread: with several test processes on 2 shared cores,
    torch's thread pool oversubscribes the CPU and a 0.3 s test takes 5 s."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
