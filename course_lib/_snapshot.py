"""Save and restore everything an experiment touches: model, optimizer and random states, bit for bit.

The LR range test trains a model on purpose until it diverges; a learner then expects the model,
its optimizer and every random generator to be exactly as they were, so that the run that follows
is the run they would have had without the test. A private module: ``lr_finder`` uses it.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import torch
import torch.nn as nn

__all__: list[str] = []  # private: imported by name inside course_lib only


def _clone(v: Any) -> Any:
    return v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)


class Snapshot:
    """An in-memory copy of the model, optimizer and RNG states, restorable bit for bit."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None):
        self.model = model
        # Parameters and buffers by name (load_state_dict copies into the same tensors, so the
        # optimizer's references stay valid), plus gradients and train/eval flags.
        self.state = {k: _clone(v) for k, v in model.state_dict(keep_vars=True).items()}
        self.params = list(model.parameters())
        self.devices = [p.device for p in self.params] + [b.device for b in model.buffers()]
        self.grads = [None if p.grad is None else _clone(p.grad) for p in self.params]
        self.training = [(m, m.training) for m in model.modules()]
        self.optimizer = optimizer
        if optimizer is not None:
            in_model = {id(p) for p in self.params}
            # Parameters the optimizer updates but the model does not own: restore them too.
            self.extra = [(p, _clone(p), None if p.grad is None else _clone(p.grad))
                          for g in optimizer.param_groups for p in g["params"] if id(p) not in in_model]
            self.opt_state = {p: {k: _clone(v) for k, v in s.items()} for p, s in optimizer.state.items()}
            self.opt_groups = [{k: (list(v) if k == "params" else _clone(v)) for k, v in g.items()}
                               for g in optimizer.param_groups]
            # Flags torch keeps on the optimizer object (e.g. `_opt_called`, set by a scheduler's wrapper).
            self.opt_flags = {k: v for k, v in vars(optimizer).items() if isinstance(v, (bool, int, float, type(None)))}
        self.rng = get_rng_states()

    def restore(self) -> None:
        # 1. Back to the original device(s) first, so the copies below land where they were.
        if self.devices and len(set(self.devices)) == 1 and self.params and self.params[0].device != self.devices[0]:
            self.model.to(self.devices[0])
        # 2. Values, gradients, modes.
        with torch.no_grad():
            self.model.load_state_dict(self.state, strict=True)
        for p, g in zip(self.params, self.grads):
            p.grad = g
        for m, flag in self.training:
            m.training = flag
        # 3. Optimizer: per-parameter state, group hyperparameters, flags.
        opt = self.optimizer
        if opt is not None:
            with torch.no_grad():
                for p, value, grad in self.extra:
                    p.copy_(value)
                    p.grad = grad
            opt.state.clear()
            opt.state.update({p: dict(s) for p, s in self.opt_state.items()})
            for group, saved in zip(opt.param_groups, self.opt_groups):
                group.clear()
                group.update(saved)
            for k in [k for k, v in vars(opt).items()
                      if isinstance(v, (bool, int, float, type(None))) and k not in self.opt_flags]:
                delattr(opt, k)
            for k, v in self.opt_flags.items():
                setattr(opt, k, v)
        # 4. Random number generators last: nothing above draws random numbers.
        set_rng_states(self.rng)


def get_rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if hasattr(torch, "mps") and torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states:
        torch.mps.set_rng_state(states["mps"])
