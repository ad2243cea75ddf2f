"""The set-up promises: pinned versions everywhere, the same pins for pip and conda, a lab
server that keeps its token and binds to localhost, and a CI that runs `make test`."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _names(path: Path) -> list[str]:
    lines = [l.split("#")[0].strip() for l in path.read_text().splitlines()]
    return [re.split(r"[=<>!~\[ ]", l)[0].lower().replace("_", "-") for l in lines if l]


LOCK = _pins((ROOT / "requirements/lock.txt").read_text())


def test_lock_pins_torch_2_13_0_without_a_local_label():
    assert LOCK["torch"] == "2.13.0"
    assert not any("+" in v for v in LOCK.values()), "local version labels (+cpu) are not on the public index"


def test_every_direct_dependency_is_pinned_in_the_lock():
    for req in ("course.txt", "dev.txt"):
        missing = [n for n in _names(ROOT / "requirements" / req) if n not in LOCK]
        assert not missing, f"requirements/{req}: {missing} missing from requirements/lock.txt (run make lock)"


def test_environment_yml_has_the_same_pins_as_the_lock():
    env = _pins((ROOT / "environment.yml").read_text())
    assert env, "environment.yml pins nothing"
    differ = {k: (v, LOCK.get(k)) for k, v in env.items() if LOCK.get(k) != v}
    assert not differ, f"environment.yml vs lock.txt: {differ}"
    assert set(_names(ROOT / "requirements/course.txt")) <= set(env), "a course dependency is missing from environment.yml"


def test_pytest_markers_are_registered():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    names = {m.split(":")[0] for m in cfg["markers"]}
    assert {"slow", "gpu", "browser"} <= names


def test_make_lab_keeps_the_token_and_binds_localhost():
    mk = (ROOT / "Makefile").read_text()
    lab = mk.split("\nlab:")[1].split("\n\n")[0]
    assert "--ServerApp.ip=127.0.0.1" in lab
    assert "token" not in lab.lower(), "never disable or set the token in make lab"
    assert "$(ROOT_FLAG)" in lab and "filter 0,$(shell id -u)" in mk  # --allow-root only as root


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_readme_shows_the_two_commands_and_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert nb.stem in readme, f"README does not list {nb.name}"
