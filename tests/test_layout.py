"""The library's layout holds: compute modules never pull in drawing code, ``course_lib.ui`` is
the only place that imports matplotlib or ipywidgets, and nothing crosses into another module's
``_private`` names.

Why a test and not a convention: the grader replaces ``course_lib.ui`` by inert stubs, and a
compute module that imported matplotlib would hang a headless grader or slow every import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "course_lib"
DRAWING = ("matplotlib", "ipywidgets", "ipympl", "seaborn", "course_lib.ui")


def _compute_modules() -> list[str]:
    """Every module of course_lib outside ui/: flat compute modules and the grading package."""
    names = []
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        if "ui" in rel.parts or rel.name == "__main__":
            continue
        names.append(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
    return names


COMPUTE = _compute_modules()


def _drawing_modules_after_import(module: str) -> list[str]:
    code = (f"import sys, {module}; "
            f"print([m for m in sys.modules if m.startswith({DRAWING!r})])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"import {module} failed:\n{out.stderr[-2000:]}"
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_the_layout_has_what_the_boundary_test_needs():
    assert {"course_lib", "course_lib.train", "course_lib.grading", "course_lib.grading.sandbox"} <= set(COMPUTE)
    assert (LIB / "ui" / "__init__.py").is_file()
    assert not any(m.startswith("course_lib.ui") for m in COMPUTE)


# One fresh interpreter imports the heavy third-party libraries once (torch alone is about 2 s),
# checks that they brought no drawing code, then forks a child per compute module: each child
# imports its module alone, on top of that clean state, and reports what drawing code is loaded.
_FORKED = """
import json, os, sys
import numpy, scipy.signal, torch
DRAWING, MODULES = {drawing!r}, {modules!r}
out = {{"_preloaded": [m for m in sys.modules if m.startswith(DRAWING)]}}
for module in MODULES:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            __import__(module)
            msg = [m for m in sys.modules if m.startswith(DRAWING)]
        except BaseException as e:
            msg = {{"error": repr(e)}}
        os.write(w, json.dumps(msg).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out[module] = json.loads(data) if data else {{"error": "the child died"}}
print(json.dumps(out))
"""


def _drawing_modules_each_alone(modules: list[str]) -> dict:
    """``{module: [drawing modules in sys.modules after importing it alone]}`` (see _FORKED); without
    fork (Windows), one new interpreter per module, two at a time."""
    import os
    if not hasattr(os, "fork"):
        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(zip(modules, pool.map(_drawing_modules_after_import, modules)))
    code = _FORKED.format(drawing=DRAWING, modules=list(modules))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, f"the import check failed:\n{out.stderr[-2000:]}"
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found.pop("_preloaded") == [], "numpy, scipy or torch brought drawing code: the check below would be void"
    errors = {m: v["error"] for m, v in found.items() if isinstance(v, dict)}
    assert not errors, f"import failed: {errors}"
    return found


def test_no_compute_module_imports_drawing_code_in_a_fresh_interpreter():
    """Each compute module imported alone, in a new Python process, leaves matplotlib, ipywidgets,
    ipympl, seaborn and course_lib.ui out of sys.modules."""
    found = _drawing_modules_each_alone(COMPUTE)
    assert set(found) == set(COMPUTE)
    bad = {m: mods for m, mods in found.items() if mods}
    assert not bad, f"compute modules that import drawing code (move that code to course_lib/ui/): {bad}"


def test_the_import_check_sees_a_module_that_draws():
    """The check above can fail: a drawing module and a compute module imported after it, each alone."""
    found = _drawing_modules_each_alone(["course_lib.ui.plotting", "course_lib.losses"])
    assert "matplotlib" in found["course_lib.ui.plotting"] and "course_lib.ui" in found["course_lib.ui.plotting"]
    assert found["course_lib.losses"] == []


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, None
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, "." * node.level + (node.module or ""), [a.name for a in node.names]


@pytest.mark.parametrize("path", sorted(p for p in LIB.rglob("*.py") if "ui" not in p.relative_to(LIB).parts),
                         ids=lambda p: str(p.relative_to(LIB)))
def test_compute_sources_name_no_drawing_module_even_lazily(path):
    """The same boundary read from the source, so an import hidden inside a function (an arrow
    pointing back up, such as a result that draws itself) is caught too."""
    bad = [f"line {line}: {mod}" for line, mod, _ in _imports(path)
           if mod.lstrip(".").startswith(("matplotlib", "ipywidgets", "ipympl", "seaborn"))
           or mod.lstrip(".") == "ui" or ".ui" in mod or mod.startswith("course_lib.ui")]
    assert not bad, f"{path.relative_to(ROOT)} imports drawing code: {bad}"


@pytest.mark.parametrize("path", sorted(LIB.rglob("*.py")), ids=lambda p: str(p.relative_to(LIB)))
def test_no_module_imports_another_modules_private_names(path):
    """``from .train import _make_optimizer`` couples two modules through a name that promises
    nothing; shared helpers live in a private module (``_loop``, ``_validation``, ...) under
    public names. ``_private`` modules themselves may be imported."""
    def is_module(mod: str, name: str) -> bool:  # `from . import _run_cache` imports a private module: fine
        here = path.parent
        for _ in range(max(len(mod) - len(mod.lstrip(".")) - 1, 0)):
            here = here.parent
        base = here.joinpath(*mod.lstrip(".").split(".")) if mod.lstrip(".") else here
        return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()

    bad = [f"line {line}: from {mod} import {n}" for line, mod, names in _imports(path) if names
           for n in names if n.startswith("_") and n != "__version__" and not is_module(mod, n)]
    assert not bad, f"{path.relative_to(ROOT)} imports private names of another module: {bad}"


KERNELSPEC = {"kernelspec": {"display_name": "Loss & Scaling (course)", "language": "python", "name": "loss-scaling"}}


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_lesson_notebook_metadata_is_exactly_its_kernelspec_and_language_info(path):
    """No editor metadata (jupytext, widget state) is committed: only the kernel, and the
    ``language_info`` the course's kernel reports. JupyterLab writes ``language_info`` into the
    notebook as soon as the kernel connects; a notebook without it (or with a different one) is
    marked modified on opening and asks to be saved on closing (issue 12). No cell metadata
    other than tags, JupyterLab's ``jupyter.source_hidden`` / ``collapsed`` and RISE's ``slideshow`` either."""
    from ipykernel.ipkernel import IPythonKernel

    nb = json.loads(path.read_text())
    expected = dict(KERNELSPEC, language_info=dict(IPythonKernel.language_info))
    assert nb["metadata"] == expected, f"{path.name}: metadata should be exactly {expected}; got {nb['metadata']}"
    extra = {k for c in nb["cells"] for k in c.get("metadata", {})} - {"tags", "jupyter", "collapsed", "exercise",
                                                                      "slideshow"}  # RISE, set by course_lib.ui.slides
    assert not extra, f"{path.name}: editor metadata in cells: {sorted(extra)}"
