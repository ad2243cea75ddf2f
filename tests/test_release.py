"""`make release OUT=dir`: the students' edition holds no answer, and checks itself."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.grading import release

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return release.build_release(tmp_path_factory.mktemp("release") / "student", ROOT)


def test_the_release_holds_the_students_files_and_nothing_of_the_instructors(edition):
    for keep in ("notebooks", "course_lib", "exercises", "grading/tests", "grading/conftest.py", "grading/pytest.ini",
                 "Makefile", "README.md", "requirements/lock.txt", "environment.yml", "pyproject.toml"):
        assert (edition / keep).exists(), keep
    for never in ("solutions", "grading/hidden", "grading/audit", "benchmarks", ".ci"):
        assert not (edition / never).exists(), never
    assert sorted(p.name for p in (edition / "exercises").glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "solutions").glob("*_exercises.ipynb"))
    readme = (edition / "README.md").read_text()
    assert "For instructors" not in readme and "instructors-only" not in readme and "Tests and benchmarks" not in readme
    assert "## Two editions" in readme and "## Exercises and grading" in readme
    makefile = (edition / "Makefile").read_text()
    assert "\ngrade:" not in makefile and "\nexercises:" not in makefile and "\nlab:" in makefile


def test_no_solution_block_appears_in_any_file_of_the_release(edition):
    blocks = release.solution_blocks(ROOT / "solutions")
    assert len(blocks) >= 16
    assert release.find_leaks(edition, blocks) == []


def test_the_leak_finder_finds_a_block_pasted_anywhere(edition, tmp_path):
    where, code = max(release.solution_blocks(ROOT / "solutions"), key=lambda b: len(b[1]))
    (tmp_path / "notes.py").write_text("def helper():\n" + "".join(f"        {ln}\n" for ln in code))
    assert release.find_leaks(tmp_path, [(where, code)]) == [f"notes.py holds the solution block of {where}"]
    with pytest.raises(ValueError, match="must be a new folder outside"):
        release.build_release(ROOT / "exercises", ROOT)


@pytest.mark.slow
def test_the_releases_own_check_passes_and_check_works_there(edition):
    env = {**os.environ, "PYTHONPATH": str(edition), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("COURSE_ROOT", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"], cwd=edition, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "3 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
