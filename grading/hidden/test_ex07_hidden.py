"""Hidden grading tests of notebook 07 (instructors only; not shipped to students).

7.1 on a real Matryoshka layer (gradient of W against torch's loop), one size (value and gradient),
and tuple inputs; 7.2 on gradients recorded from a real training run (against NumPy, computed before
the call, so the inputs must stay unchanged); 7.3 with another seed of the initial weights and the
batch order (5 epochs, c_192 = 1, seed 1: last-epoch ratio 1.29 for c_96 = 0.1, 1.39 for 0.2, 1.44
for 0.25, 1.49 for 0.3, 1.59 for 0.4; bound 1.55).
"""

import numpy as np
import pytest
import torch
import torch._dynamo  # noqa: F401  the first optimizer of a process imports it (3-6 s): pay that here, untimed
import torch.nn.functional as F

from course_lib.grading import isolated_torch as _isolated
from course_lib.matryoshka import MatryoshkaLayer, make_frozen_features, train_matryoshka


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_mrl_loss_on_a_matryoshka_layer(exercise):
    """The loss of every head, weighted, summed: the gradient of W must equal torch's hand loop."""
    X, y = make_frozen_features(64, dim=48, num_classes=6, device="cpu")
    layer = MatryoshkaLayer(48, sizes=(8, 16, 32), num_classes=6, generator=torch.Generator().manual_seed(0))
    weights = (2.0, 1.0, 0.5)
    (got,) = torch.autograd.grad(exercise("7.1").mrl_loss(layer(X), y, list(weights)), layer.weight)
    (want,) = torch.autograd.grad(sum(c * F.cross_entropy(lg, y) for c, lg in zip(weights, layer(X))), layer.weight)
    err = float((got - want).abs().max())
    assert err < 1e-6, f"gradient of W through mrl_loss: expected max abs diff < 1e-6 from torch's loop; got {err:.3g}"


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_mrl_loss_one_size_and_tuples(exercise):
    """One size is plain cross-entropy, its gradient included; logits and weights may come as tuples."""
    g = torch.Generator().manual_seed(5)
    lg, y = torch.randn(10, 7, generator=g), torch.randint(0, 7, (10,), generator=g)
    f = exercise("7.1").mrl_loss
    assert float(f((lg,), y)) == pytest.approx(float(F.cross_entropy(lg, y)), rel=1e-6), (
        f"mrl_loss((logits,), y): expected {float(F.cross_entropy(lg, y)):.6f}; got {float(f((lg,), y)):.6f}")
    leaf = lg.clone().requires_grad_(True)
    loss = f((leaf,), y)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad, (
        "mrl_loss((logits,), y) with logits that require grad: the loss should carry autograd's graph "
        "(a tensor built from the heads' losses, not from Python floats)")
    (got_g,) = torch.autograd.grad(loss, leaf)
    (want_g,) = torch.autograd.grad(F.cross_entropy(leaf, y), leaf)
    err = float((got_g - want_g).abs().max())
    assert err < 1e-6, f"gradient of mrl_loss((logits,), y): expected max abs diff < 1e-6 from torch's; got {err:.3g}"
    got = float(f((lg, lg), y, (0.25, 0.75)))
    assert got == pytest.approx(float(F.cross_entropy(lg, y)), rel=1e-6), (
        f"mrl_loss((logits, logits), y, (0.25, 0.75)): expected {float(F.cross_entropy(lg, y)):.6f}; got {got:.6f}")


@pytest.mark.exercise("7.2")
@pytest.mark.points(2)
def test_gradient_stats_on_a_real_run(exercise):
    """The lesson's statistics of real gradients: the hook records W.grad of every step."""
    X, y = make_frozen_features(512, dim=64, num_classes=5, device="cpu")
    layer = MatryoshkaLayer(64, sizes=(16, 32), num_classes=5, generator=torch.Generator().manual_seed(0))
    grads = []
    layer.weight.register_hook(lambda g: grads.append(g.detach().clone()))
    with _isolated():
        train_matryoshka(X, y, sizes=(16, 32), layer=layer, batch_size=64, num_epochs=1, device="cpu")
    G = np.stack([g.double().numpy() for g in grads])  # before the call: the inputs are not to be changed
    mean_abs, var = exercise("7.2").gradient_stats(grads, (0, 16, 32))
    want_abs = [float(np.abs(G[:, a:b]).mean()) for a, b in ((0, 16), (16, 32))]
    want_var = [float(G.var(axis=0)[a:b].mean()) for a, b in ((0, 16), (16, 32))]
    assert [float(v) for v in mean_abs] == pytest.approx(want_abs, rel=1e-5), (
        f"mean |g| of a real run: expected {want_abs}; got {list(mean_abs)}")
    assert [float(v) for v in var] == pytest.approx(want_var, rel=1e-4), (
        f"variance over the steps of a real run: expected {want_var}; got {list(var)}")


@pytest.mark.exercise("7.3")
@pytest.mark.points(1)
def test_weights_hold_for_another_seed(exercise):
    """Choose weights with a margin: the ratio should stay low for other initial weights too."""
    weights = exercise("7.3").choose_weights()
    c96, c192 = (float(c) for c in weights)
    assert min(c96, c192) >= 0.1 * max(c96, c192) > 0, f"each weight at least a tenth of the other; got {weights!r}"
    X, y = make_frozen_features(4000, seed=0, device="cpu")
    with _isolated():
        h = train_matryoshka(X, y, sizes=(96, 192), weights=[c96, c192], num_epochs=5, seed=1, device="cpu")
    got = h.ratio[-1] if h.stop_reason == "completed" else float("nan")
    assert got < 1.55, f"weights {weights} with seed 1: expected a last-epoch gradient ratio below 1.55; got {got:.3f}"
