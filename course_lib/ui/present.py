"""Present a lesson without code: Voila serves its prose, figures and live panels, no code cells.

``make present NB=03`` runs ``python -m course_lib.ui.present 03``; without a lesson it serves a
gallery page with a link to every lesson's dashboard and the panels each one holds. Either way:
Voila on 127.0.0.1 only, with a fresh secret token in the printed address (as ``make lab``: the
token stops other users of the machine from running code in the kernel), and the projector theme
(``COURSE_LECTURE=1``, read by ``ui.setup_notebook``).

Reference: Voila, QuantStack and Voila contributors (https://github.com/voila-dashboards/voila).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

__all__ = ["gallery_notebook", "lesson_path", "main", "voila_command"]

COURSE_ROOT = Path(__file__).resolve().parents[2]
GALLERY = Path("build") / "present" / "gallery.ipynb"  # generated at start, under the course root (build/ is ignored)
DEFAULT_PORT = 8866  # Voila's own default; `make present PORT=...` overrides it
# A code cell that shows a live panel: a panel's .show() (not matplotlib's plt.show() / fig.show()) or a lab.
_PANEL = re.compile(r"(?<!plt)(?<!fig)\.show\(|Lab\(")


def _lessons(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]*_*.ipynb"))      # 02b_... too (a lesson split in two)


def lesson_path(nb: str, root: Path = COURSE_ROOT) -> Path:
    """The lesson notebook that ``nb`` names: its number (``"03"`` or ``"3"``) or its file name.

    Args:
        nb (str): ``"03"``, ``"3"``, ``"03_reading_loss_curves"`` or ``"03_reading_loss_curves.ipynb"``.
        root (Path): the course folder. Default: this checkout.

    Returns:
        Path: the notebook under ``notebooks/``.

    Example:
        >>> lesson_path("3").name
        '03_reading_loss_curves.ipynb'
    """
    lessons = _lessons(root)
    text = str(nb).strip().removesuffix(".ipynb")
    wanted = f"{int(text):02d}" if text.isdigit() else text
    found = [p for p in lessons if p.stem == wanted or p.stem.split("_")[0] == wanted]
    if len(found) != 1:
        allowed = ", ".join(p.stem.split("_")[0] for p in lessons)
        raise ValueError(f"present: NB must be a lesson number ({allowed}) or a notebook name in notebooks/; "
                         f"got {nb!r}")
    return found[0]


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _lesson_entry(path: Path, link: str) -> str:
    """One gallery entry: the lesson's title as a link, its opening question, its panel sections."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    title = _text(cells[0]).splitlines()[0].lstrip("# ").strip() if cells else path.stem
    paragraphs = [p.strip() for p in _text(cells[0]).split("\n\n")[1:] if p.strip() and not p.startswith("#")]
    lines = [f"### [{title}]({link})", ""] + ([paragraphs[0], ""] if paragraphs else [])
    section, panels = None, []
    for cell in cells:
        if cell.get("cell_type") == "markdown" and _text(cell).startswith("## "):
            section = _text(cell).splitlines()[0][3:].strip()
        elif cell.get("cell_type") == "code" and section and _PANEL.search(_text(cell)) and section not in panels:
            panels.append(section)
    if panels:
        lines.append("Live panels: " + "; ".join(f"*{s}*" for s in panels) + ".")
    demos = _demos(path.stem.split("_")[0])   # "02b_...": lesson 02b
    if demos:
        lines += ["", "Prepared demos (pick them above the lab or panel):"]
        lines += [f"- **{d.name}**: {d.script}" for d in demos]
    return "\n".join(lines)


def _demos(lesson: str) -> list:
    """The lesson's prepared demos (``ui.demos``), or none where that module is not installed."""
    try:
        from .demos import demos_for
    except ImportError:
        return []
    return demos_for(lesson)


def gallery_notebook(root: Path = COURSE_ROOT, at: Path = GALLERY) -> dict:
    """The gallery page: every lesson with a link to its code-free dashboard (a notebook of markdown).

    Args:
        root (Path): the course folder. Default: this checkout.
        at (Path): where the gallery will live, relative to ``root`` (the links are relative to it).

    Returns:
        dict: an nbformat-4 notebook.

    Example:
        >>> nb = gallery_notebook()
        >>> "03_reading_loss_curves.ipynb" in nb["cells"][1]["source"]
        True
    """
    up = "../" * (len(Path(at).parts) - 1)
    entries = [_lesson_entry(p, f"{up}notebooks/{p.name}") for p in _lessons(root)]
    intro = ("# Loss & Scaling: the lessons, live\n\nEach link opens a lesson as a page without code: its text, "
             "figures and live panels. Loading a lesson runs it first: allow a minute or two on a busy machine.")
    md = {"cell_type": "markdown", "metadata": {}}
    return {"cells": [dict(md, source=intro), dict(md, source="\n\n".join(entries))],
            "metadata": {"kernelspec": {"display_name": "Loss & Scaling (course)", "language": "python",
                                        "name": "loss-scaling"}},
            "nbformat": 4, "nbformat_minor": 5}


def voila_command(target: Path, port: int = DEFAULT_PORT, *, preheat: bool = False) -> list[str]:
    """The Voila command line: ``target`` is a notebook (one dashboard) or a folder (the gallery's root).

    The token is not on the command line (other users could read it there): Voila's ``--token``
    flag turns authentication on, and the token comes from ``JUPYTER_TOKEN`` (see :func:`main`).
    ``preheat`` (one notebook only) runs the lesson in a spare kernel as soon as the server starts
    and again after each page load, so the next visitor gets a page that is ready at once.

    Example:
        >>> voila_command(Path("notebooks/03_reading_loss_curves.ipynb"), 9000)[-4:]
        ['--port=9000', '--Voila.ip=127.0.0.1', '--no-browser', '--token']
    """
    extra = ["--preheat_kernel=True", "--pool_size=1"] if preheat and Path(target).suffix == ".ipynb" else []
    return [sys.executable, "-m", "voila", str(target), "--theme=light", "--strip_sources=True", *extra,
            f"--port={port}", "--Voila.ip=127.0.0.1", "--no-browser", "--token"]


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.ui.present [NB] [--port P]``: serve a lesson (or the gallery) until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.ui.present", description=__doc__.split("\n\n")[0])
    parser.add_argument("nb", nargs="?", default="", help="a lesson number such as 03; none: the gallery of lessons")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT))
    args = parser.parse_args(argv)
    try:
        notebook = lesson_path(args.nb) if args.nb else None
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if notebook is None:
        gallery = COURSE_ROOT / GALLERY
        gallery.parent.mkdir(parents=True, exist_ok=True)
        gallery.write_text(json.dumps(gallery_notebook(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        target, page = COURSE_ROOT, f"voila/render/{GALLERY.as_posix()}"
    else:
        target, page = notebook, ""
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_urlsafe(24)
    env = dict(os.environ, JUPYTER_TOKEN=token, COURSE_LECTURE=os.environ.get("COURSE_LECTURE", "1"))
    print(f"Presenting {notebook.name if notebook else 'the gallery of lessons'} without code. Open:\n"
          f"    http://127.0.0.1:{args.port}/{page}?token={token}\n(Ctrl-C stops the server.)", flush=True)
    try:
        return subprocess.call(voila_command(target, args.port, preheat=True), cwd=COURSE_ROOT, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
