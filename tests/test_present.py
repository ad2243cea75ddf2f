"""`make present`: which notebook it serves, the gallery's links, and the Voila command's safety
rules (127.0.0.1, a token, no code). The page itself is tested in a real browser in
tests/test_browser_lecture.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course_lib.ui import present

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


@pytest.mark.parametrize("name", ["03", "3", "03_reading_loss_curves", "03_reading_loss_curves.ipynb"])
def test_a_lesson_is_named_by_its_number_or_its_file(name):
    assert present.lesson_path(name) == ROOT / "notebooks" / "03_reading_loss_curves.ipynb"


@pytest.mark.parametrize("bad", ["99", "three", "", "03_nope"])
def test_an_unknown_lesson_names_the_parameter_the_choices_and_the_value(bad):
    with pytest.raises(ValueError, match=rf"NB must be a lesson number \(00, 01, .*; got '{bad}'"):
        present.lesson_path(bad)


def test_main_reports_a_bad_lesson_without_starting_anything(capsys):
    assert present.main(["42"]) == 2
    assert "NB must be a lesson number" in capsys.readouterr().err


def test_the_gallery_links_every_lesson_by_its_title_and_the_links_resolve():
    nb = present.gallery_notebook()
    text = "\n".join(c["source"] for c in nb["cells"])
    links = re.findall(r"### \[(.+?)\]\((.+?)\)", text)
    assert len(links) == len(LESSONS)
    for (title, link), path in zip(links, LESSONS):
        first_line = json.loads(path.read_text())["cells"][0]["source"]
        first_line = ("".join(first_line) if isinstance(first_line, list) else first_line).splitlines()[0]
        assert first_line.lstrip("# ").strip() == title
        assert ((ROOT / present.GALLERY).parent / link).resolve() == path.resolve()
    assert "import" not in text and "```" not in text  # a page for a room, not code


def test_the_gallery_lists_the_panel_sections_of_a_lesson_with_a_lab():
    entry = present.gallery_notebook()["cells"][1]["source"]
    block = next(b for b in entry.split("### [") if b.startswith("03"))
    assert block.startswith("03") and "Live panels:" in block and "training lab" in block.lower()


def test_voila_listens_on_localhost_only_with_a_token_and_no_code():
    cmd = present.voila_command(ROOT / "notebooks" / "03_reading_loss_curves.ipynb", 9123)
    assert "--Voila.ip=127.0.0.1" in cmd and "--port=9123" in cmd and "--no-browser" in cmd
    assert "--token" in cmd, "authentication must be on (the token comes from JUPYTER_TOKEN)"
    assert not any(a.startswith(("--token=", "--Voila.token=")) for a in cmd), "the token is never on the command line"
    assert "--strip_sources=True" in cmd
    assert "--preheat_kernel=True" not in cmd
    assert "--preheat_kernel=True" in present.voila_command(ROOT / "notebooks" / "03_reading_loss_curves.ipynb",
                                                            9123, preheat=True)
    assert "--preheat_kernel=True" not in present.voila_command(ROOT, 9123, preheat=True)  # a folder: no pool


def test_make_present_runs_the_module_and_is_in_the_help():
    mk = (ROOT / "Makefile").read_text()
    target = mk.split("\npresent:")[1].split("\n\n")[0]
    assert "-m course_lib.ui.present $(NB)" in target
    assert "token" not in target.lower(), "never disable or set the token in make present"
    assert "make present" in mk.split("\nhelp:")[1].split("\n\n")[0]
