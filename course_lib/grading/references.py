"""Reference results of the grading tests that do not depend on the submission, computed once.

Some grading tests compare the student's answer with trainings that are the same for every
student: the recorded runs an ``is_overfitting`` is tried on, backprop's accuracy that a chosen
number of chunks is compared with. Decorated with :func:`reference`, such a helper runs once per
process and its result is kept. The batch grader's warm process (the zygote, see zygote.py) imports
the grading tests once, runs every helper with the arguments listed in ``warm=``, and forgets the
test files; each grading child it forks then starts with those results in memory (copy-on-write:
nothing a child does reaches the zygote or another child). A fresh grading process computes them
itself when a test first asks: same code, same seeds, one CPU thread, so the same numbers.

Only results that cannot depend on an answer belong here (never a training with the student's
value): the cache is visible to the student's code in the grading process.

Example:
    >>> @reference(warm=[(2,), (3,)])
    ... def square(k):
    ...     return k * k
    >>> square(3), square(3)
    (9, 9)
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["load_results", "reference", "rewrite_once", "save_results", "use_rewritten", "warm_references"]

_RESULTS: dict = {}  # (file key, qualified name, args) -> result
_WARM: list = []  # (wrapped function, [args, ...]) registered by the modules imported so far
_REWRITTEN: dict = {}  # source hash -> the test file's code with pytest's assertion rewriting applied


def _file_key(fn: Callable) -> str:
    """``tests/test_ex09.py``: the same key whether the test file is imported from the zygote's copy or
    from a child's copy of the grading folder."""
    path = Path(fn.__code__.co_filename)
    return f"{path.parent.name}/{path.name}"


def reference(fn: Callable | None = None, *, warm: list | None = None, key: str | None = None) -> Callable:
    """Keep the result of ``fn(*args)`` for the rest of the process (a copy is returned each time, so
    a test that changes it in place cannot change what the next test gets).

    Args:
        fn: a function of hashable positional arguments whose result depends on nothing else
            (fixed seeds, inputs built inside).
        warm (list of tuples): the argument tuples the batch grader computes before forking grading
            children (``[()]`` for a function of no arguments). Only arguments whose result is no
            test's expected answer: a run the student's answer must predict is computed by the
            grading child itself, when its test asks. Default: none.
        key (str, optional): share the results with every helper of the same ``key`` (a shipped and a
            hidden test file that train the same runs; their functions must compute the same thing).
            Default: None, results of this function only.

    Example:
        ``@reference(warm=[(1,), (2,), (4,), (8,)])`` on ``def _accuracy(K): ...`` in a grading test.
    """
    if fn is None:
        return functools.partial(reference, warm=warm, key=key)
    key = ("shared", key) if key else (_file_key(fn), fn.__qualname__)

    @functools.wraps(fn)
    def wrapper(*args):
        k = key + (args,)
        if k not in _RESULTS:
            _RESULTS[k] = fn(*args)
        return copy.deepcopy(_RESULTS[k])

    wrapper.reference_key = key
    if warm:
        _WARM.append((wrapper, [tuple(a) for a in warm]))
    return wrapper


def warm_references(folders: list, share: tuple = (0, 1)) -> dict:
    """Import every ``test_*.py`` of ``folders`` under a private name, run each :func:`reference` helper
    with its ``warm`` arguments, then drop the modules (the results stay). A module or helper that fails
    is skipped: the grading child computes it then, or reports the error in its own test.

    Args:
        folders (list of paths): the grading tests' folders.
        share (tuple): ``(k, n)``: compute only every n-th result from the k-th (the batch grader's n
            zygotes split the work, then exchange results with :func:`save_results` and :func:`load_results`).
            Default: ``(0, 1)``, all of them.

    Returns:
        ``{"computed": n, "failed": [...], "seconds": s, "keys": [...]}`` (``keys``: the results computed here).
    """
    t0, failed, n = time.perf_counter(), [], 0
    for folder in folders:
        for path in sorted(Path(folder).glob("test_*.py")):
            name = f"_course_warm_{path.parent.name}_{path.stem}"
            try:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
            except Exception as e:  # noqa: BLE001 - best effort: the child imports (and reports) it itself
                failed.append(f"{path.name}: {e!r}")
            finally:
                sys.modules.pop(name, None)
    jobs = {}  # one job per result: a shared key or a test file imported twice asks for it twice
    for wrapper, arg_list in _WARM:
        for args in arg_list:
            jobs.setdefault(wrapper.reference_key + (args,), (wrapper, args))
    k, every = share
    keys = list(jobs)[k::every]
    for key in keys:
        wrapper, args = jobs[key]
        try:
            wrapper(*args)
            n += 1
        except Exception as e:  # noqa: BLE001 - idem
            failed.append(f"{wrapper.__qualname__}{args}: {e!r}")
    _WARM.clear()
    return {"computed": n, "failed": failed, "seconds": round(time.perf_counter() - t0, 2),
            "keys": [key for key in keys if key in _RESULTS]}


def save_results(path, keys: list) -> int:
    """Pickle the results of ``keys`` to ``path`` (for the other zygotes of a batch). Returns how many:
    a result that cannot be pickled is left out (the children that need it compute it themselves)."""
    out = {}
    for key in keys:
        try:
            out[key] = pickle.dumps(_RESULTS[key])
        except Exception:  # noqa: BLE001, S112 - best effort
            continue
    Path(path).write_bytes(pickle.dumps(out))
    return len(out)


def load_results(paths: list) -> int:
    """Add the results pickled by :func:`save_results` in ``paths`` (written by this batch's other zygotes,
    before any submission's code ran), then delete the files. Returns how many results were added."""
    n = 0
    for path in paths:
        try:
            for key, blob in pickle.loads(Path(path).read_bytes()).items():
                _RESULTS.setdefault(key, pickle.loads(blob))  # written by the grader's own zygotes
                n += 1
        except Exception:  # noqa: BLE001, S112 - best effort: the children compute what is missing
            continue
        finally:
            Path(path).unlink(missing_ok=True)
    return n


def rewrite_once(folders: list) -> int:
    """pytest rewrites the asserts of every test file it imports (for "expected vs got" messages): about a
    tenth of a grading child's CPU time. Done here once, before forking: the child's pytest then gets
    the same code (see :func:`use_rewritten`). Returns the number of files rewritten."""
    from _pytest.assertion import rewrite

    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            try:
                source_hash, code = rewrite._rewrite_test(path, None)  # None: the default ini (no pass hook)
            except Exception:  # noqa: BLE001, S112 - best effort: pytest rewrites (and reports) it itself
                continue
            _REWRITTEN[source_hash] = code
    return len(_REWRITTEN)


def use_rewritten() -> None:
    """In a grading child: pytest takes a test file's rewritten code from :func:`rewrite_once` when the
    file's bytes are the same (its source hash), with the child's own path as the code's file name."""
    if not _REWRITTEN:
        return
    import _imp
    from importlib import util

    from _pytest.assertion import rewrite

    original = rewrite._rewrite_test

    def rewrite_test(fn, config):
        code = _REWRITTEN.get(util.source_hash(Path(fn).read_bytes()))
        if code is None or getattr(config, "getini", None) and config.getini("enable_assertion_pass_hook"):
            return original(fn, config)
        _imp._fix_co_filename(code, str(fn))
        return util.source_hash(Path(fn).read_bytes()), code

    rewrite._rewrite_test = rewrite_test
