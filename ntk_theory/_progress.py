"""Progress bars for long computations: tqdm when it is installed, a plain stderr bar otherwise.

tqdm is an optional dependency (``ntk-theory[progress]``); without it, and whenever stderr is
not a terminal, a line per ~10 % is printed instead so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["progress_bar", "warn_slow"]


@contextmanager
def progress_bar(total: int, desc: str, enabled: bool = True) -> Iterator:
    """A context giving ``update(n=1)``; prints nothing if ``enabled`` is false or ``total ≤ 1``."""
    if not enabled or total <= 1:
        yield lambda n=1: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None and sys.stderr.isatty():
        with tqdm(total=total, desc=desc, leave=False, file=sys.stderr) as bar:
            yield bar.update
        return
    state = {"done": 0, "shown": -1, "t0": time.perf_counter()}

    def update(n: int = 1) -> None:
        state["done"] += n
        tenth = int(10 * state["done"] / total)
        if tenth > state["shown"]:
            state["shown"] = tenth
            elapsed = time.perf_counter() - state["t0"]
            print(f"{desc}: {state['done']}/{total} ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    yield update


def warn_slow(message: str, seconds: float, threshold: float = 60.0) -> None:
    """Print an estimate before a computation expected to take longer than ``threshold``."""
    if seconds > threshold:
        minutes = seconds / 60
        print(
            f"ntk_theory: {message} (estimated {minutes:.0f} min on this machine).",
            file=sys.stderr,
            flush=True,
        )
