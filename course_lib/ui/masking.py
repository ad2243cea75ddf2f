"""Figures of BERT and SpanBERT masking (notebook 06): which tokens were masked, replaced or kept.

Drawing only; the computing lives in :mod:`course_lib.masking`."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from .._validation import check_number, check_relation, check_tensor, check_type
from ..masking import MASK_KINDS, MaskedTokens

__all__ = ["MASK_COLORS", "plot_masked_tokens"]


# Colour-blind-safe (Okabe-Ito): what happened to a token. "none" is a pale box, so the eye
# goes to the masked positions first.
MASK_COLORS = {"none": "#eeeeee", "mask": "#0072B2", "random": "#E69F00", "keep": "#009E73"}


def _token_text(token: int) -> str:
    return f"t{token:02d}"


def plot_masked_tokens(tokens, examples: dict, ax: Axes | None = None, *, per_line: int = 16) -> Axes:
    """A sentence and how each masking scheme hides it, token by token, coloured by what
    happened: ``[M]`` (blue), a random token (orange), selected but kept (green), untouched (grey).

    Args:
        tokens (Tensor): the sentence, int64 ``(T,)``.
        examples (dict): ``name -> MaskedTokens`` for that sentence (each ``(T,)``), one block each.
        ax (Axes, optional): where to draw; None makes a figure sized to the text.
        per_line (int): tokens per line (>= 1). Default: 16.

    Returns:
        Axes (one text artist per token and row, axis off).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import torch
        >>> from course_lib.masking import mask_tokens
        >>> tokens = torch.arange(8)
        >>> ax = plot_masked_tokens(tokens, {"MLM": mask_tokens(tokens, 32, 32, mask_prob=0.5, seed=0)})
        >>> len(ax.texts)   # 8 tokens x (sentence + 1 scheme) + 2 row names
        18
    """
    where = "plot_masked_tokens"
    check_tensor("tokens", tokens, where=where, ndim=1, floating=False, shape_hint="(T,)")
    check_type("examples", examples, dict, where=where, expected="dict name -> MaskedTokens")
    check_number("per_line", per_line, where=where, low=1, integer=True)
    for name, m in examples.items():
        check_type(f"examples[{name!r}]", m, MaskedTokens, where=where)
        check_relation(tuple(m.inputs.shape) == tuple(tokens.shape), "each example must have the shape of 'tokens'",
                       where=where, **{"tokens.shape": tuple(tokens.shape), f"{name}.shape": tuple(m.inputs.shape)})
    T = tokens.shape[0]
    lines = max(1, math.ceil(T / per_line))
    rows = [("sentence", tokens.tolist(), [0] * T)]
    rows += [(name, m.inputs.tolist(), m.kinds.tolist()) for name, m in examples.items()]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.5 * min(T, per_line), 0.45 * len(rows) * (lines + 0.8) + 0.4),
                             layout="constrained")
    check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")
    block = lines + 0.8  # a block per row, a gap between blocks
    for r, (name, ids, kinds) in enumerate(rows):
        top = -r * block
        ax.text(-0.8, top, name, ha="right", va="center", fontsize="small", fontweight="bold")
        for i, (tok, kind) in enumerate(zip(ids, kinds)):
            label = MASK_KINDS[kind]
            text = "[M]" if label == "mask" else _token_text(tok)
            ax.text(i % per_line, top - i // per_line, text, ha="center", va="center", family="monospace",
                    fontsize="small", color="white" if label == "mask" else "black",
                    bbox=dict(boxstyle="round,pad=0.25", fc=MASK_COLORS[label], ec="none"))
    ax.set_xlim(-0.8 - 0.25 * max(len(r[0]) for r in rows), min(T, per_line) - 0.5)
    ax.set_ylim(-(len(rows) - 1) * block - lines + 0.4, 0.6)
    ax.axis("off")
    handles = [Patch(fc=MASK_COLORS[k], label=text) for k, text in
               (("mask", "[MASK]"), ("random", "random token"), ("keep", "selected, kept"), ("none", "not selected"))]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize="small", frameon=False)
    return ax
