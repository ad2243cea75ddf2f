"""Slide metadata (RISE): every lesson notebook's is current, and the rules cut a lesson the way
a lecturer would (a slide per section, predict/run/reveal as fragments, set-up and checks hidden)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.ui import slides
from course_lib.ui.slides import apply_slides, slide_types

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def md(text, *tags):
    return {"cell_type": "markdown", "source": text, "metadata": {"tags": list(tags)} if tags else {}}


def code(text="x = 1", *tags):
    return {"cell_type": "code", "source": text, "metadata": {"tags": list(tags)} if tags else {}}


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_lesson_notebooks_slide_metadata_is_current(path):
    text = path.read_text(encoding="utf-8")
    assert apply_slides(text) == text, f"{path.name}: slide metadata is stale; run `python -m course_lib.ui.slides`"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_each_section_is_a_slide_and_set_up_and_checks_are_hidden(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    kinds = [c["metadata"]["slideshow"]["slide_type"] for c in cells]
    assert set(kinds) <= set(slides.SLIDE_TYPES), f"{path.name}: unknown slide types {set(kinds)}"
    text = ["".join(c["source"]) for c in cells]
    sections = [i for i, (c, t) in enumerate(zip(cells, text)) if c["cell_type"] == "markdown" and t.startswith("## ")]
    assert sections and all(kinds[i] == "slide" for i in sections), f"{path.name}: a ## section is not a slide"
    assert kinds[0] == "slide", f"{path.name}: the title is not the first slide"
    assert all(k == "skip" for c, k in zip(cells, kinds) if "check" in c["metadata"].get("tags", [])), path.name
    assert all(k == "skip" for c, k in zip(cells[:sections[0]], kinds) if c["cell_type"] == "code"), path.name
    shown_code = [k for c, k in zip(cells, kinds) if c["cell_type"] == "code" and k != "skip"]
    assert shown_code, f"{path.name}: no code is shown: the slides would have no figures or panels"


def test_predict_run_reveal_become_fragments_and_the_chain_ends_there():
    cells = [md("# T"), code("import torch"), md("## 1. S"), code(), md("**Predict.** Will it fall?"), code(),
             md("It fell, because ..."), md("More text."), code(), md("After the run.")]
    assert slide_types(cells) == ["slide", "skip", "slide", "-", "subslide", "fragment", "fragment", "-", "-",
                                  "subslide"]


def test_a_heading_that_says_predict_starts_the_chain_and_a_heading_breaks_it():
    cells = [md("# T"), md("## 3. Predict, then run\nWhich is higher?"), code(), md("### Reveal heading"), code()]
    assert slide_types(cells) == ["slide", "slide", "fragment", "subslide", "-"]
    # "predictably" in prose is not a prompt
    assert slide_types([md("## 1. S"), md("It falls predictably."), code()]) == ["slide", "-", "-"]


def test_notes_tag_makes_speaker_notes_and_checks_are_skipped_without_breaking_the_flow():
    cells = [md("## 1. S"), code(), md("Say this aloud.", "notes"), code("assert x", "check"), md("Read on.")]
    assert slide_types(cells) == ["slide", "-", "notes", "skip", "subslide"]


def test_apply_slides_changes_only_slideshow_metadata_and_is_idempotent():
    nb = {"cells": [md("# T", "keep"), code("y = 2", "check")], "metadata": {"kernelspec": {"name": "k"}},
          "nbformat": 4, "nbformat_minor": 5}
    nb["cells"][1]["metadata"]["jupyter"] = {"source_hidden": True}
    nb["cells"][0]["metadata"]["slideshow"] = {"slide_type": "fragment"}  # stale: replaced
    once = apply_slides(json.dumps(nb))
    out = json.loads(once)
    assert out["cells"][0]["metadata"] == {"slideshow": {"slide_type": "slide"}, "tags": ["keep"]}
    assert out["cells"][1]["metadata"] == {"jupyter": {"source_hidden": True}, "slideshow": {"slide_type": "skip"},
                                           "tags": ["check"]}
    assert out["metadata"] == nb["metadata"] and [c["source"] for c in out["cells"]] == ["# T", "y = 2"]
    assert apply_slides(once) == once


def test_slide_types_names_what_it_needs_on_bad_input():
    with pytest.raises(TypeError, match=r"cells must be a list .*got dict"):
        slide_types({"cells": []})


def test_the_command_checks_then_writes_then_passes(tmp_path, capsys):
    stale = tmp_path / "lesson.ipynb"
    shutil.copy(LESSONS[0], stale)
    nb = json.loads(stale.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["metadata"].pop("slideshow", None)
    stale.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert slides.main(["--check", str(stale)]) == 1
    assert "1 stale" in capsys.readouterr().out
    assert slides.main([str(stale)]) == 0
    assert stale.read_bytes() == LESSONS[0].read_bytes()
    assert slides.main(["--check", str(stale)]) == 0
    assert slides.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err


def test_python_dash_m_entry_point_checks_the_course():
    out = subprocess.run([sys.executable, "-m", "course_lib.ui.slides", "--check"], check=False, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(LESSONS)} notebooks, 0 stale" in out.stdout
