"""A real JupyterHub for a room (marker ``hub``): `make hub`'s configuration, two students and the instructor.

The hub starts on 127.0.0.1 from ``hub/jupyterhub_config.py`` in its test mode (every server runs as
this machine's user, in a home folder of its own; a room uses one system user per student). Through
the hub's REST API:

1. the instructor (an admin token) creates two students and a token for each;
2. each student starts a server, pulls their own copy of the course with nbgitpuller, and runs
   notebook 00 (fast mode) in their own kernel, through the server's kernel websocket;
3. a student cannot reach the other's server, files or user record (403/404); the instructor can;
4. the hub and every server it started are stopped at the end, by their process ids.

Skipped when the hub's proxy is missing, unless ``REQUIRE_HUB=1`` (``.ci/run`` sets it).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "hub" / "jupyterhub_config.py"
PROXY_DIR = ROOT / ".venv" / "hub" / "node_modules" / ".bin"

pytestmark = [pytest.mark.hub, pytest.mark.slow]


def _proxy() -> str | None:
    local = PROXY_DIR / "configurable-http-proxy"
    return str(local) if local.exists() else shutil.which("configurable-http-proxy")


def _free_port_block(n: int = 3) -> int:
    """A port p with p, p+1, ..., p+n-1 free on 127.0.0.1 (the hub uses three)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            socks = []
            for k in range(n):
                t = socket.socket()
                t.bind(("127.0.0.1", base + k))
                socks.append(t)
            for t in socks:
                t.close()
            return base
        except OSError:
            for t in socks:
                t.close()
    raise RuntimeError("no block of free ports")


def _api(base: str, method: str, path: str, token: str, body=None, expect=(200, 201, 202, 204)):
    req = urllib.request.Request(base + path, method=method, headers={"Authorization": f"token {token}"},
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    assert status in expect, f"{method} {path}: expected {expect}; got {status}: {text[:300]}"
    return status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)


def _run_cells(base: str, user: str, token: str, kernel_id: str, cells: list[str]) -> list[str]:
    """Execute code cells through the server's kernel websocket; returns any error outputs."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def go():
        url = base.replace("http", "ws", 1) + f"/user/{user}/api/kernels/{kernel_id}/channels"
        ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
        errors, session = [], uuid.uuid4().hex
        for code in cells:
            msg_id = uuid.uuid4().hex
            ws.write_message(json.dumps({
                "header": {"msg_id": msg_id, "username": user, "session": session, "msg_type": "execute_request",
                           "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            while True:
                raw = await asyncio.wait_for(ws.read_message(), timeout=300)
                assert raw is not None, "the kernel websocket closed"
                if isinstance(raw, bytes):
                    # A message with binary buffers (a widget's image, such as a lab's still
                    # picture): never an error or a reply, which carry no buffers.
                    continue
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "error":
                    errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
                if msg["msg_type"] == "execute_reply":
                    break
        ws.close()
        return errors

    return asyncio.run(go())


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    proxy = _proxy()
    if proxy is None or shutil.which("git") is None:
        missing = " and ".join(n for n, absent in (("configurable-http-proxy (make hub-proxy)", proxy is None),
                                                   ("git", shutil.which("git") is None)) if absent)
        if os.environ.get("REQUIRE_HUB") == "1":
            pytest.fail(f"REQUIRE_HUB=1 but {missing} is missing")
        pytest.skip(f"{missing} is missing")
    state = tmp_path_factory.mktemp("hub")
    port, token = _free_port_block(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_HUB_PORT": str(port), "COURSE_HUB_STATE": str(state),
           "COURSE_HUB_SPAWNER": "shared", "COURSE_HUB_TEST_TOKEN": token, "COURSE_FAST": "1",
           "COURSE_GIT_URL": ROOT.as_uri(), "COURSE_HUB_ADMIN": "instructor",
           "PATH": os.pathsep.join([str(Path(proxy).parent), str(Path(sys.executable).parent), os.environ["PATH"]])}
    log = open(state / "hub.log", "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("jupyterhub")), "-f", str(CONFIG)], cwd=state,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"the hub exited with {proc.returncode}:\n{(state / 'hub.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/hub/api/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the hub did not answer within 120 s")
        print(f"hub_startup_s: {time.monotonic() - t0:.1f}")
        yield {"base": base, "token": token, "proc": proc, "state": state}
    finally:
        import psutil
        tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)] if proc.poll() is None else []
        proc.send_signal(signal.SIGTERM)  # the hub stops the servers it started, then the proxy
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(1.0)
        left = [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        log.close()
        assert not left, f"processes the hub started were still running after it stopped: {left}"


def _start_student(hub, name: str) -> str:
    base, admin = hub["base"], hub["token"]
    _, tok = _api(base, "POST", f"/hub/api/users/{name}/tokens", admin, {"note": "test", "expires_in": 3600})
    token = tok["token"]
    _api(base, "POST", f"/hub/api/users/{name}/server", token)
    for _ in range(600):
        _, user = _api(base, "GET", f"/hub/api/users/{name}", token)
        if user["servers"].get("", {}).get("ready"):
            return token
        time.sleep(0.2)
    raise AssertionError(f"{name}'s server did not become ready:\n{(hub['state'] / 'hub.log').read_text()[-3000:]}")


def test_two_students_each_run_notebook_00_in_their_own_server_and_cannot_reach_each_other(hub):
    base, admin = hub["base"], hub["token"]
    _api(base, "POST", "/hub/api/users", admin, {"usernames": ["alice", "bob"]})
    tokens = {name: _start_student(hub, name) for name in ("alice", "bob")}

    for name, token in tokens.items():
        # 1. Their own copy of the course, through the nbgitpuller link every student gets.
        pull = (f"/user/{name}/git-pull/api?repo={quote(ROOT.as_uri(), safe='')}&branch=main"
                f"&targetpath=loss-scaling")
        _api(base, "GET", pull, token)
        _api(base, "GET", f"/user/{name}/api/contents/loss-scaling/notebooks/00_welcome.ipynb?content=0", token)
        # 2. Notebook 00, Run All in their own kernel, in fast mode.
        _, kernel = _api(base, "POST", f"/user/{name}/api/kernels", token, {"name": "python3"})
        nb = json.loads((ROOT / "notebooks" / "00_welcome.ipynb").read_text())
        cells = ["import os; os.chdir('loss-scaling/notebooks')"] + [
            "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        errors = _run_cells(base, name, token, kernel["id"], cells)
        assert errors == [], f"{name}'s run of notebook 00 raised: {errors}"

    # 3. Neither student reaches the other's server, files or record; the instructor reaches both.
    for me, other in (("alice", "bob"), ("bob", "alice")):
        _api(base, "GET", f"/user/{other}/api/contents/loss-scaling", tokens[me], expect=(403, 404))
        _api(base, "GET", f"/user/{other}/api/kernels", tokens[me], expect=(403, 404))
        _api(base, "GET", f"/hub/api/users/{other}", tokens[me], expect=(403, 404))
        _api(base, "GET", f"/user/{other}/api/contents/loss-scaling", admin)

    # 4. Grading on the hub: the instructor collects both students' exercise notebooks, names from the hub.
    from course_lib.grading.collect import collect_submissions, hub_students

    students = hub_students(base, admin)
    assert students == ["alice", "bob"], f"the hub's students should be alice and bob; got {students}"
    out = hub["state"] / "submissions"
    found = collect_submissions(students, out, homes=str(hub["state"] / "homes" / "{username}"))
    masters = sorted(p.name for p in (ROOT / "exercises").glob("[0-9][0-9]_*_exercises.ipynb"))
    assert found == {"alice": masters, "bob": masters}
    assert (out / "alice" / masters[0]).read_bytes() == (ROOT / "exercises" / masters[0]).read_bytes()
