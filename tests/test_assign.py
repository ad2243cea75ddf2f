"""course_lib.grading.assign: student copies from the masters (solution blocks -> NotImplementedError stubs).

Synthetic masters (built in tmp folders) pin the transformation and every validation message;
the last tests hold the course's real content to the contract: at least 16 exercises, and the
committed exercises/ equal to a fresh generation, byte for byte.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.grading import assign
from course_lib.grading.assign import MasterError, check_exercises, generate_exercises, student_copy

ROOT = Path(__file__).resolve().parents[1]


def code(source, tags=(), ex=None, cid=None, outputs=None, as_list=True):
    cell = {"cell_type": "code", "id": cid or "c", "metadata": {}, "execution_count": 3 if outputs else None,
            "outputs": outputs or [], "source": source.splitlines(keepends=True) if as_list else source}
    if tags:
        cell["metadata"]["tags"] = list(tags)
    if ex:
        cell["metadata"]["exercise"] = {"id": ex[0], "title": ex[1]}
    return cell


def notebook(*cells):
    cells = [dict(c, id=f"id{i}") for i, c in enumerate(cells)]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "loss-scaling", "display_name": "L&S", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def write(folder, name, nb):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(nb, indent=1))
    return folder / name


GRADED = ("def ema(values, beta):\n"
          "    out, avg = [], 0.0\n"
          "    for t, v in enumerate(values, start=1):\n"
          "        ### BEGIN SOLUTION\n"
          "        avg = beta * avg + (1 - beta) * v\n"
          "        out.append(avg / (1 - beta ** t))\n"
          "        ### END SOLUTION\n"
          "    return out\n"
          "\n"
          "def helper(x):\n"
          "    ### BEGIN SOLUTION\n"
          "    return x\n"
          "    ### END SOLUTION")


def test_each_block_becomes_a_stub_at_its_indentation_and_everything_else_is_kept():
    prose = {"cell_type": "markdown", "id": "m", "metadata": {"tags": ["intro"]}, "source": ["# Title\n", "text"]}
    master = notebook(prose, code("import torch\n", tags=["setup"]),
                      code(GRADED, tags=["exercise"], ex=("3.2", 'implement ema(values, beta) "with" bias correction')),
                      code("check('3.2')\n", outputs=[{"output_type": "stream", "name": "stdout", "text": "ok"}]))
    before = json.dumps(master, sort_keys=True)
    copy = student_copy(master)
    assert json.dumps(master, sort_keys=True) == before, "student_copy must not modify the master"
    stub = 'raise NotImplementedError("Exercise 3.2: implement ema(values, beta) \\"with\\" bias correction")'
    assert "".join(copy["cells"][2]["source"]) == (
        "def ema(values, beta):\n    out, avg = [], 0.0\n    for t, v in enumerate(values, start=1):\n"
        f"        {stub}\n    return out\n\ndef helper(x):\n    {stub}")
    assert copy["cells"][3]["outputs"] == [] and copy["cells"][3]["execution_count"] is None
    for i in (0, 1, 3):  # prose, setup and plain cells: identical apart from outputs
        assert copy["cells"][i]["source"] == master["cells"][i]["source"]
    assert [c["id"] for c in copy["cells"]] == [c["id"] for c in master["cells"]]
    assert [c["metadata"] for c in copy["cells"]] == [c["metadata"] for c in master["cells"]]
    assert copy["metadata"] == master["metadata"]
    with pytest.raises(NotImplementedError, match=r"^Exercise 3.2: implement ema"):
        ns = {}
        exec("".join(copy["cells"][2]["source"]), ns)
        ns["ema"]([1.0], 0.5)


def test_a_source_string_stays_a_string_and_a_custom_replacement_gets_the_solution():
    master = notebook(code("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n", tags=["exercise"], ex=("1.1", "t"),
                           as_list=False))
    assert student_copy(master)["cells"][0]["source"] == 'x = 1\nraise NotImplementedError("Exercise 1.1: t")\n'
    seen = []
    out = student_copy(master, replace=lambda i, t, indent, sol: seen.append((i, t, indent, sol)) or ["z = 3"])
    assert seen == [("1.1", "t", "", ["y = 2"])]
    assert out["cells"][0]["source"] == "x = 1\nz = 3\n"


def test_generation_is_byte_stable_idempotent_and_removes_orphans(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    write(src, "01_a_exercises.ipynb", notebook(code(GRADED, tags=["exercise"], ex=("1.1", "t"))))
    write(src, "02_b_exercises.ipynb", notebook(code("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                                     "    ### END SOLUTION\n", tags=["exercise"], ex=("2.1", "ü"))))
    (dst).mkdir()
    (dst / "README.md").write_text("kept")
    (dst / "09_gone_exercises.ipynb").write_text("{}")
    report = generate_exercises(src, dst)
    assert [p.name for p in report["written"]] == ["01_a_exercises.ipynb", "02_b_exercises.ipynb"]
    assert [p.name for p in report["removed"]] == ["09_gone_exercises.ipynb"]
    first = {p.name: p.read_bytes() for p in sorted(dst.iterdir())}
    mtimes = {p.name: p.stat().st_mtime_ns for p in dst.iterdir()}
    again = generate_exercises(src, dst)
    assert again["written"] == [] and len(again["unchanged"]) == 2
    assert {p.name: p.read_bytes() for p in sorted(dst.iterdir())} == first
    assert {p.name: p.stat().st_mtime_ns for p in dst.iterdir()} == mtimes, "unchanged files are not rewritten"
    assert (dst / "README.md").read_text() == "kept"
    text = (dst / "02_b_exercises.ipynb").read_text(encoding="utf-8")
    assert "Exercise 2.1: ü" in text and text.endswith("}\n")  # UTF-8 as is, like Jupyter saves
    assert check_exercises(src, dst) == []


def test_check_reports_stale_missing_and_orphan_copies(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    write(src, "01_a_exercises.ipynb", notebook(code(GRADED, tags=["exercise"], ex=("1.1", "t"))))
    write(src, "02_b_exercises.ipynb", notebook(code(GRADED, tags=["exercise"], ex=("2.1", "t"))))
    generate_exercises(src, dst)
    stale = json.loads((dst / "01_a_exercises.ipynb").read_text())
    stale["cells"][0]["source"] = ["# edited by hand\n"]
    (dst / "01_a_exercises.ipynb").write_text(json.dumps(stale))
    (dst / "02_b_exercises.ipynb").unlink()
    (dst / "07_old_exercises.ipynb").write_text("{}")
    problems = check_exercises(src, dst)
    assert len(problems) == 3, problems
    assert "01_a_exercises.ipynb is stale" in problems[0] and "cell 1 (id 'id0')" in problems[0]
    assert "02_b_exercises.ipynb is missing" in problems[1]
    assert "07_old_exercises.ipynb has no master" in problems[2]
    assert assign.main(["--check", "--src", str(src), "--dst", str(dst)]) == 1
    assert assign.main(["--src", str(src), "--dst", str(dst)]) == 0
    assert assign.main(["--check", "--src", str(src), "--dst", str(dst)]) == 0


BAD = {
    "missing END": (code("def f():\n    ### BEGIN SOLUTION\n    return 1\n", tags=["exercise"], ex=("1.1", "t")),
                    r"cell 1 \(id 'id0', exercise 1.1\): '### BEGIN SOLUTION' on line 2 has no matching '### END SOLUTION'"),
    "END without BEGIN": (code("def f():\n    return 1\n    ### END SOLUTION\n", tags=["exercise"], ex=("1.1", "t")),
                          r"cell 1 .*'### END SOLUTION' on line 3 has no matching '### BEGIN SOLUTION'"),
    "nested BEGIN": (code("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n",
                          tags=["exercise"], ex=("1.1", "t")), r"line 3 opens a block inside the block opened on line 1"),
    "no solution block": (code("def f():\n    return 1\n", tags=["exercise"], ex=("1.1", "t")),
                          r"cell 1 \(id 'id0', exercise 1.1\): graded cell without a solution block"),
    "empty block": (code("### BEGIN SOLUTION\n### END SOLUTION\n", tags=["exercise"], ex=("1.1", "t")),
                    r"the solution block on lines 1-2 is empty"),
    "markers in an untagged cell": (code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n"),
                                    r"cell 1 \(id 'id0'\): has solution markers but is not tagged 'exercise'"),
    "mistyped marker": (code("# BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", tags=["exercise"], ex=("1.1", "t")),
                        r"line 1 '# BEGIN SOLUTION' looks like a solution marker"),
    "bad id": (code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", tags=["exercise"], ex=("three", "t")),
               r"metadata.exercise.id must look like '3.2', got 'three'"),
    "missing metadata": (code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", tags=["exercise"]),
                         r"metadata.exercise.id must look like '3.2', got None"),
    "empty title": (code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", tags=["exercise"], ex=("1.1", " ")),
                    r"metadata.exercise.title must be a non-empty string"),
    "metadata without tag": (code("x = 1\n", ex=("1.1", "t")), r"has metadata.exercise but not the tag 'exercise'"),
    "both tags": (code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", tags=["setup", "exercise"], ex=("1.1", "t")),
                  r"tagged both 'setup' and 'exercise'"),
    "plotting in setup": (code("import numpy as np\nfrom matplotlib import pyplot as plt\n", tags=["setup"]),
                          r"cell 1 \(id 'id0'\): line 2 imports 'matplotlib'; setup and graded cells must not import"),
    "widgets in a graded cell": (code("import course_lib.ui.live as w\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
                                      tags=["exercise"], ex=("1.1", "t")), r"imports 'course_lib.ui.live'"),
    "does not parse": (code("def f(:\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n", tags=["exercise"],
                            ex=("1.1", "t")), r"does not parse: invalid syntax"),
    "stub would not parse": (code("if True:\n    x = 0\n### BEGIN SOLUTION\n    x = 1\n### END SOLUTION\n    y = x\n",
                                  tags=["exercise"], ex=("1.1", "t")), r"the student copy would not parse"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_problems_name_the_notebook_the_cell_and_the_problem(tmp_path, case):
    cell, pattern = BAD[case]
    write(tmp_path / "solutions", "03_curves_exercises.ipynb", notebook(cell))
    with pytest.raises(MasterError, match=r"03_curves_exercises.ipynb, " + (pattern if "cell 1" in pattern else
                                                                              r"cell 1 .*" + pattern)):
        generate_exercises(tmp_path / "solutions", tmp_path / "exercises")
    assert not (tmp_path / "exercises").exists(), "nothing is written while a master has a problem"


def test_a_duplicate_id_names_both_places_and_all_problems_come_at_once(tmp_path):
    src = tmp_path / "solutions"
    block = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n"
    write(src, "01_a_exercises.ipynb", notebook(code(block, tags=["exercise"], ex=("1.1", "t"))))
    write(src, "02_b_exercises.ipynb", notebook(code("x = 0\n"), code(block, tags=["exercise"], ex=("1.1", "u")),
                                                code("def f():\n    return 1\n", tags=["exercise"], ex=("2.2", "v"))))
    with pytest.raises(MasterError) as info:
        generate_exercises(src, tmp_path / "exercises")
    msg = str(info.value)
    assert msg.startswith("2 problem(s)")
    assert "02_b_exercises.ipynb, cell 2 (id 'id1'): duplicate exercise id '1.1', already used by" in msg
    assert "01_a_exercises.ipynb, cell 1" in msg
    assert "02_b_exercises.ipynb, cell 3 (id 'id2', exercise 2.2): graded cell without a solution block" in msg
    assert assign.main(["--src", str(src), "--dst", str(tmp_path / "exercises")]) == 2


def test_magics_become_pass_and_keep_line_numbers():
    src = "%matplotlib inline\nx = 1\n!pip install foo\ny = 2\nif x:\n    %time y\n"
    out = assign.strip_magics(src)
    assert out.splitlines()[1:4:2] == ["x = 1", "y = 2"] and len(out.splitlines()) == 6
    compile(out, "<cell>", "exec")


def test_defined_names_are_listed_for_check_all(tmp_path):
    path = write(tmp_path, "01_a_exercises.ipynb", notebook(code(GRADED, tags=["exercise"], ex=("1.1", "t"))))
    (info,), problems = assign.parse_master(path)
    assert problems == [] and info.names == ("ema", "helper") and info.cell_index == 0 and info.cell_id == "id0"


# ---- the course's real content ---------------------------------------------------------------


def test_the_masters_hold_at_least_16_exercises_in_notebooks_01_to_06():
    exercises = assign.collect_masters(ROOT / "solutions")  # raises MasterError, listing every problem
    ids = [e.id for e in exercises]
    assert len(ids) >= 16, f"the course needs at least 16 exercises in solutions/; found {len(ids)}: {ids}"
    prefixes = {p.name[:2] for p in (ROOT / "solutions").glob(assign.MASTER_GLOB)}
    assert {f"{n:02d}" for n in range(1, 7)} <= prefixes, f"masters 01..06 expected; found {sorted(prefixes)}"
    for path in sorted((ROOT / "solutions").glob(assign.MASTER_GLOB)):
        kernel = assign.read_notebook(path)["metadata"].get("kernelspec", {}).get("name")
        assert kernel == "loss-scaling", f"{path.name}: kernel should be 'loss-scaling'; got {kernel!r}"


def test_committed_exercises_equal_a_fresh_generation(tmp_path):
    problems = check_exercises(ROOT / "solutions", ROOT / "exercises")
    assert problems == [], "\n".join(problems)
    generate_exercises(ROOT / "solutions", tmp_path)
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob(assign.MASTER_GLOB)}
    committed = {p.name: p.read_bytes() for p in (ROOT / "exercises").glob(assign.MASTER_GLOB)}
    assert fresh and committed == fresh
    for name, data in committed.items():
        assert b"BEGIN SOLUTION" not in data and b"END SOLUTION" not in data, f"{name} leaks a solution"


def test_the_command_line_check_passes_on_the_repository_without_a_warning():
    """``python -m course_lib.grading assign`` (what ``make exercises`` runs) prints no runpy warning
    (``python -m course_lib.grading.assign`` did: the package's __init__ had imported the module)."""
    out = subprocess.run([sys.executable, "-m", "course_lib.grading", "assign", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "exercises/ is up to date" in out.stdout
    assert "Warning" not in out.stderr, out.stderr
