"""Autograding: extract the graded cells of a notebook, run the grading tests, write a gradebook.

Three ways in, one engine (pytest with the course's grading plugin):

* ``check("3.2")`` / ``check_all()`` inside a notebook: run the exercise's tests on the spot
  against the functions **as they are in the live kernel** (no saving needed) and print
  passed/failed with expected vs got and a hint. ``check("3.2", folder=".")`` grades the
  *saved* notebook instead, exactly like the batch grader does.
* ``grade(submissions_dir, out_csv, feedback_dir)`` (``make grade SUBMISSIONS=dir``,
  ``python -m course_lib.grading grade dir``): one sandboxed subprocess per submission, in
  parallel, a CSV gradebook and one feedback file per student.
* ``pytest grading/tests`` by hand: ``COURSE_SUBMISSION=exercises pytest grading/tests``.

Grading never runs a whole notebook: only the cells tagged ``setup`` and ``exercise`` are
executed (in a fresh namespace for every test, so state cannot leak from one test to the next),
and plotting/widget modules are replaced by inert stubs in the grading process, so nothing can
wait for a browser. This module itself never imports matplotlib or ipywidgets.

The pipeline, one stage a module (as otter and nbgrader split theirs):

* ``assign``: master notebook (``solutions/``) -> student copy (``exercises/``);
* ``extract``: the setup and graded cells of a notebook, run in a fresh namespace;
* ``plugin``: the pytest plugin (points, exercise markers) and the ``exercise`` fixture;
* ``sandbox``: the isolated child process that grades one submission (bubblewrap, or the audit-hook fallback);
* ``zygote``: a warm process per worker that forks those children (no interpreter start-up per submission);
* ``references``: results of the grading tests that are the same for every student, computed once;
* ``release``: the students' edition of the course (no solutions, no hidden tests, no answers);
* ``child``: starts one grading child (fresh, or forked by the zygote) and watches it;
* ``batch``: a folder of submissions -> gradebook and feedback;
* ``check``: ``check()`` / ``check_all()`` in the live kernel;
* ``__main__``: the command line.

Robustness of the batch grader (what nbgrader's and otter's users asked for):

1. Every test runs under a timeout (pytest-timeout, signal method); a parent-side watchdog kills
   a test that ignores it, and the submission is resumed after that test: an infinite loop costs
   that one test. A cell that loops when it is defined is skipped after its first timeout.
2. A submission that crashes its process (segfault, ``os._exit``, out of memory) is resumed
   after the test (or cell) that crashed it; the row is always written, zeros with the reason.
3. Limits per process (``resource.setrlimit``): data segment (heap and anonymous maps, so
   torch's shared libraries do not count) ~1.5 GB, file size, CPU time, no core files;
   stdout/stderr go to files capped by the file-size limit and are only read back truncated.
4. The process works on a temporary copy of the notebooks; an audit hook refuses writes,
   deletes, renames and process starts outside its scratch folder; every student file is hashed
   (sha256) before and after, and :class:`SubmissionsModifiedError` is raised if anything changed.
5. Isolation: under bubblewrap (Linux) a child sees only the interpreter, site-packages, course_lib,
   the grading tests of its run and its own copy; private /tmp, no network. Without bwrap the audit
   hook also refuses reads and listings outside those folders, sockets and ctypes libraries (weaker:
   printed as such). Hidden tests are deleted from the child's copy once collected, and their feedback
   shows name, pass/fail, points and hint only.

Example:
    >>> sorted(k for k in DEFAULT_HINTS)[:3]
    ['crash', 'definition', 'exit']
"""

from ._common import DEFAULT_HINTS, course_root, isolated_torch
from .batch import SubmissionResult, SubmissionsModifiedError, collect_tests, grade
from .check import CheckResult, check, check_all
from .extract import LoadedExercise, SubmissionModule, load_exercises
from .plugin import GradingPlugin, exercise_loader
from .references import reference

__all__ = ["DEFAULT_HINTS", "CheckResult", "GradingPlugin", "LoadedExercise", "SubmissionModule",
           "SubmissionResult", "SubmissionsModifiedError", "check", "check_all", "collect_tests",
           "course_root", "exercise_loader", "grade", "isolated_torch", "load_exercises", "reference"]
