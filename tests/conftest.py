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


# Hypothesis profiles for tests/test_fuzz.py: "ci" (default) is a fixed, derandomized budget with
# no deadline (a loaded machine must not fail it); "thorough" runs longer, by hand:
# pytest tests/test_fuzz.py --hypothesis-profile=thorough
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", max_examples=20, derandomize=True, deadline=None, print_blob=True,
                                   database=None)
    _hyp_settings.register_profile("thorough", max_examples=300, deadline=None, database=None)
    _hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a dev requirement; without it only the fuzz test cannot run
    pass
