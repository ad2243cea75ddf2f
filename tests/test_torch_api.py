"""The library uses public torch API only, and the torch floor declared in pyproject.toml holds:
every torch API the library needs exists in that release and in the installed torch."""

import importlib
import re
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# The newest torch APIs the library calls, with the first release that has them.
# get_total_norm: pytorch/pytorch PR #139662 (merged 2024-11-07, after 2.5.0 of 2024-10-17), first
# released in 2.6; the 2.2 docs of clip_grad_norm_ do not know it, the 2.7+ docs do.
NEWEST_APIS = {
    "torch.nn.utils.get_total_norm": "2.6",                    # train.fit's gradient norm
    "torch.optim.lr_scheduler.LRScheduler": "2.0",             # schedules.attach_schedule (public name since 2.0)
    "torch.nn.functional.scaled_dot_product_attention": "2.0",  # models.TinyCausalLM
}


def _declared_floor() -> Version:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"torch\s*>=", d)]
    return Version(spec.split(">=")[1].strip())


def _resolve(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_declared_floor_covers_every_api_the_library_needs():
    floor = _declared_floor()
    needed = max(Version(v) for v in NEWEST_APIS.values())
    assert floor >= needed, f"pyproject.toml declares torch>={floor}, but the library needs torch>={needed}"


@pytest.mark.parametrize("api", sorted(NEWEST_APIS))
def test_installed_torch_has_the_api_and_meets_the_floor(api):
    assert Version(torch.__version__.split("+")[0]) >= _declared_floor()
    assert callable(_resolve(api)), f"{api} is missing from torch {torch.__version__}"


def test_the_lock_pins_a_torch_at_or_above_the_floor():
    lock = (ROOT / "requirements" / "lock.txt").read_text()
    pinned = re.search(r"^torch==([\w.]+)", lock, re.M).group(1)
    assert Version(pinned) >= _declared_floor()


# Named on purpose, never called: torch.optim imports torch._dynamo when a process builds its first
# optimizer (1.2-1.9 s of CPU). The grading zygote imports it by name before it forks (each child would
# import it again), and _loop.import_optimizer_machinery while a lesson or a lab is set up (a lab's first
# Play sat still for ~2 s). A failed import is ignored in both, so a torch without it only loses that time.
_ALLOWED = {("course_lib/grading/zygote.py", "torch._dynamo"), ("course_lib/_loop.py", "torch._dynamo")}


def test_no_private_torch_api_in_the_library():
    # torch._foreach_norm, nn.modules.loss._Loss, torch._C ...: private names change without notice.
    private = re.compile(r"\b(?:torch|nn|F)(?:\.[A-Za-z]\w*)*\._[A-Za-z]\w*")
    found = [f"{path.relative_to(ROOT)}:{i}: {m.group(0)}"
             for path in sorted((ROOT / "course_lib").rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1)
             for m in private.finditer(line.split("#")[0])
             if (str(path.relative_to(ROOT)), m.group(0)) not in _ALLOWED]
    assert found == [], "private torch API used:\n" + "\n".join(found)
