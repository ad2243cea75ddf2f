"""The training lab's settings: what each may be, and the settings string that replays a run.

A lab's run is described by one short string (``"task=moons&lr=0.1&changes=300:lr=0.5"``), the
way TensorFlow Playground keeps its state in the page's address: copy it to share a run, paste it
to replay it (:meth:`course_lib.ui.lab.TrainingLab.apply_settings`), write one to prepare a demo
(:mod:`course_lib.ui.demos`). This module holds the one table that the constructor, the string and
scheduled changes are all checked against, and the parser; nothing here draws.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .._validation import SEED_MAX, Interval, Options, check_choice, check_relation, check_type

__all__ = ["DEFAULT_SETTINGS", "LAB_TASKS", "LIVE_SETTINGS", "MASKING_RULE", "MAX_SETTINGS_CHARS", "RESET_SETTINGS",
           "SETTING_RULES", "parse_settings"]

LAB_TASKS = ("spirals", "moons", "circles", "regression")
LIVE_SETTINGS = ("lr", "weight_decay", "l1", "dropout")            # change mid-run
RESET_SETTINGS = ("task", "optimizer", "width", "depth", "noise", "batch_size", "train_fraction", "n_samples", "seed")

# What each setting may be: the sliders' ranges (a run never uses a value its slider cannot show).
# The constructor, the settings string and scheduled changes are all checked against this table.
SETTING_RULES = {
    "task": Options(LAB_TASKS), "optimizer": Options(("adam", "adamw", "sgd", "momentum")),
    "lr": Interval(float, 1e-5, 10.0), "weight_decay": Interval(float, 0.0, 10.0), "l1": Interval(float, 0.0, 10.0),
    "dropout": Interval(float, 0.0, 0.9), "width": Interval(int, 1, 256), "depth": Interval(int, 0, 6),
    "noise": Interval(float, 0.0, 1.0), "batch_size": Interval(int, 1, 256),
    "train_fraction": Interval(float, 0.1, 0.9),
    "n_samples": Interval(int, 20, 100_000),          # no slider; 100,000 points still build in a second
    "seed": Interval(int, 0, SEED_MAX),
}
MASKING_RULE = Interval(float, 1e-3, 10.0)
MAX_SETTINGS_CHARS = 20_000   # a long session's changes fit; a pasted document does not

DEFAULT_SETTINGS = dict(task="spirals", optimizer="adam", lr=0.01, weight_decay=0.0, l1=0.0, dropout=0.0, width=32, depth=2, noise=0.2,
                 batch_size=32, train_fraction=0.5, n_samples=400, seed=0)


def parse_settings(text: str, *, live=LIVE_SETTINGS, where: str = "parse_settings") -> dict:
    """Read a lab settings string (``"task=moons&lr=0.1&changes=100:lr=0.01"``) into values.

    Each value is converted to its setting's type with a message that names the key, and
    checked against its slider's range; ``changes`` becomes a list of ``(step, name, value)``
    (names from ``live``; their steps and ranges are the lab's to check, it knows ``max_steps``).

    Args:
        text (str): ``key=value`` pairs joined by ``&``, at most ``MAX_SETTINGS_CHARS`` characters.
        live (tuple of str): the settings a change may name.
        where (str): the function named in messages.

    Returns:
        dict: the keys given, with their values (``masking`` as a float, unchecked).

    Example:
        >>> parse_settings("width=32&changes=40:lr=0.05")
        {'width': 32, 'changes': [(40, 'lr', 0.05)]}
        >>> parse_settings("width=32.0")
        Traceback (most recent call last):
        ...
        TypeError: parse_settings(): 'width' must be an int in [1, 256], got width='32.0' of type str
    """
    check_type("text", text, str, where=where)
    check_relation(len(text) <= MAX_SETTINGS_CHARS, f"'text' must be at most {MAX_SETTINGS_CHARS} characters",
                   where=where, **{"len(text)": len(text)})
    body = text.strip().lstrip("?#")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body))
    except ValueError:
        pairs = None                                  # a part without '=': reported below, never skipped
    check_relation(pairs is not None, "'text' must be key=value pairs joined by '&'", where=where,
                   text=text if len(text) <= 60 else text[:57] + "...")
    keys = [k for k, _ in pairs]
    unknown = sorted(set(keys) - set(DEFAULT_SETTINGS) - {"changes", "masking"})
    check_relation(not unknown, "the settings string has unknown keys", where=where, unknown=unknown)
    twice = sorted({k for k in keys if keys.count(k) > 1})
    check_relation(not twice, "each key may appear once in the settings string", where=where, repeated=twice)
    out: dict = {}
    for key, raw in pairs:
        if key == "changes":
            out[key] = [_parse_change(part, live, where) for part in filter(None, raw.split(";"))]
        elif key in ("task", "optimizer"):
            out[key] = raw
        else:
            rule = MASKING_RULE if key == "masking" else SETTING_RULES[key]
            out[key] = _convert(key, raw, rule, where)
            if key != "masking":
                rule.check(key, out[key], where=where)
    return out


def _convert(name: str, raw: str, rule: Interval, where: str):
    """``raw`` as the rule's number type, or the rule's own TypeError naming ``name`` and ``raw``."""
    try:
        return int(raw) if rule.kind is int else float(raw)
    except ValueError:
        rule.check(name, raw, where=where)        # a string: raises "'width' must be an int ..., got width='32.0'"
        raise


def _parse_change(part: str, live, where: str) -> tuple[int, str, float]:
    step, colon, assign = part.partition(":")
    name, eq, value = assign.partition("=")
    check_relation(bool(colon and eq), "each change must read step:name=value", where=where, change=part)
    check_choice("change", name, tuple(live), where=where)
    return (_convert("step", step, Interval(int, 1), where), name,
            _convert(name, value, SETTING_RULES.get(name, Interval(float)), where))
