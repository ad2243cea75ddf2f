"""Student copies of the exercise notebooks, generated from one master each (nbgrader / otter style).

A master ``solutions/NN_<topic>_exercises.ipynb`` holds the reference answers between the lines
``### BEGIN SOLUTION`` and ``### END SOLUTION`` inside its *graded cells* (code cells tagged
``"exercise"`` with ``metadata.exercise = {"id": "3.2", "title": "..."}``). The student copy
``exercises/NN_<topic>_exercises.ipynb`` is the master with each solution block replaced by

    raise NotImplementedError("Exercise 3.2: implement ema(values, beta)")

at the block's indentation, outputs stripped, everything else identical (same cells, same ids,
same metadata). The format is fixed in the course's FORMAT contract; this module enforces it:
every problem it finds names the notebook, the cell and what is wrong, and nothing is written
while any master has a problem.

Run ``python -m course_lib.grading assign`` (``make exercises``) to regenerate, ``--check`` to verify
that the committed copies equal a fresh generation (exit status 1 and a list of differences
if not).

Example:
    >>> cell = {"cell_type": "code", "id": "c1", "outputs": [], "execution_count": None,
    ...         "metadata": {"tags": ["exercise"], "exercise": {"id": "1.1", "title": "double x"}},
    ...         "source": "def double(x):\\n    ### BEGIN SOLUTION\\n    return 2 * x\\n    ### END SOLUTION\\n"}
    >>> nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    >>> print(student_copy(nb)["cells"][0]["source"])
    def double(x):
        raise NotImplementedError("Exercise 1.1: double x")
    <BLANKLINE>
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ._common import id_key

__all__ = ["BEGIN", "END", "MASTER_GLOB", "PLOTTING_MODULES", "MasterError", "ExerciseInfo", "collect_masters",
           "parse_master", "read_notebook", "render_notebook", "strip_magics", "student_copy", "generate_exercises",
           "check_exercises", "main"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
MASTER_GLOB = "[0-9][0-9]_*_exercises.ipynb"
# Modules that draw or wire widgets: they may hang a headless grader, so setup and graded cells
# must not import them (untagged cells may, the grader never runs those). The course's own
# drawing code is one prefix, course_lib.ui: a new lesson's figures are covered without a list.
PLOTTING_MODULES = ("matplotlib", "ipywidgets", "seaborn", "plotly", "ipympl", "tqdm.notebook", "course_lib.ui")
_ID = re.compile(r"^\d+\.\d+$")
# Anything that looks like a marker ("# BEGIN SOLUTION", "### END SOLUTIONS", "### begin solution")
# but is not exactly BEGIN/END is an error: a mistyped marker would leak the solution.
_MARKERISH = re.compile(r"^#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)
_MAGIC = re.compile(r"^(\s*)[%!]")


class MasterError(ValueError):
    """A master notebook breaks the exercise format; the message lists every problem found."""


@dataclass(frozen=True)
class ExerciseInfo:
    """One graded cell of a notebook.

    Attributes:
        id: the exercise id, e.g. ``"3.2"``.
        title: what to do, e.g. ``"implement ema(values, beta)"``.
        notebook: the notebook file.
        cell_index: position of the cell in the notebook (0-based).
        cell_id: the cell's nbformat id.
        names: top-level names the cell defines (functions, classes, assignments).
    """

    id: str
    title: str
    notebook: Path
    cell_index: int
    cell_id: str | None
    names: tuple[str, ...] = field(default=())


# ---- reading and writing notebooks -----------------------------------------------------------


def read_notebook(path: str | os.PathLike) -> dict:
    """The notebook's JSON as a dict (no nbformat upgrade or normalisation: bytes stay stable)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def render_notebook(nb: dict) -> str:
    """The notebook as text, formatted like Jupyter and nbformat save it (stable bytes)."""
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def set_cell_source(cell: dict, text: str) -> None:
    # Keep the master's representation (a list of lines, as Jupyter saves, or one string).
    cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text


def cell_tags(cell: dict) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def strip_magics(source: str) -> str:
    """Replace IPython magic and shell lines (``%time``, ``!pip``) by ``pass``, keeping line numbers."""
    return "".join(_MAGIC.sub(r"\1pass  # ", line, count=1) if _MAGIC.match(line) else line
                   for line in source.splitlines(keepends=True))


# ---- parsing a master ------------------------------------------------------------------------


def _where(path: Path, index: int, cell: dict, ex_id: str | None = None) -> str:
    what = f"cell {index + 1} (id {cell.get('id', '?')!r}"
    return f"{path}, {what}{', exercise ' + ex_id if ex_id else ''})"


def _solution_blocks(source: str) -> tuple[list[tuple[int, int, str]], list[str]]:
    """(start line, end line, indentation) of each solution block, and the marker problems."""
    blocks, problems, start, indent = [], [], None, ""
    for i, line in enumerate(source.splitlines()):
        text = line.strip()
        if text == BEGIN:
            if start is not None:
                problems.append(f"'{BEGIN}' on line {i + 1} opens a block inside the block opened on line "
                                f"{start + 1} (missing '{END}')")
            start, indent = i, line[: len(line) - len(line.lstrip())]
        elif text == END:
            if start is None:
                problems.append(f"'{END}' on line {i + 1} has no matching '{BEGIN}'")
            else:
                if i == start + 1:
                    problems.append(f"the solution block on lines {start + 1}-{i + 1} is empty")
                blocks.append((start, i, indent))
                start = None
        elif _MARKERISH.match(text):
            problems.append(f"line {i + 1} {text!r} looks like a solution marker; write exactly '{BEGIN}' "
                            f"or '{END}' (a mistyped marker would leak the solution)")
    if start is not None:
        problems.append(f"'{BEGIN}' on line {start + 1} has no matching '{END}'")
    return blocks, problems


def _replace_blocks(source: str, blocks, replace: Callable[[str, list[str]], list[str]]) -> str:
    """Replace each block (markers included) by ``replace(indent, solution_lines)``."""
    lines = source.splitlines(keepends=True)
    out, prev = [], 0
    for start, end, indent in blocks:
        out += lines[prev:start]
        newline = "\n" if lines[end].endswith("\n") else ""
        body = replace(indent, [ln.rstrip("\r\n") for ln in lines[start + 1:end]])
        out += [ln + "\n" for ln in body[:-1]] + [body[-1] + newline] if body else []
        prev = end + 1
    out += lines[prev:]
    return "".join(out)


def _stub(ex_id: str, title: str) -> Callable[[str, list[str]], list[str]]:
    message = json.dumps(f"Exercise {ex_id}: {title}", ensure_ascii=False)  # a valid Python literal too
    return lambda indent, solution: [f"{indent}raise NotImplementedError({message})"]


def _imports(tree: ast.AST) -> Iterable[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _plotting_import(tree: ast.AST) -> tuple[int, str] | None:
    for lineno, name in _imports(tree):
        if any(name == m or name.startswith(m + ".") for m in PLOTTING_MODULES):
            return lineno, name
    return None


def _defined_names(tree: ast.Module) -> tuple[str, ...]:
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return tuple(names)


def exercise_meta(cell: dict) -> tuple[str | None, str | None]:
    meta = cell.get("metadata", {}).get("exercise")
    if not isinstance(meta, dict):
        return None, None
    ex_id, title = meta.get("id"), meta.get("title")
    return (str(ex_id) if ex_id is not None else None), title


def parse_master(path: str | os.PathLike, nb: dict | None = None) -> tuple[list[ExerciseInfo], list[str]]:
    """The graded cells of a master and every format problem found (empty when the master is valid).

    Problems checked: a missing or unmatched marker, an empty or mistyped marker, a graded cell
    without a solution block, a solution block outside a graded cell (it would reach students),
    a missing or malformed exercise id or title, a cell tagged both setup and exercise, a setup or
    graded cell that does not parse or imports plotting/widget modules, a student copy that would
    not parse. Duplicate ids across notebooks are checked by :func:`generate_exercises`.
    """
    path = Path(path)
    nb = read_notebook(path) if nb is None else nb
    found, problems = [], []
    for index, cell in enumerate(nb.get("cells", [])):
        tags, (ex_id, title) = cell_tags(cell), exercise_meta(cell)
        graded, setup = "exercise" in tags, "setup" in tags
        where = _where(path, index, cell, ex_id)
        source = cell_source(cell)
        blocks, marker_problems = _solution_blocks(source)
        if cell.get("cell_type") != "code":
            if graded or setup:
                problems.append(f"{where}: tagged {'exercise' if graded else 'setup'} but is a "
                                f"{cell.get('cell_type')} cell, not a code cell")
            continue
        if not graded:
            if blocks or marker_problems:
                problems.append(f"{where}: has solution markers but is not tagged 'exercise' "
                                f"(the solution would reach students)")
            if ex_id is not None:
                problems.append(f"{where}: has metadata.exercise but not the tag 'exercise'")
        if graded and setup:
            problems.append(f"{where}: tagged both 'setup' and 'exercise'; use one")
        if graded:
            if ex_id is None or not _ID.match(ex_id):
                problems.append(f"{where}: metadata.exercise.id must look like '3.2', got {ex_id!r}")
            if not isinstance(title, str) or not title.strip():
                problems.append(f"{where}: metadata.exercise.title must be a non-empty string, got {title!r}")
            problems += [f"{where}: {p}" for p in marker_problems]
            if not blocks and not marker_problems:
                problems.append(f"{where}: graded cell without a solution block ('{BEGIN}' ... '{END}')")
        if not (graded or setup):
            continue
        try:
            tree = ast.parse(strip_magics(source))
        except SyntaxError as e:
            problems.append(f"{where}: does not parse: {e.msg} (line {e.lineno})")
            continue
        hit = _plotting_import(tree)
        if hit:
            problems.append(f"{where}: line {hit[0]} imports {hit[1]!r}; setup and graded cells must not import "
                            f"plotting or widget modules (the grader runs them headless)")
        if graded and blocks and not marker_problems and ex_id is not None:
            stub = _replace_blocks(source, blocks, _stub(ex_id, title or ""))
            try:
                ast.parse(strip_magics(stub))
            except SyntaxError as e:
                problems.append(f"{where}: the student copy would not parse ({e.msg}, line {e.lineno}); indent "
                                f"'{BEGIN}' like the code it replaces")
            found.append(ExerciseInfo(ex_id, title if isinstance(title, str) else "", path, index,
                                      cell.get("id"), _defined_names(tree)))
    return found, problems


# ---- student copies --------------------------------------------------------------------------


def student_copy(nb: dict, *, replace: Callable[[str, str, str, list[str]], list[str]] | None = None) -> dict:
    """The student copy of a master: solution blocks replaced, outputs stripped, all else kept.

    Args:
        nb: the master notebook (a dict as read from JSON); it is not modified.
        replace: ``replace(ex_id, title, indent, solution_lines) -> lines`` builds what replaces a
            block, markers included (default: the ``raise NotImplementedError("Exercise <id>: <title>")``
            stub). The test suite uses it to build synthetic submissions (infinite loops, ...).

    Returns:
        a new notebook dict.
    """
    out = copy.deepcopy(nb)
    for cell in out.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        if "exercise" not in cell_tags(cell):
            continue
        ex_id, title = exercise_meta(cell)
        blocks, _ = _solution_blocks(cell_source(cell))
        make = (_stub(ex_id, title or "") if replace is None
                else (lambda indent, solution, _i=ex_id, _t=title: replace(_i, _t or "", indent, solution)))
        set_cell_source(cell, _replace_blocks(cell_source(cell), blocks, make))
    return out


def _masters(src: Path) -> list[Path]:
    return sorted(p for p in src.glob(MASTER_GLOB) if p.is_file())


def _validated(src: Path) -> tuple[list[tuple[Path, dict]], list[ExerciseInfo]]:
    """Every master with its parsed JSON, after checking all of them; raises MasterError listing all problems."""
    masters, exercises, problems, seen = [], [], [], {}
    for path in _masters(src):
        try:
            nb = read_notebook(path)
        except (OSError, ValueError) as e:
            problems.append(f"{path}: not a readable notebook ({e})")
            continue
        found, found_problems = parse_master(path, nb)
        problems += found_problems
        for ex in found:
            if ex.id in seen:
                first = seen[ex.id]
                problems.append(f"{path}, cell {ex.cell_index + 1} (id {ex.cell_id!r}): duplicate exercise id "
                                f"{ex.id!r}, already used by {first.notebook}, cell {first.cell_index + 1}")
            else:
                seen[ex.id] = ex
        masters.append((path, nb))
        exercises += found
    if problems:
        raise MasterError(f"{len(problems)} problem(s) in the masters in {src}:\n- " + "\n- ".join(problems))
    return masters, sorted(exercises, key=lambda e: id_key(e.id))


def collect_masters(src: str | os.PathLike = "solutions") -> list[ExerciseInfo]:
    """Every exercise of the masters in ``src``, sorted by id (raises MasterError on any problem)."""
    return _validated(Path(src))[1]


def _expected(src: Path, dst: Path) -> dict[Path, str]:
    masters, _ = _validated(src)
    return {dst / path.name: render_notebook(student_copy(nb)) for path, nb in masters}


def _stale_extras(src: Path, dst: Path, expected: dict[Path, str]) -> list[Path]:
    return sorted(p for p in dst.glob(MASTER_GLOB) if p not in expected) if dst.is_dir() else []


def generate_exercises(src: str | os.PathLike = "solutions", dst: str | os.PathLike = "exercises") -> dict[str, list[Path]]:
    """Write the student copy of every master in ``src`` to ``dst``.

    All masters are validated first (nothing is written if any has a problem). Files whose
    content is already right are not touched; generated copies whose master is gone are removed.

    Returns:
        ``{"written": [...], "unchanged": [...], "removed": [...]}``.
    """
    src, dst = Path(src), Path(dst)
    expected = _expected(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    report = {"written": [], "unchanged": [], "removed": []}
    for path, text in expected.items():
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            report["unchanged"].append(path)
            continue
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a crash never leaves half a notebook
        report["written"].append(path)
    for extra in _stale_extras(src, dst, expected):
        extra.unlink()
        report["removed"].append(extra)
    return report


def _first_difference(a: str, b: str) -> str:
    try:
        ca, cb = json.loads(a).get("cells", []), json.loads(b).get("cells", [])
    except ValueError:
        return "the file is not valid JSON"
    for i, (x, y) in enumerate(zip(ca, cb)):
        if x != y:
            return f"first difference in cell {i + 1} (id {y.get('id', '?')!r})"
    if len(ca) != len(cb):
        return f"{len(ca)} cells instead of {len(cb)}"
    return "same cells, different formatting or notebook metadata"


def check_exercises(src: str | os.PathLike = "solutions", dst: str | os.PathLike = "exercises") -> list[str]:
    """What differs between ``dst`` and a fresh generation from ``src`` (empty list: up to date)."""
    src, dst = Path(src), Path(dst)
    expected = _expected(src, dst)
    problems = []
    for path, text in expected.items():
        if not path.is_file():
            problems.append(f"{path} is missing (run `make exercises`)")
        else:
            have = path.read_bytes().decode("utf-8", errors="replace")
            if have != text:
                problems.append(f"{path} is stale: it differs from a fresh generation of {src / path.name} "
                                f"({_first_difference(have, text)}); run `make exercises`")
    for extra in _stale_extras(src, dst, expected):
        problems.append(f"{extra} has no master in {src} (remove it, or run `make exercises`)")
    return problems


def main(argv: list[str] | None = None, prog: str = "python -m course_lib.grading assign") -> int:
    """``python -m course_lib.grading assign [--check] [--src solutions] [--dst exercises]``."""
    ap = argparse.ArgumentParser(prog=prog, description=(
        "Generate the student copies (exercises/) from the masters (solutions/)."))
    ap.add_argument("--src", default="solutions", help="folder of the masters (default: solutions)")
    ap.add_argument("--dst", default="exercises", help="folder of the student copies (default: exercises)")
    ap.add_argument("--check", action="store_true", help="only report files that differ from a fresh generation")
    args = ap.parse_args(argv)
    try:
        n = len(_masters(Path(args.src)))
        if args.check:
            problems = check_exercises(args.src, args.dst)
            for p in problems:
                print(p, file=sys.stderr)
            if problems:
                return 1
            print(f"{args.dst}/ is up to date ({n} notebook(s), {len(collect_masters(args.src))} exercise(s))")
            return 0
        report = generate_exercises(args.src, args.dst)
    except MasterError as e:
        print(e, file=sys.stderr)
        return 2
    for key in ("written", "removed"):
        for p in report[key]:
            print(f"{key}: {p}")
    print(f"{n} master(s) in {args.src}/: {len(report['written'])} written, {len(report['unchanged'])} unchanged, "
          f"{len(report['removed'])} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
