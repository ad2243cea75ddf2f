"""Hidden grading tests of notebook 04 (instructors only; not shipped to students).

The chosen weight decay must help on other initialisations too, not only on the shipped
test's seed (calibrated, mean validation MSE over init seeds 1, 2, 3: no decay 0.180;
decays 0.1..10 between 0.138 and 0.171).
"""


import math

import pytest
import torch
import torch.nn as nn

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated

MEAN_BOUND = 0.172


@pytest.mark.exercise("4.3")
@pytest.mark.points(2)
def test_weight_decay_helps_on_other_initialisations(exercise):
    """A decay that only helps on one seed is tuned to noise: choose from a range that helps consistently."""
    wd = float(exercise("4.3").choose_weight_decay())
    data = cl.make_regression(220, kind="polynomial", noise=0.3, val_fraction=0.9, seed=1)
    losses = []
    for init in (1, 2, 3):
        with _isolated():
            torch.manual_seed(init)
            model = cl.MLP(1, 1, width=128, depth=2)
            cl.fit(model, data, optimizer="adamw", lr=1e-2, weight_decay=wd, num_steps=1000, batch_size=32,
                   eval_every=0, device="cpu", seed=0)
        model.eval()
        with torch.no_grad():
            losses.append(float(((model(data.X_val) - data.y_val) ** 2).mean()))
    mean = sum(losses) / 3
    assert mean < MEAN_BOUND, (
        f"with weight_decay={wd:g} the mean validation MSE over initialisation seeds 1, 2, 3 should be below "
        f"{MEAN_BOUND} "
        f"(no decay: 0.180); got {mean:.3f} ({[round(v, 3) for v in losses]})")

@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_keeps_float64_and_a_3d_shape(exercise):
    """Keep x's dtype and shape, and draw for every element of every sample."""
    x = torch.randn(40, 50, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x0 = x.clone()
    got = exercise("4.1").dropout(x, 0.2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, x0), "dropout modified its input x in place: leave x as it was"
    assert got.dtype == torch.float64 and got.shape == x.shape, (
        f"expected float64 of shape {tuple(x.shape)}; got {got.dtype}, {tuple(got.shape)}")
    kept = got != 0
    assert torch.allclose(got[kept], x[kept] / 0.8), "survivors should equal x / (1 - p) exactly, in float64 too"
    dropped = (~kept).double()
    for dims, what in [((1, 2), "sample"), ((0,), "position (feature)")]:
        frac = dropped.mean(dim=dims)
        n = dropped.numel() // frac.numel()
        tol = 5 * math.sqrt(0.2 * 0.8 / n)
        assert (frac - 0.2).abs().max().item() < tol, (
            f"every {what} should lose a fraction 0.2 +- {tol:.3f} of its elements; the worst lost "
            f"{frac[(frac - 0.2).abs().argmax()].item():.3f}: draw independently for every element")


@pytest.mark.exercise("4.2")
@pytest.mark.points(2)
def test_l1_of_an_embedding_and_norm_model(exercise):
    """Every parameter with two or more dimensions counts (embeddings too); 1-D ones (biases, norm scales) do not."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Embedding(7, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.fill_(3.0)
    want = 0.01 * sum(p.abs().sum() for p in model.parameters() if p.ndim >= 2).item()
    got = float(exercise("4.2").l1_penalty(model, 0.01).detach())
    assert got == pytest.approx(want, rel=1e-6), (
        f"l1_penalty of Embedding(7, 4) -> LayerNorm(4) -> Linear(4, 3) at l1=0.01 should be {want:.6g} (the "
        f"embedding table and the linear weight); got {got:.6g}")
