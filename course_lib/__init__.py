"""course_lib: the helper library of the Loss & Scaling course.

Compute modules (no plotting imports): ``device``, ``data``, ``language``, ``models``,
``losses``, ``train``, ``curves``, ``schedules``, ``lr_finder``,
``metrics``, ``masking``, ``surfaces``, ``sweep``, ``scaling``. Drawing: ``plotting`` (and ``plotting_*``); widgets: ``widgets``, ``lab`` (and ``intro_widgets``). Notebooks import from here and never
copy library code.

Example:
    >>> import course_lib as cl
    >>> data = cl.make_regression(200, noise=0.1, seed=0)
    >>> h = cl.fit(cl.MLP(1, 1, width=16), data, lr=1e-2, num_steps=100, device="cpu")
    >>> h.stop_reason
    'completed'
"""

from .curves import VERDICTS, Diagnosis, diagnose, ema
from .data import DataSplit, make_classification, make_regression
from .device import default_device, fast_mode, resolve_device, seed_everything
from .language import MarkovLanguage
from .losses import (LOSSES, bce_with_logits_loss, causal_lm_loss, cross_entropy_loss, gaussian_kl,
                     get_loss, hinge_loss, huber_loss, kl_div_loss, kl_divergence, log_softmax,
                     mae_loss, mse_loss, multiclass_hinge_loss)
from .lr_finder import LR_FINDER_STOPS, SUGGESTION_RULES, LRFinderResult, lr_range_test, lr_sweep, suggest_lrs
from .bottleneck import (BottleneckHistory, BottleneckLM, BottleneckMLP, BottleneckOutput, BottleneckRun, bottleneck_loss,
                         evaluate_bottleneck, train_bottleneck)
from .loss_shapes import FIT_LOSSES, LOSS_CURVES, fit_line, loss_curve, make_outlier_data
from .masking import IGNORE_INDEX, MASK_KINDS, MaskedTokens, mask_tokens, sample_span_lengths, span_length_distribution, span_mask
from .metrics import CLASSIFICATION_METRICS, accuracy, precision, recall
from .models import ACTIVATIONS, MLP, FactorizedBigram, LinearModel, TinyCausalLM, count_params
from .scaling import (CHINCHILLA, CHINCHILLA_TOKENS_PER_PARAM, KAPLAN, ChinchillaFit, KaplanLaws, PowerLawFit,
                      fit_chinchilla, fit_power_law, flops)
from .sweep import (COURSE_GRIDS, EVALUATIONS, RunConfig, RunResult, SweepResult, course_sweeps, default_cache_dir,
                    run_sweep, train_run)
from .schedules import (ANNEAL_STRATEGIES, CYCLIC_MODES, Schedule, attach_schedule, cyclic_lr, cyclic_momentum,
                        cyclic_schedule, one_cycle_lr, one_cycle_momentum, one_cycle_schedule)
from .surfaces import (PATH_OPTIMIZERS, REGIMES, SURFACES, GDThresholds, OptimizerPath, Surface, gd_thresholds,
                       get_surface, optimizer_path, quadratic, rosenbrock, two_minima)
from .train import OPTIMIZERS, STOP_REASONS, History, TrainState, fit

__version__ = "0.1.0"

__all__ = [
    "VERDICTS", "Diagnosis", "diagnose", "ema",
    "DataSplit", "make_classification", "make_regression", "MarkovLanguage",
    "default_device", "fast_mode", "resolve_device", "seed_everything",
    "LOSSES", "bce_with_logits_loss", "causal_lm_loss", "cross_entropy_loss", "gaussian_kl", "get_loss",
    "hinge_loss", "huber_loss", "kl_div_loss", "kl_divergence", "log_softmax", "mae_loss", "mse_loss",
    "multiclass_hinge_loss",
    "IGNORE_INDEX", "MASK_KINDS", "BottleneckHistory", "BottleneckLM", "BottleneckOutput", "BottleneckRun",
    "MaskedTokens", "bottleneck_loss", "evaluate_bottleneck", "mask_tokens", "sample_span_lengths",
    "span_length_distribution", "span_mask", "train_bottleneck",
    "CLASSIFICATION_METRICS", "accuracy", "precision", "recall",
    "ACTIVATIONS", "MLP", "BottleneckMLP", "FactorizedBigram", "LinearModel", "TinyCausalLM", "count_params",
    "CHINCHILLA", "CHINCHILLA_TOKENS_PER_PARAM", "KAPLAN", "ChinchillaFit", "KaplanLaws", "PowerLawFit",
    "fit_chinchilla", "fit_power_law", "flops",
    "COURSE_GRIDS", "EVALUATIONS", "RunConfig", "RunResult", "SweepResult", "course_sweeps", "default_cache_dir",
    "run_sweep", "train_run",
    "LR_FINDER_STOPS", "SUGGESTION_RULES", "LRFinderResult", "lr_range_test", "lr_sweep", "suggest_lrs",
    "ANNEAL_STRATEGIES", "CYCLIC_MODES", "Schedule", "attach_schedule", "cyclic_lr", "cyclic_momentum",
    "cyclic_schedule", "one_cycle_lr", "one_cycle_momentum", "one_cycle_schedule",
    "FIT_LOSSES", "LOSS_CURVES", "PATH_OPTIMIZERS", "REGIMES", "SURFACES", "GDThresholds", "OptimizerPath", "Surface",
    "fit_line", "gd_thresholds", "get_surface", "loss_curve", "make_outlier_data", "optimizer_path", "quadratic",
    "rosenbrock", "two_minima",
    "OPTIMIZERS", "STOP_REASONS", "History", "TrainState", "fit",
]
# Plotting is imported lazily (``from course_lib.plotting import ...`` or ``course_lib.plotting``)
# so that grading and headless compute never import matplotlib by accident.
