"""Small stand-ins for the panels of lessons 07-11, on which a prepared demo replays headless.

Those panels are built on the notebook's own data (a trained model, a sweep, a problem). To
replay a demo without the notebook, :func:`course_lib.ui.demos.replay` builds a panel of the same
kind on a small problem that trains in a few seconds: the course's tests check that every
demo's keyframes move real sliders, press real buttons, and end in the recorded kind of state.
The numbers shown in the notebook differ. The course's slow tests also replay every demo on the
panel its lesson builds (the same calls and arguments): those take minutes (lesson 11's fit alone
took over two minutes on a busy machine), so the quick tests and ``replay`` use these.

Example:
    >>> sorted(STANDINS)[:2]
    ['ComputeBudgetExplorer', 'EWCLab']
"""

from __future__ import annotations

__all__ = ["STANDINS"]


def _small_matryoshka(device):
    from ..matryoshka import make_frozen_features
    from .matryoshka import MatryoshkaPanel
    X, y = make_frozen_features(256, dim=192, num_classes=4, device=device)
    return MatryoshkaPanel(X, y, num_epochs=3, device=device, min_interval=0.0)


def _small_ewc(device):
    import torch

    from .. import ewc
    from ..models import MLP
    from .ewc import EWCLab
    tasks = ewc.make_tasks(2, dim=8, num_classes=4, n_train=200, n_test=100, seed=0)
    torch.manual_seed(0)
    model = MLP(8, 4, width=16)
    ewc.train_sequential(model, tasks[:1], num_steps=100, device=device)     # the model of task A
    return EWCLab(model, tasks, num_steps=100, eval_every=10, device=device, min_interval=0.0)


def _small_local(device):
    from ..local_learning import make_checkerboard
    from .local_learning import LocalLearningLab
    return LocalLearningLab(make_checkerboard(600, seed=0, device=device), num_steps=60, device=device,
                            min_interval=0.0)


def _small_hyper(device):
    import torch

    from .. import hypergrad as hg
    from .hypergrad import HyperStepExplorer
    return HyperStepExplorer(hg.make_ridge_problem(12, 10, 40, seed=1, device=device),
                             rhos=torch.linspace(-8, 1.5, 8, dtype=torch.float64), num_steps=50, num_hyper_steps=5)


def _small_budget(device):
    from ..scaling import ChinchillaFit
    from .scaling import ComputeBudgetExplorer
    return ComputeBudgetExplorer(ChinchillaFit(E=1.0, A=40.0, B=300.0, alpha=1.0, beta=0.8), budgets=(1e7, 1e11),
                                 floor=1.0)



def _small_spectrum(device):
    from ..scaling import ChinchillaFit
    from ..sweep import RunConfig, RunResult, SweepResult
    from .scaling import SpectrumExplorer
    H = 2.5                                   # sweeps written from a known law (alpha = 2a - 1): nothing trains

    def sweep(a):
        law = ChinchillaFit(E=H, A=40.0 * 100 ** (2 * a - 2), B=1e-9, alpha=2 * a - 1, beta=1.0)
        cfgs = [RunConfig(rank=r, tokens=65536, exponent=a) for r in (1, 2, 4, 8, 16)]
        return SweepResult([RunResult(c, float(law.predict(c.num_params, 65536)), H, 65536, 0.01) for c in cfgs],
                           H, H + 1.0, 0.1)
    return SpectrumExplorer({a: sweep(a) for a in (1.0, 1.5, 2.0)})


STANDINS = {"MatryoshkaPanel": _small_matryoshka, "EWCLab": _small_ewc, "LocalLearningLab": _small_local,
           "HyperStepExplorer": _small_hyper, "ComputeBudgetExplorer": _small_budget,
            "SpectrumExplorer": _small_spectrum}
