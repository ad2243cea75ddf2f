"""The students' edition of the course: the instructor's repository minus every answer.

``make release OUT=dist/student`` (``python -m course_lib.grading release OUT``) writes a folder
students can clone, the way ``nbgrader generate_assignment`` and ``otter assign`` produce one:

* kept: ``notebooks/``, ``course_lib/``, ``exercises/`` (generated afresh from the masters),
  the shipped grading tests (``grading/tests``, ``conftest.py``, ``pytest.ini``), the set-up files
  (``Makefile``, ``requirements/``, ``environment.yml``, ``pyproject.toml``, ``.gitignore``) and a
  README that speaks to students;
* left out: ``solutions/``, ``grading/hidden/``, ``grading/audit/``, ``tests/``, ``benchmarks/``,
  ``.ci/``, and every part of the README and the Makefile between the markers
  ``instructors-only`` and ``/instructors-only``;
* added: ``tests/test_student_edition.py``, the edition's own check (``make test`` in it).

The build then proves no answer leaked: no solution block of any master (its lines, in order,
whitespace aside) appears in any file of the release; it raises :class:`ReleaseLeakError` if one does.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from . import assign
from ._common import course_root

__all__ = ["ReleaseLeakError", "build_release", "find_leaks", "solution_blocks"]

KEEP_DIRS = ("notebooks", "course_lib", "requirements", "grading/tests")
KEEP_FILES = ("Makefile", "README.md", "environment.yml", "pyproject.toml", ".gitignore",
              "grading/conftest.py", "grading/pytest.ini")
NEVER = ("solutions", "grading/hidden", "grading/audit", "tests", "benchmarks", ".ci")
_MARKED = re.compile(r"^[ \t]*(?:<!--|#)\s*instructors-only\s*(?:-->)?[ \t]*\n.*?^[ \t]*(?:<!--|#)\s*/instructors-only"
                     r"\s*(?:-->)?[ \t]*\n", re.MULTILINE | re.DOTALL)

STUDENT_TEST = '''"""The students' edition checks itself: `make test` here (or `.venv/bin/python -m pytest tests`)."""

from pathlib import Path

from course_lib import grading
from course_lib.grading import assign, extract

ROOT = Path(__file__).resolve().parents[1]


def test_this_edition_holds_no_answers():
    assert not (ROOT / "solutions").exists() and not (ROOT / "grading" / "hidden").exists()


def test_every_exercise_has_its_shipped_tests():
    exercises = set(extract.notebooks_in(ROOT / "exercises")[0])
    tested = {t["exercise"] for t in grading.collect_tests(ROOT, hidden=False)}
    assert exercises and exercises <= tested, sorted(exercises - tested)


def test_check_runs_an_exercises_tests_in_this_kernel(capsys):
    ex_id = sorted({t["exercise"] for t in grading.collect_tests(ROOT, hidden=False)}, key=assign.id_key)[0]
    res = grading.check(ex_id, root=ROOT, namespace={"__name__": "__main__"})
    assert res.max_points[ex_id] > 0 and not res.passed
    assert f"Exercise {ex_id}" in capsys.readouterr().out
'''


class ReleaseLeakError(RuntimeError):
    """A file of the students' edition holds the code of a solution block."""


def _norm(lines) -> list[str]:
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def solution_blocks(solutions: str | os.PathLike) -> list[tuple[str, list[str]]]:
    """``(where, code lines)`` of every solution block of the masters in ``solutions`` (markers and
    comments left out, whitespace stripped)."""
    out = []
    for path in sorted(Path(solutions).glob(assign.MASTER_GLOB)):
        for index, cell in enumerate(assign.read_notebook(path)["cells"]):
            if cell.get("cell_type") != "code":
                continue
            lines = assign.cell_source(cell).splitlines()
            for start, end, _ in assign._solution_blocks("\n".join(lines))[0]:
                code = _norm(lines[start + 1:end])
                if code:
                    out.append((f"{path.name}, cell {index + 1}", code))
    return out


def _text_lines(path: Path) -> list[str] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    text = data.decode("utf-8", "replace")
    if path.suffix == ".ipynb":  # the code as a notebook holds it: one JSON string per line
        import json
        try:
            nb = json.loads(text)
            return [ln for c in nb.get("cells", []) for ln in assign.cell_source(c).splitlines()]
        except ValueError:
            pass
    return text.splitlines()


MIN_BLOCK_CHARS = 16  # a block shorter than this (``return 1.0``) is ordinary code, not an answer one could find


def find_leaks(folder: str | os.PathLike, blocks: list, min_chars: int = MIN_BLOCK_CHARS) -> list[str]:
    """Every ``file: block`` where all the lines of a solution block appear in a file, in order and
    next to each other (whitespace and comment lines aside). Blocks of fewer than ``min_chars``
    characters of code are not looked for."""
    blocks = [(w, code) for w, code in blocks if len("".join(code)) >= min_chars]
    leaks = []
    files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    for p in files:
        lines = _text_lines(p)
        if lines is None:
            continue
        norm = _norm(lines)
        joined = "\n" + "\n".join(norm) + "\n"
        for where, code in blocks:
            if "\n" + "\n".join(code) + "\n" in joined:
                leaks.append(f"{p.relative_to(folder)} holds the solution block of {where}")
    return leaks


def _strip_instructor_parts(text: str) -> str:
    return _MARKED.sub("", text)


def build_release(out: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write the students' edition of the course in ``out`` (emptied first; it must not be inside the
    course's own folders) and prove it holds no answer.

    Raises:
        ReleaseLeakError: some file of the edition holds a solution block (the folder is left for inspection).
        ValueError: ``out`` is the course itself, or one of its source folders.
    """
    root = course_root(root)
    out = Path(out).resolve()
    if out == root or out in root.parents or any(out == root / d or (root / d) in out.parents
                                                  for d in KEEP_DIRS + NEVER + ("exercises",)):
        raise ValueError(f"build_release(): 'out' must be a new folder outside the course's sources, got {out}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", ".pytest_cache")
    for d in KEEP_DIRS:
        if (root / d).is_dir():
            shutil.copytree(root / d, out / d, ignore=ignore)
    for f in KEEP_FILES:
        if (root / f).is_file():
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            text = (root / f).read_text(encoding="utf-8")
            (out / f).write_text(_strip_instructor_parts(text) if f in ("README.md", "Makefile") else text,
                                 encoding="utf-8")
    assign.generate_exercises(root / "solutions", out / "exercises")
    (out / "tests").mkdir()
    (out / "tests" / "test_student_edition.py").write_text(STUDENT_TEST, encoding="utf-8")
    present = [d for d in NEVER if d != "tests" and (out / d).exists()]
    leaks = find_leaks(out, solution_blocks(root / "solutions"))
    if present or leaks:
        raise ReleaseLeakError("the students' edition is not clean: " + "; ".join(
            [f"{d}/ is present" for d in present] + leaks[:20]))
    return out


def main(argv: list[str] | None = None, prog: str = "python -m course_lib.grading release") -> int:
    """``python -m course_lib.grading release OUT``."""
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Write the students' edition of the course (no solutions, no hidden tests).")
    ap.add_argument("out")
    ap.add_argument("--root", default=None)
    args = ap.parse_args(argv)
    try:
        out = build_release(args.out, args.root)
    except (ReleaseLeakError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    n = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"students' edition written to {out} ({n} files); no solution block found in any of them; "
          f"check it with: cd {out} && make test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
