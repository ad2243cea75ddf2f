"""Lesson form, size and opening (the course's lesson rules 1 and 7), read from the committed notebooks
without executing them: a lesson is about 30-45 minutes of class, so at most about 1,500 words of prose
and about 12 code cells, and it opens with the question its experiment answers."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# "About 1,500 words" and "about 12 code cells", with the tolerance stated: up to 100 words (under 7%)
# and 2 code cells over the target pass; more means the lesson needs cutting or splitting in two.
MAX_WORDS = 1_600
MAX_CODE_CELLS = 14


def prose_words(source):
    """Words of prose in one markdown cell's source.

    A word is a whitespace-separated token with at least one letter or digit, so a formula's pieces
    count ($r^2$, "=" does not) but table rules and bullets ("|---|", "-") do not. Fenced code blocks
    and URLs are not prose and are dropped first.

    Example:
        >>> prose_words("**Predict.** Is $r^2$ = 4? | a |\\n```\\nx = 1\\n```\\nsee https://arxiv.org/abs/1506.01186")
        6
    """
    source = re.sub(r"```.*?```", " ", source, flags=re.DOTALL)
    source = re.sub(r"https?://\S+", " ", source)
    return sum(1 for token in source.split() if re.search(r"[^\W_]", token))


def lesson_size(path):
    """(words of markdown prose, code cells the learner works through, check cells) of one notebook.

    Check cells (tag ``check``) are collapsed summaries of the claims the text makes: the learner does
    not read or step through them, so they are counted apart and not held to the code-cell limit."""
    cells = json.loads(path.read_text())["cells"]
    words = sum(prose_words("".join(c["source"])) for c in cells if c["cell_type"] == "markdown")
    code = [c for c in cells if c["cell_type"] == "code"]
    checks = sum("check" in c.get("metadata", {}).get("tags", []) for c in code)
    return words, len(code) - checks, checks


def test_the_word_count_reads_prose_only():
    # Counted by hand: 6 prose words (A, title, a, b, one, two); the heading mark, the table rule, the bullet, the code block and the URL add nothing.
    text = "# A title\n\n| a | b |\n|---|---|\n- one two\n```python\nx = [1, 2, 3]\n```\nhttps://arxiv.org/abs/1"
    assert prose_words(text) == 6
    assert prose_words("") == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_fits_one_class(path):
    words, code, checks = lesson_size(path)
    print(f"{path.name}: {words} words of prose, {code} code cells (+{checks} check cells)")
    assert words <= MAX_WORDS, (f"{path.name} has {words} words of prose; a lesson has at most about 1,500 "
                                f"(limit {MAX_WORDS}): cut repetition and asides, or split it into two lessons")
    assert code <= MAX_CODE_CELLS, (f"{path.name} has {code} code cells besides its checks; a lesson has about 12 "
                                    f"(limit {MAX_CODE_CELLS})")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_opens_with_its_question(path):
    first = json.loads(path.read_text())["cells"][0]
    assert first["cell_type"] == "markdown", f"{path.name} opens with a code cell, not with its question"
    text = "".join(first["source"])
    assert text.lstrip().startswith("# "), f"{path.name}'s first cell does not start with the lesson's title"
    # A question: a sentence of at least five words that ends in "?" (a bare "Why?" is not yet a question to answer).
    sentences = re.split(r"(?<=[.!?:])\s+", re.sub(r"[*_`]", "", text))
    questions = [s for s in sentences if s.rstrip().endswith("?") and len(s.split()) >= 5]
    assert questions, f"{path.name}'s first cell asks no question; rule 1: open with the question the lesson answers"
