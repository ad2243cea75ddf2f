"""course_lib.grading.references: results the same for every student, computed once per process.

The oracle is a call counter written by the helper itself: how often the helper really ran."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from course_lib.grading import references
from course_lib.grading.references import reference, warm_references

HELPER = textwrap.dedent('''
    from course_lib.grading import reference

    CALLS = []


    @reference(warm=[(2,), (3,)])
    def table(k):
        CALLS.append(k)
        return {"k": k, "rows": [k] * k}
''')


def _write_course(root: Path, extra: str = "") -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_refs_demo.py").write_text(HELPER + extra)
    return root / "tests"


def _import(path: Path, name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_reference_runs_once_per_arguments_and_hands_out_copies():
    calls = []

    @reference
    def runs(seed):
        calls.append(seed)
        return [seed, seed + 1]

    first = runs(5)
    first.append("changed by a test")  # must not reach the next caller
    assert runs(5) == [5, 6] and runs(6) == [6, 7]
    assert calls == [5, 6]


def test_warming_computes_the_listed_arguments_once_for_every_later_copy_of_the_tests(tmp_path, monkeypatch):
    monkeypatch.setattr(references, "_RESULTS", {})
    monkeypatch.setattr(references, "_WARM", [])
    report = warm_references([_write_course(tmp_path / "zygote_copy"), tmp_path / "no_such_folder"])
    assert report["computed"] == 2 and report["failed"] == []
    # A grading child imports its own copy of the same file (another folder, same tests/<name>):
    # the warmed arguments are not computed again, others are, once.
    child = _import(_write_course(tmp_path / "child_copy") / "test_refs_demo.py", "refs_demo_child")
    assert child.table(3) == {"k": 3, "rows": [3, 3, 3]} and child.table(2)["rows"] == [2, 2]
    assert child.CALLS == []
    assert child.table(4)["k"] == 4 and child.table(4)["k"] == 4
    assert child.CALLS == [4]


def test_zygotes_split_the_warming_and_exchange_their_shares(tmp_path, monkeypatch):
    """Two zygotes each compute one of the two warmed results, pickle it, load the other's: every result
    computed exactly once in all, and a child of either finds both."""
    monkeypatch.setattr(references, "_WARM", [])
    dropped, files = [], []
    for k in (0, 1):
        monkeypatch.setattr(references, "_RESULTS", {})
        report = warm_references([_write_course(tmp_path / f"zygote_{k}")], share=(k, 2))
        dropped.append(sys.modules.get("_course_warm_tests_test_refs_demo") is None)  # the test module is forgotten
        assert report["computed"] == 1 and len(report["keys"]) == 1
        files.append(tmp_path / f"share-{k}.pkl")
        assert references.save_results(files[-1], report["keys"]) == 1
    assert all(dropped)
    monkeypatch.setattr(references, "_RESULTS", {})
    assert references.load_results(files) == 2 and not any(f.exists() for f in files)  # deleted once loaded
    child = _import(_write_course(tmp_path / "child_copy") / "test_refs_demo.py", "refs_demo_child2")
    assert child.table(2) == {"k": 2, "rows": [2, 2]} and child.table(3)["rows"] == [3, 3, 3]
    assert child.CALLS == []


def test_a_shared_key_gives_two_helpers_the_same_results():
    calls = []

    @reference(key="h13.shared_demo")
    def shipped(rank):
        calls.append(("shipped", rank))
        return rank * 10

    @reference(key="h13.shared_demo")
    def hidden(rank):
        calls.append(("hidden", rank))
        return rank * 10

    assert shipped(3) == 30 and hidden(3) == 30 and hidden(4) == 40
    assert calls == [("shipped", 3), ("hidden", 4)]


def test_warming_reports_a_broken_file_or_helper_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(references, "_RESULTS", {})
    monkeypatch.setattr(references, "_WARM", [])
    folder = _write_course(tmp_path / "copy", extra=textwrap.dedent('''

        @reference(warm=[()])
        def broken():
            raise ValueError("calibration data missing")
    '''))
    (folder / "test_syntax_error.py").write_text("def oops(:\n")
    report = warm_references([folder])
    assert report["computed"] == 2
    assert any(f.startswith("test_syntax_error.py: SyntaxError") for f in report["failed"]), report
    assert any("broken()" in f and "calibration data missing" in f for f in report["failed"]), report


def test_asserts_rewritten_once_give_the_same_report_with_the_childs_own_path(tmp_path, monkeypatch):
    """What the zygote does before forking (rewrite_once) and each child after (use_rewritten): pytest's
    report of a failed assert still shows the compared values, and the file is the child's copy."""
    import pytest
    from _pytest.assertion import rewrite

    body = "def test_cmp():\n    got = [1, 2]\n    assert got == [1, 3]\n"
    for where in ("zygote", "child"):
        (tmp_path / where / "tests").mkdir(parents=True)
        (tmp_path / where / "tests" / "test_h13_cmp.py").write_text(body)
    monkeypatch.setattr(references, "_REWRITTEN", {})
    assert references.rewrite_once([tmp_path / "zygote" / "tests"]) == 1
    calls = []
    original = rewrite._rewrite_test
    monkeypatch.setattr(rewrite, "_rewrite_test", lambda fn, config: calls.append(fn) or original(fn, config))
    references.use_rewritten()

    class Report:
        longrepr = None

        def pytest_runtest_logreport(self, report):
            if report.when == "call" and report.failed:
                Report.longrepr = str(report.longrepr)

    monkeypatch.syspath_prepend(str(tmp_path / "child" / "tests"))
    monkeypatch.delitem(sys.modules, "test_h13_cmp", raising=False)
    pytest.main([str(tmp_path / "child" / "tests"), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path / "child"),
                 "-p", "no:randomly"], plugins=[Report()])
    sys.modules.pop("test_h13_cmp", None)
    mine = [c for c in calls if Path(c).name == "test_h13_cmp.py"]  # plugins' own modules are rewritten as usual
    assert mine == [], "pytest rewrote the test file again instead of taking the rewritten code"
    assert Report.longrepr and "assert [1, 2] == [1, 3]" in Report.longrepr, Report.longrepr
    # pytest names the file relative to where it was started when it can (a checkout under /tmp and
    # tmp_path under /tmp give "../pytest-of-root/.../child/tests/..."): the child's copy, either way.
    assert "child/tests/test_h13_cmp.py" in Report.longrepr, Report.longrepr
    assert "zygote/tests/test_h13_cmp.py" not in Report.longrepr, Report.longrepr
