"""Slide metadata for presenting a lesson notebook as a slideshow (RISE for JupyterLab).

Every lesson notebook carries, per cell, ``metadata.slideshow.slide_type``, which RISE
(``jupyterlab-rise``, built on reveal.js) reads to cut the notebook into slides. The types are
derived from the notebook's structure, never typed by hand, so a rewritten lesson gets its slides
back with one command::

    python -m course_lib.ui.slides            # rewrite notebooks/*.ipynb
    python -m course_lib.ui.slides --check    # exit 1 if a notebook's slides are out of date

The rules, in order (the first that applies wins):

* a markdown cell tagged ``notes`` -> ``notes`` (the lecturer's speaker notes, shown only in the
  speaker view);
* a code cell tagged ``check`` (the lesson's quiet claim checks) -> ``skip``, and so is every code
  cell before the first ``##`` section (the set-up: imports, seed, device);
* the title (``#``) and every ``##`` section heading -> ``slide``; a ``###`` heading -> ``subslide``;
* predict, run, reveal: after a "**Predict**" prompt, the next code cell (the run) and the markdown
  cell after it (the reveal) -> ``fragment``, so they appear one key press at a time;
* a markdown cell that follows shown code -> ``subslide`` (text, then its experiment: one screen);
* anything else -> ``-`` (continues the current slide).

Reference: RISE, Damián Avila and contributors (https://github.com/jupyterlab-contrib/rise);
reveal.js, Hakim El Hattab (https://revealjs.com).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

__all__ = ["apply_slides", "main", "slide_types"]

COURSE_ROOT = Path(__file__).resolve().parents[2]
SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
# "**Predict**", "**Predict:**", "**Predict.**" at the start of a paragraph, or a heading that says Predict.
_PREDICT = re.compile(r"(^|\n)\s*(\*\*Predict\b|#+\s*(\d+\.\s*)?Predict\b)")


def _heading_level(source: str) -> int:
    """The level of a markdown cell's leading heading (``## x`` -> 2); 0 when it does not open with one."""
    match = re.match(r"\s*(#{1,6})\s", source)
    return len(match.group(1)) if match else 0


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def slide_types(cells: list[dict]) -> list[str]:
    """The RISE slide type of each cell, from the cells' kinds, headings, tags and Predict prompts.

    Args:
        cells (list of dict): a notebook's cells, as in the ``.ipynb`` JSON (``cell_type``,
            ``source``, ``metadata``).

    Returns:
        list of str: one of ``slide``, ``subslide``, ``fragment``, ``-``, ``skip``, ``notes`` per cell.

    Example:
        >>> md = lambda s: {"cell_type": "markdown", "source": s, "metadata": {}}
        >>> code = {"cell_type": "code", "source": "x = 1", "metadata": {}}
        >>> slide_types([md("# Title"), code, md("## 1. A section"), md("**Predict.** What?"), code, md("It fell.")])
        ['slide', 'skip', 'slide', '-', 'fragment', 'fragment']
    """
    if not isinstance(cells, list):
        raise TypeError(f"slide_types: cells must be a list of notebook cells (dicts); got {type(cells).__name__}")
    types, in_section, last_shown, predict = [], False, None, 0  # predict: 1 awaits the run, 2 the reveal
    for cell in cells:
        kind, source = cell.get("cell_type"), _source(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        level = _heading_level(source) if kind == "markdown" else 0
        if kind == "markdown" and "notes" in tags:
            types.append("notes")
            continue
        if kind != "markdown" and (kind != "code" or "check" in tags or not in_section):
            types.append("skip")
            continue
        if kind == "code":
            kind_now = "fragment" if predict == 1 else "-"
            predict = 2 if predict == 1 else 0
        elif level in (1, 2):
            kind_now, in_section, predict = "slide", in_section or level == 2, 0
        elif level == 3:
            kind_now, predict = "subslide", 0
        elif predict == 2:
            kind_now, predict = "fragment", 0
        else:
            kind_now = "subslide" if last_shown == "code" else "-"
        if kind == "markdown" and _PREDICT.search(source):
            predict = 1
        types.append(kind_now)
        last_shown = kind
    return types


def apply_slides(text: str) -> str:
    """A notebook's JSON text with every cell's slide type set from :func:`slide_types`.

    Only ``metadata.slideshow`` changes; the file keeps JupyterLab's layout (one-space indent,
    UTF-8 as is), so a notebook that is already current comes back byte for byte.

    Args:
        text (str): the ``.ipynb`` file's text.

    Returns:
        str: the new text.

    Example:
        >>> nb = '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T"}]}'
        >>> json.loads(apply_slides(nb))["cells"][0]["metadata"]
        {'slideshow': {'slide_type': 'slide'}}
    """
    nb = json.loads(text)
    for cell, kind in zip(nb["cells"], slide_types(nb["cells"])):
        meta = dict(cell.get("metadata", {}), slideshow={"slide_type": kind})
        cell["metadata"] = dict(sorted(meta.items()))  # JupyterLab saves keys sorted
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.ui.slides [--check] [NOTEBOOK ...]``: set (or check) slide metadata.

    Without notebooks it works on every ``notebooks/*.ipynb`` of the course. Returns 0 when done
    (or current), 1 when ``--check`` finds stale notebooks, 2 on a missing file.
    """
    parser = argparse.ArgumentParser(prog="python -m course_lib.ui.slides", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb of the course")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any notebook is stale")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((COURSE_ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"slides: notebooks must be existing .ipynb files; not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    stale = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = apply_slides(text)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "stale (run: python -m course_lib.ui.slides)" if args.check else "updated"
    print(f"slides: {len(paths)} notebooks, {len(stale)} {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
