"""Hidden grading tests of notebook 09 (instructors only; not shipped to students).

9.1 on chunks of unequal widths given as an ``nn.ModuleList``: which chunks each head's loss
reaches, and each chunk's gradient compared to an oracle that detaches by hand; 9.2 on the
block outputs of a network from the lesson, against ``torch.linalg.lstsq``.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import local_learning as ll


def _chunks(widths=(2, 5, 7, 3, 6), seed=3):
    torch.manual_seed(seed)
    chunks = nn.ModuleList([nn.Sequential(nn.Linear(a, b), nn.Tanh()) for a, b in zip(widths[:-1], widths[1:])])
    heads = nn.ModuleList([nn.Linear(b, 4) for b in widths[1:]])
    g = torch.Generator().manual_seed(seed)
    return chunks, heads, torch.randn(30, widths[0], generator=g), torch.randint(0, 4, (30,), generator=g)


@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_each_chunk_gets_exactly_its_own_heads_gradient(exercise):
    """With local=True, chunk j's gradient from the summed losses is the gradient of head j's loss on a detached input."""
    chunks, heads, X, y = _chunks()
    out = exercise("9.1").chunked_logits(chunks, heads, X, local=True)
    assert len(out) == len(chunks), f"expected {len(chunks)} logits (one per head); got {len(out)}"
    total = sum(F.cross_entropy(z, y) for z in out)
    got = [torch.autograd.grad(total, list(c.parameters()), retain_graph=True) for c in chunks]
    h = X
    for j, (chunk, head) in enumerate(zip(chunks, heads)):
        h_in = h.detach()
        h = chunk(h_in)
        want = torch.autograd.grad(F.cross_entropy(head(h), y), list(chunk.parameters()), retain_graph=True)
        err = max(float((a - b).abs().max()) for a, b in zip(got[j], want))
        assert err < 1e-6, (f"chunk {j}: expected the gradient of head {j}'s loss alone (input detached); got a max "
                            f"difference of {err:.3g}")


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_probe_on_the_lessons_block_outputs(exercise):
    """Float32 features of a trained network: same accuracy as torch.linalg.lstsq, block by block."""
    data = ll.make_checkerboard(600, cells=3, seed=0)
    net = ll.LocalNet(num_blocks=4, seed=0)
    outs, outs_val = net.block_outputs(data.X_train), net.block_outputs(data.X_val)
    probe = exercise("9.2").probe_accuracy
    for depth, (a, b) in enumerate(zip(outs, outs_val)):
        A = torch.cat([a.double(), torch.ones(len(a), 1, dtype=torch.float64)], 1)
        eye = torch.eye(A.shape[1], dtype=torch.float64)
        A_aug = torch.cat([A, (1e-3 * len(A)) ** 0.5 * eye])
        Y_aug = torch.cat([F.one_hot(data.y_train, 2).double(), torch.zeros(A.shape[1], 2, dtype=torch.float64)])
        W = torch.linalg.lstsq(A_aug, Y_aug).solution
        A_val = torch.cat([b.double(), torch.ones(len(b), 1, dtype=torch.float64)], 1)
        want = float(((A_val @ W).argmax(1) == data.y_val).double().mean())
        got = probe(a, data.y_train, b, data.y_val)
        assert abs(got - want) <= 0.01, f"block {depth}: expected a probe accuracy of {want:.3f}; got {got:.3f}"


@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_each_loss_reaches_its_own_chunk_and_no_earlier_one(exercise):
    """With local=True, on chunks of unequal widths: head j's loss trains chunk j and stops at its input."""
    chunks, heads, X, y = _chunks()
    out = exercise("9.1").chunked_logits(chunks, heads, X, local=True)
    assert len(out) == len(chunks), f"expected {len(chunks)} logits (one per head); got {len(out)}"
    for j, z in enumerate(out):
        loss = F.cross_entropy(z, y)
        for k in range(j + 1):
            grads = torch.autograd.grad(loss, list(chunks[k].parameters()), retain_graph=True, allow_unused=True)
            reach = sum(float(g.pow(2).sum()) for g in grads if g is not None)
            if k < j:
                assert reach == 0.0, f"the loss of head {j} should not reach chunk {k} (exactly 0); got |grad|^2 = {reach:.3g}"
            else:
                assert reach > 0, f"the loss of head {j} should reach chunk {j} (a nonzero gradient); got 0"
