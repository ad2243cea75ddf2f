"""Suite-wide settings: CPU thread count, the `gpu` marker's skip rule, and the order in which
`make test`'s two workers (pytest-xdist, ``--dist loadgroup``) take the tests."""

import os

import pytest
import torch

# Tiny models run as fast on one thread as on two, and the other core stays free for the
# notebook kernels the suite starts.
torch.set_num_threads(1)


# `make test` runs the suite on two workers (pytest-xdist). Why two on two cores: most of the
# suite's time is a notebook kernel, a browser or a grading child doing the work while the test
# itself waits, so one process leaves a core idle much of the time. Measured on a 2-core machine:
# 35 min in one process, 22 min on two workers (1.2 cores busy on average).
# 1. Each file's tests stay together, in order, on one worker: a module's expensive fixture (a graded
#    batch, a server) is then built once. The scheduler below does this (`pytest_xdist_make_scheduler`).
#    xdist's own grouping, an `xdist_group` marker per file, does not work with pytest 9.2: xdist 3.8
#    writes the group into `item._nodeid`, which pytest 9.2 no longer reads. The files' tests were
#    spread over both workers, and test_grading.py's two graded batches (~150 s and ~80 s) were each
#    built on both.
# 2. Except the notebook runs, which are independent and the longest single tests: spread one by one.
# 3. The longest work goes first (with --no-loadscope-reorder, xdist keeps this order), so no worker
#    is left alone with a long file at the end. Seconds of the serial suite on 2 cores, roughly.
_SPREAD = {"test_browser.py", "test_notebooks.py"}
_LONG_FIRST = [
    "test_grading.py",            # ~450 s: two graded batches (CPU-bound: both cores)
    "test_browser.py",            # ~850 s, in 17 notebook runs of 30-130 s (much of it waiting on the page)
    "test_grading_audit.py",      # ~320 s: the audit, and the same grading under load (after the first
                                  # browser runs: two grading files at once oversubscribe the cores)
    "test_notebooks.py",          # ~350 s, in 13 notebook runs
    "test_browser_lecture.py",
    "test_scaling.py",
    "test_demos_on_lesson_panels.py",
    "test_benchmarks.py",
    "test_grading_isolation.py",
    "test_hub.py",
]


def _work_unit(nodeid: str) -> str:
    """What one worker takes whole: a test file (``tests/test_x.py``), or one test of the spread files."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path.rsplit("/", 1)[-1] in _SPREAD else path


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` (make test): whole files per worker (see 1. above), in collection order."""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    return _ByFile(config, log)


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA (none on this machine)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
    rank = {name: i for i, name in enumerate(_LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: each file keeps its order


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
