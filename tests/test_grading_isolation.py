"""Grading an instructor can trust: hostile submissions, built at test time, against both isolations.

* stealer: finds the course from ``course_lib.__file__`` (and knows the exact paths), reads the
  master notebook in ``solutions/`` and runs its answer: must score 0 on that exercise;
* leaker: puts the text of every hidden test file it can find into an error message and into a
  return value a hidden test prints: no line of a hidden test file may reach its feedback;
* peeker: lists the disk (the submissions, the grader's scratch folder, the course, ``/``): its
  feedback must name no path outside its own submission;
* socket: opens a connection to a server on this machine: fails that exercise only, and the
  server never hears from it.

Each runs under bubblewrap (skipped where bwrap cannot run, unless ``REQUIRE_BWRAP=1``, which
``.ci/run`` sets after installing it) and under the audit-hook fallback
(``COURSE_GRADING_ISOLATION=audit``).
"""

import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from course_lib import grading
from course_lib.grading import assign, sandbox

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ms = _load(ROOT / "tests" / "fixtures" / "submissions" / "make_submissions.py", "make_submissions_for_isolation")


def _bwrap_or_skip():
    try:
        return sandbox.isolation("bwrap")
    except RuntimeError as e:
        if os.environ.get("REQUIRE_BWRAP") == "1":
            pytest.fail(f"REQUIRE_BWRAP=1 but {e}")
        pytest.skip(str(e))


# ---- the hostile bodies (each replaces the body of one exercise's function) --------------------


def stealer(solutions: list) -> list:
    """Body of double(x) (exercise 1.1): run the master's answer, found from course_lib's location."""
    return [
        "import json, os, course_lib",
        f"paths = {[str(p) for p in solutions]!r}",
        "here = os.path.dirname(os.path.dirname(course_lib.__file__))",
        "for d in (here, os.environ.get('COURSE_ROOT', ''), os.getcwd()):",
        "    while d and d != os.sep:",
        "        paths += [os.path.join(d, 'solutions', n) for n in ('01_demo_exercises.ipynb',",
        "                                                             '01_loss_functions_exercises.ipynb')]",
        "        d = os.path.dirname(d)",
        "for p in paths:",
        "    try:",
        "        cells = json.load(open(p))['cells']",
        "    except Exception:",
        "        continue",
        "    ns = {}",
        "    for c in cells:",
        "        if 'setup' in c['metadata'].get('tags', []) or c['metadata'].get('exercise', {}).get('id') == '1.1':",
        "            exec(''.join(c['source']), ns)",
        "    return ns['double'](x)",
        "return None",
    ]


def leaker(hidden_dirs: list) -> list:
    """Body of double(x): raise an error whose message is the text of every hidden test file found."""
    return [
        "import glob, os, course_lib",
        f"dirs = {[str(p) for p in hidden_dirs]!r}",
        "dirs += [os.path.join(os.environ.get('COURSE_ROOT', '.'), 'grading', 'hidden'),",
        "         os.path.join(os.path.dirname(os.path.dirname(course_lib.__file__)), 'grading', 'hidden')]",
        "text = []",
        "for d in dirs:",
        "    for p in sorted(glob.glob(os.path.join(d, '*.py'))):",
        "        try:",
        "            text += [ln.strip() for ln in open(p) if len(ln.strip()) > 20]",
        "        except Exception as e:",
        "            text.append(repr(e))",
        "raise RuntimeError('LEAK ' + ' | '.join(text))",
    ]


CLIPPED_LEAKER = [  # body of clipped(x, low, high) (2.2, which has a hidden test): its result prints hidden text
    "import glob, os",
    "class Leak(list):",
    "    def __repr__(self):",
    "        d = os.path.join(os.environ.get('COURSE_ROOT', '.'), 'grading', 'hidden')",
    "        return 'LEAK ' + ' | '.join(ln.strip() for p in glob.glob(d + '/*.py') for ln in open(p))",
    "    def __getitem__(self, i):",
    "        return -1.0",
    "return Leak([0.0])",
]


def peeker(folders: list) -> list:
    """Body of double(x): list the disk; report every notebook or course folder outside its own copy."""
    return [
        "import os",
        "own = os.path.dirname(os.getcwd())",
        f"tops = {[str(p) for p in folders]!r} + ['/', '/tmp', '/root', '/home', '/work',",
        "        own, os.path.dirname(own), os.path.dirname(os.path.dirname(own))]",
        "found, n_own = [], 0",
        "for top in tops:",
        "    for dirpath, dirnames, filenames in os.walk(top):",
        "        if dirpath == '/':  # the system folders and the interpreter hold no course files",
        "            dirnames[:] = [d for d in dirnames if d not in ('usr', 'proc', 'sys', 'dev', 'etc')]",
        "        dirnames[:] = [d for d in dirnames if d not in ('site-packages', '.pyenv') and not d.startswith('python3')]",
        "        for n in dirnames + filenames:",
        "            p = os.path.join(dirpath, n)",
        "            if n.endswith('.ipynb') or n in ('solutions', 'hidden', 'submission'):",
        "                if p.startswith(own + os.sep):",
        "                    n_own += 1",
        "                elif p not in found:",
        "                    found.append(p)",
        "raise RuntimeError(f'PEEK own={n_own} found={found[:12]}')",
    ]


def socket_user(port: int) -> list:
    """Body of mean_square(xs) (exercise 1.2): send something to a server on this machine, then answer."""
    return ["import socket",
            f"socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'graded answers leaked')",
            "return sum(v * v for v in xs) / len(xs)"]


def _submission(demo: Path, dst: Path, bodies: dict) -> Path:
    for path in sorted((demo / "solutions").glob(assign.MASTER_GLOB)):
        nb = assign.student_copy(assign.read_notebook(path), replace=lambda i, t, ind, sol: (
            [ind + ln for ln in bodies[i]] if i in bodies else sol))
        dst.mkdir(parents=True, exist_ok=True)
        (dst / path.name).write_text(assign.render_notebook(nb), encoding="utf-8")
    return dst


class _Listener:
    """A TCP server on 127.0.0.1 that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port, self.heard, self.stop = self.sock.getsockname()[1], [], False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.heard.append(conn.recv(100))
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return ms.build_demo_course(tmp_path_factory.mktemp("iso_demo"))


def _hostile_batch(demo: Path, tmp: Path, isolation: str) -> dict:
    subs = tmp / "subs"
    listener = _Listener()
    try:
        solutions = [demo / "solutions" / "01_demo_exercises.ipynb", ROOT / "solutions" / "01_loss_functions_exercises.ipynb"]
        hidden = [demo / "grading" / "hidden", ROOT / "grading" / "hidden"]
        _submission(demo, subs / "stealer", {"1.1": stealer(solutions)})
        _submission(demo, subs / "leaker", {"1.1": leaker(hidden), "2.2": CLIPPED_LEAKER})
        _submission(demo, subs / "peeker", {"1.1": peeker([subs, demo, demo / "solutions", ROOT, tmp])})
        _submission(demo, subs / "socket", {"1.2": socket_user(listener.port)})
        ms.make_submissions(demo / "solutions", subs, ["all_correct"])
        results = grading.grade(subs, tmp / "gradebook.csv", tmp / "feedback", root=demo, timeout_per_test=4,
                                isolation=isolation, verbose=False)
    finally:
        listener.close()
    return {"results": {r.student: r for r in results}, "heard": listener.heard, "tmp": tmp, "subs": subs,
            "feedback": {p.stem: p.read_text() for p in (tmp / "feedback").glob("*.md")}}


@pytest.fixture(scope="module")
def bwrap_batch(demo, tmp_path_factory):
    _bwrap_or_skip()
    return _hostile_batch(demo, tmp_path_factory.mktemp("iso_bwrap"), "bwrap")


@pytest.fixture(scope="module")
def audit_batch(demo, tmp_path_factory):
    return _hostile_batch(demo, tmp_path_factory.mktemp("iso_audit"), "audit")


BATCHES = ["bwrap_batch", "audit_batch"]


def test_the_hostile_bodies_work_when_nothing_stops_them(demo, tmp_path, monkeypatch):
    """Run in this (unsandboxed) process, the stealer gets the answer, the leaker the hidden tests' text
    and the peeker the other folders: the batch tests below prove the sandbox stops real attacks."""
    def run(body, *args, name="f", params="x"):
        ns = {}
        exec(f"def {name}({params}):\n" + "".join(f"    {ln}\n" for ln in body), ns)
        return ns[name](*args)

    assert run(stealer([demo / "solutions" / "01_demo_exercises.ipynb"]), 3) == 6
    with pytest.raises(RuntimeError) as info:
        run(leaker([demo / "grading" / "hidden"]), 3)
    assert "def test_clipped_keeps_inside_values(exercise):" in str(info.value)
    (tmp_path / "other" / "submission").mkdir(parents=True)
    # The peeker counts everything under the parent of its working folder as its own: work from a
    # folder of this test, so 'other' is someone else's wherever the checkout lives (e.g. under /tmp).
    (tmp_path / "me" / "work").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "me" / "work")
    with pytest.raises(RuntimeError, match=r"found=\[.*other/submission"):
        run(peeker([tmp_path / "other"]), 3)


@pytest.mark.slow
@pytest.mark.parametrize("batch", BATCHES)
def test_the_stealer_scores_zero_on_the_exercise_it_steals(batch, request):
    res = request.getfixturevalue(batch)["results"]
    assert res["stealer"].points["1.1"] == 0 and res["stealer"].points["1.2"] == 1.5
    assert res["all_correct"].total == res["all_correct"].max_total
    assert {r.isolation for r in res.values()} == {sandbox.BWRAP if batch == "bwrap_batch" else sandbox.AUDIT}


def _hidden_lines() -> set:
    lines = set()
    for path in list((ROOT / "grading" / "hidden").glob("*.py")):
        lines |= {ln.strip() for ln in path.read_text().splitlines() if len(ln.strip()) > 20}
    for rel, text in ms.DEMO_TESTS.items():
        if rel.startswith("hidden/"):
            lines |= {ln.strip() for ln in text.splitlines() if len(ln.strip()) > 20}
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("batch", BATCHES)
def test_the_leakers_feedback_holds_no_line_of_a_hidden_test(batch, request):
    b = request.getfixturevalue(batch)
    text = b["feedback"]["leaker"]
    assert "LEAK" in text, "the leaker's error should be in its (shipped) test's feedback"
    leaked = [ln for ln in _hidden_lines() if ln in text]
    assert leaked == [], f"hidden test text in the feedback: {leaked[:3]}"
    hidden = [t for t in b["results"]["leaker"].tests if t["nodeid"].startswith("hidden/")]
    assert hidden and not any(t["passed"] for t in hidden)
    assert "FAIL `test_clipped_keeps_inside_values` (0 / 1)\n  - what happened: a hidden test (its details are not " \
           "shown)\n" in text


@pytest.mark.slow
@pytest.mark.parametrize("batch", BATCHES)
def test_the_peekers_feedback_names_no_path_outside_its_submission(batch, request):
    b = request.getfixturevalue(batch)
    text = b["feedback"]["peeker"]
    m = re.search(r"PEEK own=(\d+) found=\[(.*?)\]", text)
    assert m, text
    assert int(m.group(1)) >= 1, "the peeker should at least see its own copy"
    assert m.group(2) == "", f"the peeker saw other folders: {m.group(2)[:300]}"
    for other in ("all_correct", "stealer", "leaker", "socket", str(b["subs"])):
        assert other not in text


@pytest.mark.slow
@pytest.mark.parametrize("batch", BATCHES)
def test_a_network_connection_fails_that_exercise_only(batch, request):
    b = request.getfixturevalue(batch)
    res = b["results"]["socket"]
    assert res.points == {"1.1": 3.0, "1.2": 0.0, "2.1": 2.0, "2.2": 2.0}
    assert b["heard"] == [], "a grading child reached a server on the grader's machine"


@pytest.mark.slow
def test_the_gradebook_and_the_command_line_name_the_isolation(demo, tmp_path):
    ms.make_submissions(demo / "solutions", tmp_path / "subs", ["all_correct"])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", sandbox.ISOLATION_ENV: "audit"}
    proc = subprocess.run([sys.executable, "-m", "course_lib.grading", "grade", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "gb.csv"), "--feedback", str(tmp_path / "fb"), "--root", str(demo),
                           "--exercises", "1.1"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("isolation: audit-hook (forced by COURSE_GRADING_ISOLATION=audit). WEAKER:")
    assert "graded with isolation audit-hook" in proc.stdout
    assert (tmp_path / "gb.csv").read_text().splitlines() == ["student,ex1.1,total,max,isolation",
                                                              "all_correct,3,3,3,audit-hook"]


def test_isolation_choice_is_checked():
    with pytest.raises(ValueError, match="must be 'auto', 'bwrap' or 'audit'"):
        sandbox.isolation("docker")
    assert sandbox.isolation("audit").kind == sandbox.AUDIT


def test_bubblewrap_shows_a_child_only_what_it_needs(tmp_path):
    """The sandbox itself, without the grader: no course, no other submission, no home, no network,
    a private /tmp; Python, course_lib and its own folder work."""
    iso = _bwrap_or_skip()
    base, other = tmp_path / "0000", tmp_path / "0001"
    (base / "work").mkdir(parents=True)
    (other / "submission").mkdir(parents=True)
    (other / "submission" / "secret.ipynb").write_text("{}")
    marker = Path("/tmp") / f"course-isolation-marker-{os.getpid()}"
    marker.write_text("host /tmp")
    home = os.path.expanduser("~")
    code = textwrap_probe = (
        "import os, socket, sys, course_lib, torch\n"
        f"checks = {{'solutions': os.path.exists({str(ROOT / 'solutions')!r}),\n"
        f"          'hidden': os.path.exists({str(ROOT / 'grading' / 'hidden')!r}),\n"
        f"          'other': os.path.exists({str(other)!r}),\n"
        f"          'host_tmp': os.path.exists({str(marker)!r}),\n"
        f"          'home': [n for n in (os.listdir({home!r}) if os.path.isdir({home!r}) else [])\n"
        f"                   if not sys.base_prefix.startswith(os.path.join({home!r}, n))],\n"
        "          'lib': os.path.isfile(course_lib.__file__), 'own': os.access(os.getcwd(), os.W_OK)}\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2); checks['net'] = True\n"
        "except OSError:\n"
        "    checks['net'] = False\n"
        "print(sorted(k for k, v in checks.items() if v))\n")
    try:
        cmd = sandbox.bwrap_command(iso, [sys.executable, "-c", code], base, base / "work", [ROOT, tmp_path])
        env = {**os.environ, "PYTHONPATH": str(grading.batch.LIB_ROOT)}
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    finally:
        marker.unlink()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['lib', 'own']", (textwrap_probe, out.stdout, out.stderr[-500:])


def test_the_fallback_hook_refuses_reads_and_listings_outside_the_allowed_folders(tmp_path):
    """The audit-hook fallback, in a fresh interpreter: reads and listings only in the allowed folders."""
    base = tmp_path / "0000"
    (base / "work").mkdir(parents=True)
    (tmp_path / "0001").mkdir()
    (tmp_path / "0001" / "answers.txt").write_text("secret")
    code = (
        "import os, sys, pathlib\n"
        "from course_lib.grading import sandbox\n"
        f"base = pathlib.Path({str(base)!r})\n"
        f"system, ro, hidden, rw = sandbox.visible_roots(base, [{str(ROOT)!r}, {str(tmp_path)!r}])\n"
        "sandbox._install_sandbox([base / 'work'], (system, ro + rw, hidden))\n"
        "res = {}\n"
        f"for name, f in [('solutions', lambda: open({str(ROOT / 'solutions' / '01_loss_functions_exercises.ipynb')!r})),\n"
        f"                ('other', lambda: open({str(tmp_path / '0001' / 'answers.txt')!r})),\n"
        f"                ('list_course', lambda: os.listdir({str(ROOT)!r})),\n"
        f"                ('list_batch', lambda: os.listdir({str(tmp_path)!r})),\n"
        "                 ('ctypes', lambda: __import__('ctypes').CDLL(None)),\n"
        "                 ('own', lambda: open(base / 'work' / 'mine.txt', 'w').write('ok')),\n"
        "                 ('read_own', lambda: open(base / 'work' / 'mine.txt').read()),\n"
        "                 ('stdlib', lambda: open(os.__file__).read(10)),\n"
        "                 ('course_lib', lambda: open(sandbox.__file__).read(10))]:\n"
        "    try:\n"
        "        f(); res[name] = 'allowed'\n"
        "    except PermissionError:\n"
        "        res[name] = 'refused'\n"
        "print(res)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(grading.batch.LIB_ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    res = eval(out.stdout)
    assert res == {"solutions": "refused", "other": "refused", "list_course": "refused", "list_batch": "refused",
                   "ctypes": "refused", "own": "allowed", "read_own": "allowed", "stdlib": "allowed",
                   "course_lib": "allowed"}


def test_a_hidden_tests_feedback_shows_name_pass_fail_points_and_hint_only(capsys):
    from course_lib.grading import batch
    check = sys.modules["course_lib.grading.check"]  # the package's `check` is the function

    secret = {"nodeid": "hidden/test_ex01_hidden.py::test_y", "name": "test_y", "exercise": "1.1", "points": 2.0,
              "passed": False, "kind": "assertion", "message": "SECRET: f(3) should be 7; got 'STUDENT OUTPUT'",
              "where": "your cell, line 2: `print(SECRET)`", "notes": ["SECRET note"], "hint": "look at the sign"}
    shipped = {**secret, "nodeid": "tests/test_ex01.py::test_x", "name": "test_x"}
    res = batch.SubmissionResult("s", {"1.1": 0.0}, {"1.1": 4.0}, [shipped, secret], [])
    text = batch._feedback_text(res, {})
    assert "- FAIL `test_y` (0 / 2)\n  - what happened: a hidden test (its details are not shown)\n" \
           "  - hint: look at the sign\n" in text
    assert text.count("SECRET") == 3 and text.count("STUDENT OUTPUT") == 1  # all from the shipped test
    report = check._check_report("1.1", "", [shipped, secret], 0.0, 4.0)
    assert report.count("SECRET") == 3 and "a hidden test (its details are not shown)" in report
