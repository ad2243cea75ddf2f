"""course_lib.grading: extraction, the pytest plugin, check()/check_all() and the batch grader.

Two courses are graded here:

* a tiny demo course built in a tmp folder (tests/fixtures/submissions/make_submissions.py), for
  the engine: every kind of broken submission, exact gradebook, feedback, check() in a kernel;
* the course's real content (solutions/, exercises/, grading/): every grading test passes on the
  solutions and fails on the untouched student copies, and the synthetic submissions built from
  them (all correct, untouched, syntax error, infinite loop, sys.exit, half right, file vandal,
  print flood, memory hog) give exactly the expected gradebook in bounded time, with every
  student file unchanged (sha256 before and after).
"""

import csv
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from course_lib import grading
from course_lib.grading import assign, batch, extract

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ms = _load(ROOT / "tests" / "fixtures" / "submissions" / "make_submissions.py", "make_submissions_for_tests")


def hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cell(source, tags=(), ex=None):
    c = nbformat.v4.new_code_cell(textwrap.dedent(source))
    if tags:
        c.metadata["tags"] = list(tags)
    if ex:
        c.metadata["exercise"] = {"id": ex, "title": f"title {ex}"}
    return c


def write_nb(path: Path, cells) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=cells)
    path.write_text(assign.render_notebook(json.loads(nbformat.writes(nb))))
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return ms.build_demo_course(tmp_path_factory.mktemp("demo"))


# ---- import hygiene ----------------------------------------------------------------------------


def test_grading_imports_neither_plotting_nor_widgets_nor_pytest():
    code = ("import sys, course_lib.grading, course_lib.grading.assign; "
            "print([m for m in ('matplotlib', 'ipywidgets', 'pytest', 'course_lib.ui') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"course_lib.grading pulled in {out.stdout.strip()}"


# ---- extraction --------------------------------------------------------------------------------


def test_only_tagged_cells_run_and_a_failing_cell_costs_only_its_exercise(tmp_path):
    write_nb(tmp_path / "01_demo_exercises.ipynb", [
        cell("RAN_UNTAGGED = True\nraise RuntimeError('prose cells never run')\n"),
        cell("import math\nSCALE = 2\n", tags=["setup"]),
        cell("1 / 0\n", tags=["setup"]),
        cell("def good(x):\n    return SCALE * x\n", tags=["exercise"], ex="1.1"),
        cell("def half(x):\n    return x\nundefined_name\n", tags=["exercise"], ex="1.2"),
        cell("def broken(:\n    pass\n", tags=["exercise"], ex="1.3"),
        cell("import sys\nsys.exit(3)\n", tags=["exercise"], ex="1.4"),
        cell("%matplotlib inline\n!pip install nothing\ndef later(x):\n    return good(x) + 1\n", tags=["exercise"], ex="1.5"),
        cell("import matplotlib.pyplot as plt\nplt.plot([1])\n"),
    ])
    ex = grading.load_exercises(tmp_path)
    assert list(ex) == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    ns = ex["1.1"].namespace
    assert ns.good(3) == 6 and ns.later(3) == 7 and ex["1.1"].error is None and ex["1.5"].error is None
    assert "RAN_UNTAGGED" not in vars(ns)
    assert ex["1.2"].error.startswith("cell 5: NameError: name 'undefined_name' is not defined")
    assert "line 3: `undefined_name`" in ex["1.2"].error
    assert ex["1.3"].error == "cell 6: SyntaxError: invalid syntax (line 1)"
    assert ex["1.4"].error.startswith("cell 7: called sys.exit()/exit() (SystemExit: 3)")
    assert ex["1.1"].notes == ["setup cell 3 of 01_demo_exercises.ipynb failed: ZeroDivisionError: division by zero "
                               "[your cell of setup cell (01_demo_exercises.ipynb, cell 3), line 1: `1 / 0`]"]
    with pytest.raises(AttributeError, match=r"'nope' is not defined by the notebook 01_demo_exercises.ipynb"):
        ns.nope


def test_every_build_is_a_fresh_namespace(tmp_path):
    write_nb(tmp_path / "01_demo_exercises.ipynb", [
        cell("CALLS = []\n", tags=["setup"]),
        cell("def record(x):\n    CALLS.append(x)\n    return len(CALLS)\n", tags=["exercise"], ex="1.1")])
    first = grading.load_exercises(tmp_path)["1.1"].namespace
    assert first.record("a") == 1 and first.record("b") == 2
    first.CALLS.append("leak")
    second = grading.load_exercises(tmp_path)["1.1"].namespace
    assert second is not first and second.record("c") == 1, "state leaked from one build to the next"


def test_a_cell_that_loops_when_defined_is_stopped_then_skipped(tmp_path):
    write_nb(tmp_path / "01_demo_exercises.ipynb", [
        cell("def fine():\n    return 1\n", tags=["exercise"], ex="1.1"),
        cell("def spin():\n    while True:\n        pass\nspin()\n", tags=["exercise"], ex="1.2"),
        cell("def after():\n    return fine() + 1\n", tags=["exercise"], ex="1.3")])
    t = time.perf_counter()
    ex = grading.load_exercises(tmp_path, cell_timeout=0.3)
    first = time.perf_counter() - t
    assert 0.3 <= first < 5
    assert "did not finish within 0.3 s when the cell ran" in ex["1.2"].error
    assert ex["1.3"].namespace.after() == 2 and ex["1.3"].error is None
    t = time.perf_counter()
    again = grading.load_exercises(tmp_path, cell_timeout=0.3)
    assert time.perf_counter() - t < 0.25, "a cell that timed out once is not run again"
    assert again["1.2"].error == ex["1.2"].error


def test_the_canonical_notebook_wins_over_a_renamed_copy(tmp_path):
    write_nb(tmp_path / "01_demo_exercises.ipynb", [cell("def f():\n    return 'canonical'\n", ["exercise"], "1.1")])
    write_nb(tmp_path / "01_demo_exercises (1).ipynb", [cell("def f():\n    return 'copy'\n", ["exercise"], "1.1")])
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write_nb(tmp_path / ".ipynb_checkpoints" / "01_demo_exercises.ipynb", [cell("def f():\n    return 'ckpt'\n",
                                                                                 ["exercise"], "1.1")])
    assert grading.load_exercises(tmp_path)["1.1"].namespace.f() == "canonical"


def test_a_broken_notebook_costs_only_its_own_exercises(tmp_path):
    write_nb(tmp_path / "01_demo_exercises.ipynb", [cell("def f():\n    return 1\n", ["exercise"], "1.1")])
    (tmp_path / "02_demo_exercises.ipynb").write_text('{"cells": [{"cell_type": "code", "source": [1, 2]')
    (tmp_path / "03_demo_exercises.ipynb").write_text('{"cells": [{"cell_type": "code", "metadata": {"tags": '
                                                      '["exercise"]}, "source": [1, 2]}]}')
    index, nbs = extract.notebooks_in(tmp_path)
    assert list(index) == ["1.1"] and index["1.1"].path.name == "01_demo_exercises.ipynb"
    errors = sorted(nb.error for nb in nbs if nb.error)
    assert errors[0].startswith("02_demo_exercises.ipynb is not a readable notebook (JSONDecodeError")
    assert errors[1].startswith("03_demo_exercises.ipynb is not a readable notebook (TypeError")


# ---- the plugin and collection --------------------------------------------------------------


def test_collect_tests_reads_exercise_points_and_docstring_hints(demo):
    catalog = grading.collect_tests(demo)
    assert [(t["nodeid"], t["exercise"], t["points"]) for t in catalog] == [
        ("tests/test_ex01.py::test_double", "1.1", 2.0), ("tests/test_ex01.py::test_double_negative", "1.1", 1.0),
        ("tests/test_ex01.py::test_mean_square", "1.2", 1.5), ("tests/test_ex02.py::test_ema_bias_corrected", "2.1", 2.0),
        ("tests/test_ex02.py::test_clipped", "2.2", 1.0),
        ("hidden/test_ex02_hidden.py::test_clipped_keeps_inside_values", "2.2", 1.0)]
    assert catalog[0]["hint"] == "double(x) multiplies by SCALE (2)."
    assert all(t["nodeid"].startswith("tests/") for t in grading.collect_tests(demo, hidden=False))


def test_bad_markers_stop_collection_with_the_test_named(demo, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(demo, course)
    (course / "grading" / "tests" / "test_bad.py").write_text(textwrap.dedent("""
        import pytest

        def test_no_marker(exercise):
            pass

        @pytest.mark.exercise("1.1")
        @pytest.mark.points(0)
        def test_zero_points(exercise):
            pass
    """))
    with pytest.raises(RuntimeError) as info:
        grading.collect_tests(course)
    assert "tests/test_bad.py::test_no_marker: no @pytest.mark.exercise('N.M') marker" in str(info.value)
    assert "tests/test_bad.py::test_zero_points: @pytest.mark.points needs a number > 0, got 0" in str(info.value)


def test_the_grading_tests_run_by_hand_with_course_submission(demo):
    env = {**os.environ, "COURSE_SUBMISSION": str(demo / "exercises"), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "grading/tests", "-q"], cwd=demo, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "5 failed" in out.stdout, out.stdout + out.stderr
    env["COURSE_SUBMISSION"] = str(demo / "solutions")
    out = subprocess.run([sys.executable, "-m", "pytest", "grading", "-q"], cwd=demo, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "6 passed" in out.stdout, out.stdout + out.stderr  # hidden too


# ---- check() in the live kernel (here: a namespace) --------------------------------------------


def namespace(source: str) -> dict:
    ns = {"__name__": "__main__"}
    exec(textwrap.dedent(source), ns)
    return ns


def test_check_reports_expected_vs_got_and_the_hint(demo, capsys):
    ns = namespace("SCALE = 2\ndef double(x):\n    return 3 * x\n")
    res = grading.check("1.1", root=demo, namespace=ns)
    out = capsys.readouterr().out
    assert res.points == {"1.1": 0.0} and res.max_points == {"1.1": 3.0} and not res.passed
    assert out.startswith("Exercise 1.1 (implement double(x)): 0 / 3 points\n  FAILED  test_double (2 pt)\n"
                          "          expected vs got: double(3) should be 6; got 9\n"
                          "          hint: double(x) multiplies by SCALE (2).\n")
    assert "tested: the functions in this kernel" in out and out.strip() == res.report.strip()
    assert repr(res) == "<CheckResult 1.1: 0 / 3 points>"
    ns["double"] = namespace("def double(x):\n    return 2 * x\n")["double"]
    res = grading.check("1.1", root=demo, namespace=ns)
    assert res.passed and res.points == {"1.1": 3.0}
    assert "passed  test_double (2 pt)" in capsys.readouterr().out


def test_check_on_a_missing_function_a_stub_and_an_infinite_loop(demo, capsys):
    res = grading.check("1.1", root=demo, namespace=namespace("x = 1"))
    assert {t["kind"] for t in res.tests} == {"undefined"}
    assert "'double' is not defined in this notebook's kernel: run the exercise cell" in res.report
    stub = namespace('def mean_square(xs):\n    raise NotImplementedError("Exercise 1.2: implement mean_square(xs)")\n')
    res = grading.check("1.2", root=demo, namespace=stub)
    assert res.tests[0]["kind"] == "not_implemented" and "replace the line `raise NotImplementedError" in res.report
    t = time.perf_counter()
    res = grading.check("1.2", root=demo, timeout=0.5, namespace=namespace("def mean_square(xs):\n    while True:\n"
                                                                           "        pass\n"))
    assert time.perf_counter() - t < 10
    assert res.tests[0]["kind"] == "timeout" and "did not finish within 0.5 s" in res.report
    capsys.readouterr()


def test_check_sees_edited_test_files_and_leaves_sys_modules_clean(demo, tmp_path, capsys):
    course = tmp_path / "course"
    shutil.copytree(demo, course)
    ns = namespace("def mean_square(xs):\n    return sum(x * x for x in xs) / len(xs)\n")
    before = set(sys.modules)
    assert grading.check("1.2", root=course, namespace=ns).passed
    test_file = course / "grading" / "tests" / "test_ex01.py"
    test_file.write_text(test_file.read_text().replace("pytest.approx(14 / 3)", "pytest.approx(5)"))
    assert not grading.check("1.2", root=course, namespace=ns).passed, "the edited test file was not re-imported"
    leaked = [m for m in set(sys.modules) - before if "test_ex0" in m]
    assert leaked == []
    capsys.readouterr()


def test_check_all_finds_this_notebooks_exercises_from_its_functions(demo, capsys):
    ns = namespace("SCALE = 2\ndef double(x):\n    return SCALE * x\ndef mean_square(xs):\n    return 0\n")
    ns["ema"] = grading.course_root  # imported from elsewhere: does not count as notebook 02's function
    res = grading.check_all(root=demo, namespace=ns)
    assert res.points == {"1.1": 3.0, "1.2": 0.0} and res.max_points == {"1.1": 3.0, "1.2": 1.5}
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == ["exercise  title                      points",
                                    "1.1       implement double(x)        3 / 3",
                                    "1.2       implement mean_square(xs)  0 / 1.5",
                                    "total                                3 / 4.5"]
    assert grading.check_all(root=demo, namespace={"__name__": "__main__"}).tests == []
    assert "no exercise functions found" in capsys.readouterr().out


@pytest.mark.slow
def test_check_on_saved_files_runs_the_sandboxed_grader(demo, capsys):
    res = grading.check("2.1", folder=demo / "exercises", root=demo)
    assert res.points == {"2.1": 0.0} and "tested: the SAVED notebook(s)" in res.report
    assert "save the notebook (Ctrl+S) first" in res.report
    res = grading.check_all(folder=demo / "solutions", root=demo)
    assert res.points == {"1.1": 3.0, "1.2": 1.5, "2.1": 2.0, "2.2": 1.0} and res.passed  # shipped tests only
    capsys.readouterr()


def _run_notebook(path: Path, env: dict) -> list[str]:
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return ["".join(o.get("text", "") for o in c.outputs if o.get("output_type") == "stream") for c in nb.cells]


@pytest.mark.slow
def test_check_from_a_notebook_executed_headless(demo, tmp_path):
    path = write_nb(tmp_path / "01_demo_exercises.ipynb", [
        cell("SCALE = 2\n", tags=["setup"]),
        cell("def double(x):\n    return 3 * x\n", tags=["exercise"], ex="1.1"),
        cell("def mean_square(xs):\n    total = 0\n    return total / xs[99]\n", tags=["exercise"], ex="1.2"),
        cell("from course_lib.grading import check, check_all\nr = check('1.1')"),
        cell("check('1.2');"),
        cell("def mean_square(xs):\n    return sum(x * x for x in xs) / len(xs)\n"),  # fixed, not saved: seen live
        cell("check_all();"),
    ])
    out = _run_notebook(path, {"COURSE_ROOT": str(demo)})
    assert out[3].startswith("Exercise 1.1 (implement double(x)): 0 / 3 points\n  FAILED  test_double (2 pt)\n"
                             "          expected vs got: double(3) should be 6; got 9\n"
                             "          hint: double(x) multiplies by SCALE (2).\n"), out[3]
    assert "FAILED  test_mean_square (1.5 pt)" in out[4] and "IndexError: list index out of range" in out[4]
    assert "where: your notebook cell, line 3: `return total / xs[99]`" in out[4]
    assert out[6].splitlines()[1:4] == ["1.1       implement double(x)        0 / 3",
                                        "1.2       implement mean_square(xs)  1.5 / 1.5",
                                        "total                                1.5 / 4.5"], out[6]


@pytest.mark.slow
def test_check_all_from_a_notebook_on_the_real_course(tmp_path):
    catalog = [t for t in grading.collect_tests(hidden=False)]
    master = sorted((ROOT / "solutions").glob("03_*_exercises.ipynb"))[0]
    nb = nbformat.read(master, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and {"setup", "exercise"} & set(c.metadata.get("tags", []))]
    cells.append(nbformat.v4.new_code_cell("from course_lib.grading import check, check_all\ncheck_all();"))
    nb.cells = cells
    path = tmp_path / master.name
    nbformat.write(nb, path)
    out = _run_notebook(path, {"COURSE_FAST": "1"})[-1]
    want = sum(t["points"] for t in catalog if t["exercise"].startswith("3."))
    assert f"total" in out and out.splitlines()[-1].split()[-3:] == [f"{want:g}", "/", f"{want:g}"], out


# ---- the batch grader on the demo course ----------------------------------------------------


def test_grade_checks_its_arguments(demo, tmp_path):
    (tmp_path / "subs").mkdir()
    with pytest.raises(ValueError, match=r"grade\(\): 'out_csv' must be outside 'submissions_dir'"):
        grading.grade(tmp_path / "subs", tmp_path / "subs" / "gradebook.csv", tmp_path / "fb", root=demo)
    with pytest.raises(ValueError, match=r"grade\(\): 'workers' must be an int >= 1, got workers=0"):
        grading.grade(tmp_path / "subs", workers=0, root=demo)
    with pytest.raises(ValueError, match=r"'submissions_dir' must be an existing folder"):
        grading.grade(tmp_path / "nope", root=demo)
    with pytest.raises(ValueError, match=r"'timeout_per_test' must be a float > 0, got timeout_per_test=-1"):
        grading.grade(tmp_path / "subs", timeout_per_test=-1, root=demo)


DEMO_KINDS = [k for k in list(ms.KINDS) + list(ms.EXTRA_KINDS) if k != "wrong"]


@pytest.fixture(scope="module")
def demo_batch(demo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo_batch")
    (tmp / "decoy").mkdir()
    (tmp / "decoy" / "decoy.txt").write_text("do not touch")
    full = ms.make_submissions(demo / "solutions", tmp / "subs", DEMO_KINDS, decoy=tmp / "decoy" / "decoy.txt")
    (tmp / "subs" / "empty").mkdir()  # a student who handed in nothing still gets a row
    full["empty"] = set()
    before = hashes(tmp / "subs")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "course_lib.grading", "grade", str(tmp / "subs"), "--out",
                           str(tmp / "gradebook.csv"), "--feedback", str(tmp / "feedback"), "--timeout-per-test", "2",
                           "--root", str(demo)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return {"proc": proc, "elapsed": time.perf_counter() - t, "full": full, "tmp": tmp, "before": before,
            "after": hashes(tmp / "subs")}


@pytest.mark.slow
def test_demo_batch_gives_exactly_the_expected_gradebook_in_bounded_time(demo, demo_batch):
    proc = demo_batch["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = (demo_batch["tmp"] / "gradebook.csv").read_text()
    assert got == ms.expected_gradebook(grading.collect_tests(demo), demo_batch["full"])
    # Bounded time is the grader's own budgets (CPU seconds per test, a wall-clock backstop, the
    # submission's deadline) and this fixture's subprocess timeout: a hang fails it. No wall-clock
    # figure is asserted here: it measured the machine's load (295 s against 240 at load 20), not the grader.
    assert len(proc.stdout) < 2000 and len(proc.stderr) < 5000, "student output leaked into the grader's output"


@pytest.mark.slow
def test_demo_batch_leaves_every_file_alone(demo_batch):
    assert demo_batch["after"] == demo_batch["before"], "a student file changed while grading"
    assert (demo_batch["tmp"] / "decoy" / "decoy.txt").read_text() == "do not touch"
    assert not (demo_batch["tmp"] / "subs" / "file_vandal" / "scratch.txt").exists()


FEEDBACK = {
    "untouched": ["**Total: 0 / 8.5 points**", "not implemented yet (NotImplementedError: Exercise 1.1: implement double(x))",
                  "where: your cell of Exercise 1.1 (01_demo_exercises.ipynb, cell 3), line 3",
                  "hint: replace the line `raise NotImplementedError(...)`"],
    "syntax_error": ["its cell failed when it ran, before any test: cell 3: SyntaxError"],
    "infinite_loop": ["did not finish within 2 s", "hint: it did not finish in time"],
    "definition_loop": ["did not finish within 1 s when the cell ran"],
    "sys_exit": ["called sys.exit()/exit() (SystemExit: 1)"],
    "memory_hog": ["out of memory", "hint: it tried to allocate more memory than grading allows"],
    "segfault": ["died from SIGSEGV", "the grader went on with the remaining tests"],
    "ignores_alarm": ["ran past 2 s and ignored the timeout; it was killed"],
    "os_exit": ["os._exit(3,) is not allowed while grading"],
    "keyboard_interrupt": ["RuntimeError: your code raised KeyboardInterrupt"],
    "print_flood": ["**Total: 8.5 / 8.5 points**", "MB straight to the grading process's stdout"],
    "file_vandal": ["**Total: 8.5 / 8.5 points**"],
    "half_right": ["PASS `test_double` (2 / 2)", "FAIL `test_ema_bias_corrected` (0 / 2)"],
    "empty": ["no notebooks (.ipynb) found in empty/"],
    "plots_in_cells": ["**Total: 8.5 / 8.5 points**", "imports matplotlib.pyplot, ipywidgets.interact: plotting and widgets are "
                       "switched off (stubs) while grading"],
}


@pytest.mark.slow
@pytest.mark.parametrize("student", list(FEEDBACK))
def test_demo_batch_feedback_says_what_happened(demo_batch, student):
    text = (demo_batch["tmp"] / "feedback" / f"{student}.md").read_text()
    for snippet in FEEDBACK[student]:
        assert snippet in text, f"{student}.md lacks {snippet!r}:\n{text}"


@pytest.mark.slow
def test_a_student_file_that_changes_fails_loudly(demo, tmp_path, monkeypatch):
    ms.make_submissions(demo / "solutions", tmp_path / "subs", ["all_correct"])
    real = batch.grade_folder

    def tampering(folder, *args, **kwargs):
        res = real(folder, *args, **kwargs)
        (folder / "01_demo_exercises.ipynb").write_text("{}")
        return res

    monkeypatch.setattr(batch, "grade_folder", tampering)
    with pytest.raises(grading.SubmissionsModifiedError, match=r"1 student file\(s\) changed during grading.*"
                                                                r"all_correct/01_demo_exercises.ipynb"):
        grading.grade(tmp_path / "subs", tmp_path / "gb.csv", tmp_path / "fb", root=demo, verbose=False)
    assert (tmp_path / "gb.csv").read_text().startswith("student,ex1.1")


def test_make_targets_and_markers_are_wired():
    mk = (ROOT / "Makefile").read_text()
    phony = mk.split(".PHONY:")[1].split("\n")[0].split()
    assert {"exercises", "grade"} <= set(phony)
    assert "\nexercises: $(STAMP)\n\t$(BIN)/python -m course_lib.grading assign\n" in mk
    assert "\ngrade: $(STAMP)\n" in mk and "-m course_lib.grading grade" in mk
    out = subprocess.run(["make", "-n", "grade", "SUBMISSIONS=subs", "OUT=gb.csv"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert '.venv/bin/python -m course_lib.grading grade "subs" --out "gb.csv" --feedback "feedback"' in out.stdout
    pyproject = (ROOT / "pyproject.toml").read_text()
    ini = (ROOT / "grading" / "pytest.ini").read_text()
    for marker in ("points(n):", "exercise(id):"):
        assert marker in pyproject and marker in ini


# ---- the real content --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_batch")
    subs = tmp / "subs"
    (tmp / "decoy").mkdir()
    (tmp / "decoy" / "decoy.txt").write_text("do not touch")
    catalog = grading.collect_tests()
    counts = Counter(t["exercise"] for t in catalog)
    lasts = ms.last_exercises(ROOT / "solutions")
    quickest = min(lasts, key=lambda i: (counts[i], assign.id_key(i)))  # the loop costs one timeout per test
    kinds = [k for k in ms.KINDS if k not in ("all_correct", "untouched")]
    full = ms.make_submissions(ROOT / "solutions", subs, kinds, decoy=tmp / "decoy" / "decoy.txt",
                               victims={"infinite_loop": quickest})
    shutil.copytree(ROOT / "solutions", subs / "all_correct")  # the masters as committed
    shutil.copytree(ROOT / "exercises", subs / "untouched")    # the student copies as committed
    ids = {t["exercise"] for t in catalog}
    full.update(all_correct=ids, untouched=set())
    before = hashes(subs)
    t = time.perf_counter()
    results = grading.grade(subs, tmp / "gradebook.csv", tmp / "feedback", timeout_per_test=6, verbose=False)
    return {"results": {r.student: r for r in results}, "elapsed": time.perf_counter() - t, "full": full,
            "catalog": catalog, "tmp": tmp, "before": before, "after": hashes(subs), "kinds": len(full)}


def test_every_exercise_has_grading_tests_and_every_test_a_master_exercise():
    masters = {e.id for e in assign.collect_masters(ROOT / "solutions")}
    tested = {t["exercise"] for t in grading.collect_tests()}
    assert len(masters) >= 16, f"at least 16 exercises expected; found {sorted(masters)}"
    assert sorted(masters - tested, key=assign.id_key) == [], "exercises without a grading test"
    assert sorted(tested - masters, key=assign.id_key) == [], "grading tests for exercises no master has"


@pytest.mark.slow
def test_every_grading_test_passes_on_the_solutions(real_batch):
    res = real_batch["results"]["all_correct"]
    failing = [f"{t['nodeid']}: {t['message']}" for t in res.tests if not t["passed"]]
    assert failing == [], "grading tests that fail on solutions/:\n" + "\n".join(failing)
    assert res.total == res.max_total > 0 and res.notes == []


@pytest.mark.slow
def test_every_grading_test_fails_on_the_untouched_exercises(real_batch):
    res = real_batch["results"]["untouched"]
    passing = [t["nodeid"] for t in res.tests if t["passed"]]
    assert passing == [], "grading tests that pass on the untouched stubs (they test nothing):\n" + "\n".join(passing)
    assert res.total == 0
    assert all(t["kind"] in ("not_implemented", "definition") for t in res.tests), \
        {t["nodeid"]: t["message"] for t in res.tests if t["kind"] not in ("not_implemented", "definition")}


@pytest.mark.slow
def test_real_fixture_submissions_give_exactly_the_expected_gradebook(real_batch):
    got = (real_batch["tmp"] / "gradebook.csv").read_text()
    want = ms.expected_gradebook(real_batch["catalog"], real_batch["full"])
    assert got == want
    rows = list(csv.DictReader(got.splitlines()))
    assert len(rows) == real_batch["kinds"] and all(float(r["max"]) == float(rows[0]["max"]) for r in rows)
    print(f"grading {real_batch['kinds']} submissions took {real_batch['elapsed']:.0f} s")  # reported, not asserted


@pytest.mark.slow
def test_real_batch_leaves_every_file_alone(real_batch):
    assert real_batch["after"] == real_batch["before"]
    assert (real_batch["tmp"] / "decoy" / "decoy.txt").read_text() == "do not touch"


@pytest.mark.slow
def test_the_benchmark_prints_its_two_lines(capsys):
    bench = _load(ROOT / "benchmarks" / "grading.py", "grading_benchmark")
    out = bench.main(["--n", "3", "--timeout-per-test", "2", "--demo"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[-4:]] == ["submissions_per_minute", "speedup_vs_fresh_process",
                                                       "max_rss_mb", "isolation"]
    assert out["submissions_per_minute"] > 0 and 50 < out["max_rss_mb"] < 4096 and out["speedup_vs_fresh_process"] > 0
    assert out["same_gradebook"] and out["isolation"] in ("bubblewrap", "audit-hook")


@pytest.mark.slow
def test_a_submission_whose_process_dies_still_gets_a_row_with_the_reason(demo, tmp_path):
    ms.make_submissions(demo / "solutions", tmp_path / "subs", ["all_correct", "segfault"])
    # Fresh processes: starting Python and torch alone takes longer than the 0.5 s budget, so the time
    # surely runs out before any test (a warm zygote's child could finish a test within it on a quiet machine).
    results = {r.student: r for r in grading.grade(tmp_path / "subs", tmp_path / "gb.csv", tmp_path / "fb",
                                                   timeout_per_submission=0.5, root=demo, verbose=False,
                                                   processes="fresh")}
    iso = results["segfault"].isolation
    assert (tmp_path / "gb.csv").read_text().splitlines()[1:] == [f"all_correct,0,0,0,0,0,8.5,{iso}",
                                                                  f"segfault,0,0,0,0,0,8.5,{iso}"]
    for res in results.values():
        assert all(t["kind"] == "crash" for t in res.tests)
        assert "the submission used up its time (timeout_per_submission); the grader killed it" in res.notes[0]
    text = (tmp_path / "fb" / "segfault.md").read_text()
    assert "not graded: the submission used up its time" in text


# ---- fairness: feedback that does not mislead, budgets that do not depend on machine load ---------


def test_only_the_stubs_own_not_implemented_error_reads_not_implemented_yet():
    from course_lib.grading import plugin

    stub = NotImplementedError("Exercise 3.2: implement ema(values, beta)")
    assert plugin._classify(stub, 10)[0] == "not_implemented"
    assert plugin._classify(NotImplementedError(), 10)[0] == "not_implemented"
    torch_error = NotImplementedError('"bincount_cpu" not implemented for \'Float\'')
    kind, message = plugin._classify(torch_error, 10)
    assert kind == "error" and "bincount_cpu" in message and "not implemented yet" not in message


def test_check_result_shows_no_repr_in_a_notebook(demo, capsys):
    from IPython.core.formatters import DisplayFormatter

    res = grading.check("1.1", root=demo, namespace=namespace("def double(x):\n    return 2 * x\n"))
    capsys.readouterr()
    assert DisplayFormatter().format(res) == ({}, {})  # the printed report is all a notebook shows
    assert repr(res) == "<CheckResult 1.1: 3 / 3 points>"  # a plain Python session still has it


def _demo_submission(demo: Path, dst: Path, ex_id: str, lines: list) -> Path:
    for path in sorted((demo / "solutions").glob(assign.MASTER_GLOB)):
        nb = assign.student_copy(assign.read_notebook(path), replace=lambda i, t, ind, sol: (
            [ind + ln for ln in lines] if i == ex_id else sol))
        (dst / path.name).parent.mkdir(parents=True, exist_ok=True)
        (dst / path.name).write_text(assign.render_notebook(nb), encoding="utf-8")
    return dst


@pytest.mark.slow
def test_budgets_are_cpu_time_and_a_timeout_is_retried_alone(demo, tmp_path):
    """A test that sleeps (no CPU) longer than the budget passes; one that burns its budget only the first
    time it runs (a stand-in for a test slowed down by its surroundings) passes when retried alone; a
    busy loop is still a timeout, in CPU seconds."""
    subs = tmp_path / "subs"
    _demo_submission(demo, subs / "sleeps", "1.1", ["import time", "time.sleep(1.5)", "return 2 * x"])
    _demo_submission(demo, subs / "slow_once", "1.2", [
        "import os", "if not os.path.exists('slow_once.flag'):", "    open('slow_once.flag', 'w').close()",
        "    while True:", "        pass", "return sum(x * x for x in xs) / len(xs)"])
    _demo_submission(demo, subs / "loops", "1.2", ["while True:", "    pass"])
    results = {r.student: r for r in grading.grade(subs, tmp_path / "gb.csv", tmp_path / "fb", timeout_per_test=1,
                                                   exercises=["1.1", "1.2"], root=demo, verbose=False)}
    assert results["sleeps"].points == {"1.1": 3.0, "1.2": 1.5}
    assert results["slow_once"].points == {"1.1": 3.0, "1.2": 1.5}
    retried = [t for t in results["slow_once"].tests if t.get("retried")]
    assert [t["name"] for t in retried] == ["test_mean_square"] and retried[0]["passed"]
    loop = next(t for t in results["loops"].tests if t["name"] == "test_mean_square")
    assert loop["kind"] == "timeout" and "did not finish within 1 s of CPU time" in loop["message"] and loop["retried"]
    assert all(t["cpu_s"] < 1.5 for r in results.values() for t in r.tests if "cpu_s" in t)


@pytest.mark.slow
def test_after_a_timeout_the_exercises_other_tests_wait_for_its_retry(demo, tmp_path):
    """A loop that never ends costs two budgets per exercise, not two per test: once `test_double` (1.1)
    timed out, `test_double_negative` (1.1) is not run; `test_double` is run again alone, times out again,
    and both count as timeouts. A function slow only the first time passes on the retry, and then the
    test that waited runs after all. ``skip_after_timeout=False`` runs (and retries) every test."""
    subs = tmp_path / "subs"
    _demo_submission(demo, subs / "loops", "1.1", ["while True:", "    pass"])
    _demo_submission(demo, subs / "slow_once", "1.1", [
        "import os", "if not os.path.exists('slow_once.flag'):", "    open('slow_once.flag', 'w').close()",
        "    while True:", "        pass", "return 2 * x"])
    results = {r.student: r for r in grading.grade(subs, tmp_path / "gb.csv", tmp_path / "fb", timeout_per_test=1,
                                                   exercises=["1.1"], root=demo, verbose=False)}
    first, second = (next(t for t in results["loops"].tests if t["name"] == n)
                     for n in ("test_double", "test_double_negative"))
    assert first["kind"] == "timeout" and first["retried"] and "did not finish within 1 s of CPU time" in first["message"]
    assert second["kind"] == "timeout" and second["after_timeout"] == first["nodeid"] and not second.get("retried")
    assert second["message"].startswith("not run: `test_double` of this exercise did not finish within 1 s")
    assert second["cpu_s"] < 0.5 and results["loops"].points == {"1.1": 0.0}
    text = (tmp_path / "fb" / "loops.md").read_text()
    assert "not run: `test_double`" in text and "did not finish within 1 s of CPU time" in text
    assert results["slow_once"].points == {"1.1": 3.0}
    assert [t["name"] for t in results["slow_once"].tests if t.get("retried")] == ["test_double"]
    assert not any(t.get("after_timeout") for t in results["slow_once"].tests)
    shutil.rmtree(subs / "slow_once")  # (its retry already ran above)
    every = grading.grade(subs, tmp_path / "gb2.csv", tmp_path / "fb2", timeout_per_test=1, exercises=["1.1"],
                          root=demo, verbose=False, skip_after_timeout=False)
    loops = next(r for r in every if r.student == "loops")
    assert [(t["kind"], bool(t.get("retried"))) for t in loops.tests] == [("timeout", True), ("timeout", True)]
    assert not any(t.get("after_timeout") for t in loops.tests)
