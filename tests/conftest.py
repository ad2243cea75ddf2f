"""Suite-wide settings: CPU thread count, the `gpu` and `browser` markers' skip rules."""

import os

import pytest
import torch

# Tiny models run as fast on one thread as on two, and the other core stays free for the
# notebook kernels the suite starts.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA (none on this machine)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
