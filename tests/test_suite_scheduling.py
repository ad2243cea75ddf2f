"""`make test`'s two workers take whole test files (conftest.py's scheduler), so that a module's
expensive fixture (a graded batch of submissions) is built once, not on each worker.

xdist's own per-file grouping (an `xdist_group` marker) silently stopped working with pytest 9.2:
every file was spread over both workers and the suite built its graded batches twice. This test
runs a small suite the way `make test` does and checks where each test ran.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each test records (file, test, worker, how many times its module's fixture was built so far).
_PROBE = textwrap.dedent('''
    import json, os, pytest
    BUILT = []

    @pytest.fixture(scope="module")
    def batch():
        BUILT.append(1)
        return len(BUILT)

    @pytest.mark.parametrize("k", range({n}))
    def test_probe(batch, k):
        with open(os.environ["PROBE_LOG"], "a") as f:
            f.write(json.dumps([__name__, k, os.environ.get("PYTEST_XDIST_WORKER"), batch]) + "\\n")
''')


def test_make_test_keeps_each_file_on_one_worker_and_spreads_the_notebook_runs(tmp_path):
    suite = tmp_path / "tests"
    suite.mkdir()
    shutil.copy(ROOT / "tests" / "conftest.py", suite / "conftest.py")
    for name, n in [("test_a", 12), ("test_b", 12), ("test_browser", 8)]:   # test_browser.py: spread one by one
        (suite / f"{name}.py").write_text(_PROBE.format(n=n))
    log = tmp_path / "log.jsonl"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")   # none of the course's settings: only the scheduler
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    env["PROBE_LOG"] = str(log)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
         "--no-loadscope-reorder", "-c", str(tmp_path / "pytest.ini"), str(suite)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 32
    workers = {m: {w for mod, _, w, _ in rows if mod == m} for m in ("test_a", "test_b", "test_browser")}
    assert len(workers["test_a"]) == 1 and len(workers["test_b"]) == 1, workers
    assert all(built == 1 for mod, _, _, built in rows if mod != "test_browser"), "a module's fixture built twice"
    assert len(workers["test_browser"]) == 2, f"the notebook runs should be spread over both workers: {workers}"
    # Each file's tests keep their order.
    for m in ("test_a", "test_b"):
        assert [k for mod, k, _, _ in rows if mod == m] == list(range(12))

