"""course_lib: the helper library of the Loss & Scaling course.

``import course_lib as cl`` gives the verbs and models a notebook calls (``cl.fit``, ``cl.MLP``,
``cl.make_regression``, ``cl.lr_range_test``, the losses, ...). Everything else is one level
down, in the module that computes it: ``cl.surfaces.optimizer_path``, ``cl.bottleneck.BottleneckRun``,
``cl.scaling.ChinchillaFit``. Each compute module holds one concept and never draws.

Drawing lives in ``course_lib.ui`` (``ui.X`` draws what ``X`` computes), grading in
``course_lib.grading``; both are imported only when first used, so ``import course_lib`` never
pulls in matplotlib or ipywidgets.

Example:
    >>> import course_lib as cl
    >>> data = cl.make_regression(200, noise=0.1, seed=0)
    >>> h = cl.fit(cl.MLP(1, 1, width=16), data, lr=1e-2, num_steps=100, device="cpu")
    >>> h.stop_reason
    'completed'
"""

import importlib

from . import (bottleneck, curves, data, device, ewc, hypergrad, language, local_learning, loss_shapes, losses,
               lr_finder, masking, matryoshka, metrics, models, scaling, schedules, span_boundary, surfaces, sweep,
               train)
from .bottleneck import BottleneckLM, train_bottleneck
from .curves import diagnose, ema
from .data import DataSplit, make_classification, make_regression
from .device import default_device, fast_mode, resolve_device, seed_everything
from .language import MarkovLanguage
from .losses import (bce_with_logits_loss, causal_lm_loss, cross_entropy_loss, get_loss, hinge_loss, huber_loss,
                     kl_divergence, log_softmax, mae_loss, mse_loss)
from .lr_finder import SUGGESTION_RULES, lr_range_test, suggest_lrs
from .masking import mask_tokens, span_mask
from .metrics import accuracy
from .models import MLP, FactorizedBigram, LinearModel, TinyCausalLM, count_params
from .scaling import CHINCHILLA, KAPLAN, fit_chinchilla, fit_power_law
from .schedules import cyclic_schedule, one_cycle_schedule
from .sweep import course_sweeps, run_sweep
from .train import History, fit

__version__ = "0.1.0"

__all__ = [
    # data and devices
    "make_regression", "make_classification", "DataSplit", "MarkovLanguage",
    "default_device", "resolve_device", "seed_everything", "fast_mode",
    # models
    "LinearModel", "MLP", "TinyCausalLM", "FactorizedBigram", "BottleneckLM", "count_params",
    # losses
    "mse_loss", "mae_loss", "huber_loss", "bce_with_logits_loss", "cross_entropy_loss", "hinge_loss",
    "log_softmax", "kl_divergence", "causal_lm_loss", "get_loss",
    # training and reading curves
    "fit", "History", "ema", "diagnose", "accuracy",
    # learning rates
    "lr_range_test", "suggest_lrs", "SUGGESTION_RULES", "cyclic_schedule", "one_cycle_schedule",
    # masking
    "mask_tokens", "span_mask", "train_bottleneck",
    # scaling
    "run_sweep", "course_sweeps", "fit_power_law", "fit_chinchilla", "CHINCHILLA", "KAPLAN",
]

_LAZY = ("ui", "grading")  # drawing and grading: imported on first use (PEP 562)


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
