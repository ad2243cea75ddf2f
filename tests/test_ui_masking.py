"""Tests of course_lib.ui.masking and course_lib.ui.bottleneck: each helper returns its Axes, so we count and read artists."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from course_lib.bottleneck import BottleneckHistory  # noqa: E402
from course_lib.masking import MaskedTokens, mask_tokens, span_mask  # noqa: E402
from course_lib.ui.masking import MASK_COLORS, plot_masked_tokens  # noqa: E402
from course_lib.ui.bottleneck import BottleneckPlot, plot_bottleneck_run, plot_masking_tradeoff  # noqa: E402

H, U = 2.05, 3.11


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(w, n=20, change_at=None):
    kl = [10.0 / (w * (i + 1)) for i in range(n)]
    h = BottleneckHistory(step=list(range(n)), ce=[3.0 - 0.01 * i for i in range(n)], kl=kl, strength=[w] * n,
                          config={"strength": w})
    if change_at is not None:
        h.add_event(change_at, "change", f"strength {w:g} -> 1")
    return h


def test_tradeoff_figure_has_the_seed_layout():
    hs = {w: _history(w) for w in (0.001, 0.5, 10.0)}
    axes = plot_masking_tradeoff(hs, entropy_rate=H, unigram_entropy=U)
    assert axes.shape == (2, 3)
    for col, w in enumerate(hs):
        ax_kl, ax_ce = axes[0, col], axes[1, col]
        assert ax_kl.get_yscale() == "log" and ax_ce.get_yscale() == "linear"
        assert f"{w:g}" in ax_kl.get_title() and f"{w:g}" in ax_ce.get_title()
        assert len(ax_kl.lines) == 1
        # The CE curve plus the two reference lines, at H and U.
        assert len(ax_ce.lines) == 3
        refs = sorted(line.get_ydata()[0] for line in ax_ce.lines[1:])
        assert refs == pytest.approx([H, U])
        np.testing.assert_allclose(ax_ce.lines[0].get_ydata(), hs[w].ce)


def test_live_plot_updates_in_place_and_marks_events():
    fig, (ax_kl, ax_ce) = plt.subplots(2, 1)
    plot = BottleneckPlot(ax_kl, ax_ce, entropy_rate=H, unigram_entropy=U)
    h = _history(0.5, n=5)
    plot.update(h)
    n_lines = len(ax_ce.lines)
    h.step.append(5); h.ce.append(2.9); h.kl.append(0.0); h.strength.append(1.0)  # noqa: E702
    h.add_event(5, "change", "strength 0.5 -> 1")
    plot.update(h)
    plot.update(h)  # an event is drawn once, however often the plot updates
    assert len(plot.ce_line.get_xdata()) == 6
    assert np.isnan(plot.kl_line.get_ydata()[-1])  # KL of 0 cannot sit on a log axis: a gap
    assert len(ax_ce.lines) == n_lines + 1 and len(ax_kl.lines) == 2  # one vertical line each
    assert [t.get_text() for t in ax_ce.texts] == ["H", "U", "strength 0.5 -> 1"]


def test_divergence_is_marked():
    h = _history(0.5, n=4)
    h.ce[-1] = float("nan")
    h.stop_reason, h.stop_step = "diverged", 3
    h.add_event(3, "diverged", "loss is not finite")
    ax_kl, ax_ce = plot_bottleneck_run(h, entropy_rate=H)
    assert any("diverged at step 3" in t.get_text() for t in ax_ce.texts)


def test_masked_tokens_are_drawn_as_coloured_text():
    tokens = torch.arange(20) % 32
    mlm = mask_tokens(tokens, 32, 32, mask_prob=0.3, seed=0)
    span = span_mask(tokens, 32, 32, seed=0)
    ax = plot_masked_tokens(tokens, {"MLM": mlm, "SpanBERT": span}, per_line=10)
    token_texts = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert len(token_texts) == 3 * 20
    assert token_texts[0].get_text() == "t00" and token_texts[19].get_text() == "t19"
    # The MLM row: [M] in blue boxes exactly where kinds says "mask".
    mlm_texts = token_texts[20:40]
    for t, kind in zip(mlm_texts, mlm.kinds.tolist()):
        assert (t.get_text() == "[M]") == (kind == 1)
        face = to_hex(t.get_bbox_patch().get_facecolor())
        assert face == MASK_COLORS[("none", "mask", "random", "keep")[kind]].lower()


@pytest.mark.parametrize("call, error, message", [
    (lambda: plot_masked_tokens(torch.zeros(2, 3, dtype=torch.int64), {}), ValueError,
     "plot_masked_tokens(): 'tokens' must have 1 dimension(s) (T,)"),
    (lambda: plot_masked_tokens(torch.arange(5), {"x": MaskedTokens(*(torch.zeros(4, dtype=torch.int64),) * 3)}),
     ValueError, "plot_masked_tokens(): each example must have the shape of 'tokens'"),
    (lambda: plot_masked_tokens(torch.arange(5), {"x": "oops"}), TypeError,
     "plot_masked_tokens(): 'examples['x']' must be a MaskedTokens"),
    (lambda: plot_masking_tradeoff({}, entropy_rate=H, unigram_entropy=U), ValueError,
     "plot_masking_tradeoff(): 'histories' must hold at least one run"),
    (lambda: BottleneckPlot(None, None), TypeError, "BottleneckPlot(): 'ax_kl' must be a matplotlib Axes"),
])
def test_bad_inputs_get_clear_messages(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_strength_explorer_steers_a_run_in_progress_and_redraws():
    from course_lib.bottleneck import BottleneckRun
    from course_lib.language import MarkovLanguage
    from course_lib.ui.bottleneck import StrengthExplorer

    lang = MarkovLanguage(vocab_size=8, seed=0)
    run = BottleneckRun(lang, strength=0.001, seed=0, device="cpu")
    panel = StrengthExplorer(run, entropy_rate=lang.entropy_rate, unigram_entropy=lang.unigram_entropy, more_steps=4)
    slider = panel.sliders["strength"]
    assert "strength-slider" in slider._dom_classes and run.step == 0      # nothing trains by itself
    for value in (10 ** slider.min, 10 ** slider.max):                     # the slider's extremes
        slider.value = value
        assert run.strength == pytest.approx(value)
    frames = panel.view.frames
    panel.train(6, on_step=lambda r: setattr(slider, "value", 0.5) if r.step == 3 else None)
    assert run.step == 6 and run.strength == pytest.approx(0.5)
    assert panel.view.frames > frames and "step 6" in panel.status.value
    panel.more.click()                                                      # the button trains more_steps
    assert run.step == 10
