"""Every notebook executes headless, in fast mode (COURSE_FAST=1), and fails the suite on any
error. Notebooks are committed without outputs, so diffs stay readable."""

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("**/*.ipynb")) + sorted((ROOT / "solutions").glob("**/*.ipynb"))



# Notebooks whose static or live figures still have text that overlaps or leaves the figure.
# Empty: every notebook must be clean. A notebook put here is reported as an expected failure
# until it is clean, and then fails until it is taken off, so the list only shrinks.
FIGURE_TEXT_NOT_YET_CLEAN: set[str] = set()

def test_the_course_has_notebooks():
    assert any(nb.name == "00_welcome.ipynb" for nb in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS + EXERCISES, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; strip them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless_in_fast_mode(path, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_FAST", "1")
    # A fresh results cache (notebook 11's sweep): the notebook trains from cold, as on a new
    # machine, and the suite leaves nothing behind in the checkout.
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    # Last, a cell of our own walks every figure the notebook left open (the lessons' figures
    # and panels, drawn by Agg under ipympl): no two text artists overlap, none leaves its figure
    # (tests/figure_checks.py says what is compared).
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import gc as _gc, json as _json, sys as _sys, warnings as _warnings\n"
        f"_sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from figure_checks import report as _report\nfrom course_lib.ui.lab import TrainingLab as _Lab\n"
        "def _is_lab(o):\n"
        "    try:\n"
        "        return isinstance(o, _Lab)\n"
        "    except ReferenceError:  # a weak proxy whose object is gone\n"
        "        return False\n"
        "with _warnings.catch_warnings():  # isinstance on every live object wakes torch's deprecation warnings\n"
        "    _warnings.simplefilter('ignore')\n"
        "    _labs = [o for o in _gc.get_objects() if _is_lab(o)]\n"
        "for _lab in _labs:\n"
        "    _lab.pause(); _lab.wait(10)      # no training thread moves artists while we measure\n"
        "print('FIGURE_REPORT' + _json.dumps(_report([_lab.view.fig for _lab in _labs])))"))
    # kernel "python3" is the interpreter running the suite, so the test uses this environment
    # whatever kernels the machine has registered. A per-cell timeout turns a hang into a failure.
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(path.parent)}})
    t = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    print(f"{path.name}: {time.perf_counter() - t:.1f} s in fast mode")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    figures = json.loads(text.split("FIGURE_REPORT", 1)[1].splitlines()[0])  # the report is one JSON line
    problems = [f"{fig}: {p}" for fig, found in figures.items() for p in found]
    message = f"{path.name}: text in its figures overlaps or leaves the figure (headless, Agg):\n" + "\n".join(problems)
    if path.name in FIGURE_TEXT_NOT_YET_CLEAN:
        # Known and open (see the list's comment): reported as an expected failure, and a notebook
        # that has become clean fails here until it is taken off the list, so the list only shrinks.
        assert problems, f"{path.name} has clean figures now: take it off FIGURE_TEXT_NOT_YET_CLEAN"
        pytest.xfail(message)
    assert not problems, message
