"""The `exercise` fixture of the grading tests (see FORMAT: `ns = exercise("3.2")`).

`exercise("3.2")` returns a module-like namespace built by executing, in a fresh namespace and in
notebook order, the setup cells and the graded cells of the notebook that holds exercise 3.2.
The notebooks come from $COURSE_SUBMISSION (a folder), default ../solutions; inside
`check()` they come from the live kernel. All the work is in course_lib.grading.
"""

from pathlib import Path

import pytest

from course_lib import grading


@pytest.fixture
def exercise(request):
    """`exercise("3.2")` -> the student's namespace for exercise 3.2 (fresh for every call)."""
    return grading.exercise_loader(request, default_folder=Path(__file__).resolve().parents[1] / "solutions")
