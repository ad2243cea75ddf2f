"""The class-serving configurations, checked without Docker or Kubernetes (neither runs here):

* the course image: ``repo2docker --no-build`` on this repository (what Binder and Zero to
  JupyterHub run) generates a build that installs the pinned CPU torch, the lock and the course;
* `make hub`'s JupyterHub configuration: safe defaults (127.0.0.1, approval by the instructor,
  limits, idle culling, each student's own copy through nbgitpuller);
* the Zero to JupyterHub values: every key is one the chart documents (tests/fixtures/z2jh_keys.txt).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(text: str) -> dict:
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", text, re.M)}


def test_the_image_pins_cpu_torch_and_the_lock():
    req = (ROOT / "binder" / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in req
    assert _pins(req)["torch"] == "2.13.0+cpu"
    assert "-r ../requirements/lock.txt" in req
    lock = _pins((ROOT / "requirements" / "lock.txt").read_text())
    assert lock["torch"] == "2.13.0"                      # the same release: pip takes 2.13.0+cpu for both
    assert not [p for p in lock if p.startswith("nvidia-")], "the lock must not pull CUDA libraries"
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-cache-dir --no-deps -e ." in post
    assert "ipykernel install --sys-prefix --name loss-scaling" in post
    assert "00_welcome.ipynb" in post and os.access(ROOT / "binder" / "postBuild", os.X_OK)
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


@pytest.mark.slow
def test_repo2docker_generates_a_build_that_installs_the_course():
    exe = Path(sys.executable).with_name("repo2docker")
    # Pinned in requirements/lock.txt, so `make test` always has it: missing is a broken environment.
    assert exe.exists(), "repo2docker is not installed: run make env (it is pinned in requirements/lock.txt)"
    out = subprocess.run([str(exe), "--no-build", "--debug", "--no-run", str(ROOT)], capture_output=True,
                         text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-2000:]
    assert "python=3.11" in text or "python-3.11" in text or "Python 3.11" in text, "the image should use Python 3.11"
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in text
    assert "./binder/postBuild" in text
    assert "src/environment.yml" not in text  # binder/ wins: the top-level conda file is not what the image uses


def _load_hub_config(env: dict) -> types.SimpleNamespace:
    """Run hub/jupyterhub_config.py as JupyterHub would, with a stand-in for its config object."""
    from traitlets.config import Config
    cfg = Config()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = compile((ROOT / "hub" / "jupyterhub_config.py").read_text(), "jupyterhub_config.py", "exec")
        exec(code, {"get_config": lambda: cfg, "__file__": str(ROOT / "hub" / "jupyterhub_config.py")})
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return cfg


def test_the_room_hub_has_safe_defaults(tmp_path):
    c = _load_hub_config({"COURSE_HUB_STATE": str(tmp_path)})
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.JupyterHub.authenticator_class == "native" and c.NativeAuthenticator.open_signup is False
    assert c.Authenticator.admin_users == {"instructor"} and c.JupyterHub.admin_access is True
    assert c.JupyterHub.spawner_class == "course_spawner.CourseSpawner"    # one system user per student
    assert c.Spawner.mem_limit == "1024M" and c.Spawner.cpu_limit == 1.0
    assert c.Spawner.default_url.startswith("/git-pull?repo=") and "00_welcome.ipynb" in c.Spawner.default_url
    culler = [s for s in c.JupyterHub.services if s["name"] == "idle-culler"]
    assert culler and "jupyterhub_idle_culler" in culler[0]["command"] and "--timeout=3600" in culler[0]["command"]
    assert not any(s["name"] == "course-test" for s in c.JupyterHub.services)  # the test token only when asked


def test_https_when_a_certificate_is_given(tmp_path):
    c = _load_hub_config({"COURSE_HUB_STATE": str(tmp_path), "COURSE_HUB_SSL_CERT": "/etc/c.pem",
                          "COURSE_HUB_SSL_KEY": "/etc/k.pem", "COURSE_HUB_IP": "0.0.0.0"})
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key, c.JupyterHub.ip) == ("/etc/c.pem", "/etc/k.pem", "0.0.0.0")


def _leaves(node, prefix=()):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, prefix + (str(k),))
    else:
        yield ".".join(prefix)


def test_zero_to_jupyterhub_values_use_only_documented_keys():
    documented = {line.strip() for line in (ROOT / "tests" / "fixtures" / "z2jh_keys.txt").read_text().splitlines()
                  if line.strip() and not line.startswith("#")}
    values = yaml.safe_load((ROOT / "hub" / "z2jh" / "values.yaml").read_text())
    unknown = []
    for path in _leaves(values):
        parts = path.split(".")
        if parts[:2] == ["hub", "config"] and len(parts) >= 3 and parts[2][:1].isupper():
            continue  # pass-through traitlets configuration of a class (the chart allows any Class.trait)
        if parts[:2] == ["singleuser", "extraEnv"]:
            continue  # environment variables: any name
        if path not in documented:
            unknown.append(path)
    assert unknown == [], f"keys the chart does not document: {unknown}"
    assert values["singleuser"]["memory"]["limit"] == "1024M"      # the same limit as the room's hub
    assert values["cull"]["enabled"] is True and values["singleuser"]["defaultUrl"].startswith("/git-pull?")


def test_each_student_gets_cores_of_their_own_chosen_from_their_name():
    sys.path.insert(0, str(ROOT / "hub"))
    try:
        import course_spawner
    finally:
        sys.path.remove(str(ROOT / "hub"))
    cores = sorted(os.sched_getaffinity(0))
    one = course_spawner._cores_for("alice", 1.0)
    assert len(one) == 1 and one <= set(cores) and one == course_spawner._cores_for("alice", 1.0)
    assert len(course_spawner._cores_for("bob", 64.0)) == len(cores)   # never more cores than there are
    assert course_spawner._cores_for("alice", None) is None
    spread = {min(course_spawner._cores_for(f"student{i}", 1.0)) for i in range(40)}
    assert spread == set(cores), f"40 students should be spread over every core; got {sorted(spread)}"
