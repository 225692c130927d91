"""Run the ``paper_figures`` scripts, one after another or in pinned worker processes.

Most of a quick figure's time is tracing and XLA compilation, which run on one core. Separate
worker processes therefore use the cores one process leaves idle, but only when each worker is
pinned to its own cores: unpinned JAX processes on a 2-core machine slow each other down by
about 40 %, pinned ones much less (measured with two quick figures side by side). A worker
process inherits the CPU affinity of the thread that starts it: one thread per worker pins
itself, starts the worker and feeds it figures, while the main thread, pinned to the first
group of cores, runs figures itself (Linux; elsewhere nothing is pinned).

Every figure runs in isolation: an exception is reported with its traceback, and a worker that
dies (killed for memory, say) loses only the figure it was running. Ctrl-C stops every worker
before :func:`run_parallel` returns (the workers ignore SIGINT and are terminated by their
managers), and since each figure writes its files to temporary names and renames them when
complete (:func:`paper_figures._common.save`), an interrupted figure leaves no partial file.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FigureResult:
    """How one figure went.

    Attributes:
        name: figure name (``paper_figures/fig_<name>.py``).
        files: paths written (JSON, PNG, PDF); empty when it failed.
        seconds: wall time of the figure's ``main``.
        error: the traceback text when it failed, else ``None``.
    """

    name: str
    files: tuple[str, ...]
    seconds: float
    error: str | None = None


def run_figure(name: str, out: str | Path, quick: bool) -> FigureResult:
    """Run ``paper_figures.fig_<name>.main(out, quick)``, catching any exception."""
    t0 = time.perf_counter()
    try:
        paths = importlib.import_module(f"paper_figures.fig_{name}").main(out, quick=quick)
    except Exception:  # one broken figure must not lose the others
        return FigureResult(name, (), time.perf_counter() - t0, traceback.format_exc())
    return FigureResult(name, tuple(str(p) for p in paths.values()), time.perf_counter() - t0)


def up_to_date(name: str, out: str | Path, quick: bool) -> bool:
    """Whether ``name``'s PNG, PDF and JSON in ``out`` are complete, of the same size setting
    (``quick``), and newer than the figure's script and every source file of ntk_theory."""
    import json

    import ntk_theory

    out = Path(out)
    files = [out / f"{name}.{ext}" for ext in ("json", "png", "pdf")]
    if not all(f.is_file() and f.stat().st_size > 0 for f in files):
        return False
    try:
        if json.loads(files[0].read_text()).get("quick") is not bool(quick):
            return False
    except (json.JSONDecodeError, OSError, AttributeError):
        return False
    here = Path(__file__).parent
    sources = [
        here / f"fig_{name}.py",
        here / "_common.py",
        *Path(ntk_theory.__file__).parent.glob("*.py"),
    ]
    newest_input = max(p.stat().st_mtime for p in sources if p.exists())
    return min(f.stat().st_mtime for f in files) >= newest_input


def use_compilation_cache(path: str | Path) -> None:
    """Keep compiled XLA programs in ``path`` (JAX's persistent compilation cache), for this
    process and the workers it starts.

    A second run of the figures then skips most compilation (quick figures on 2 cores: about 40 s
    instead of 60 s). Entries are keyed by the program, the JAX version and the device, so a
    stale entry is never used; deleting the folder is always safe.
    """
    import jax

    settings = {
        "jax_compilation_cache_dir": str(Path(path).expanduser()),
        "jax_persistent_cache_min_compile_time_secs": 0.05,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    for key, value in settings.items():
        jax.config.update(key, value)
        os.environ[key.upper()] = str(value)  # read by the workers' JAX at import


def run_serial(names, out, quick: bool, report) -> list[FigureResult]:
    """Run the figures in this process, calling ``report(i, result)`` after each."""
    results = []
    for i, name in enumerate(names, start=1):
        print(f"[{i}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        results.append(run_figure(name, out, quick))
        report(i, results[-1])
    return results


def cpu_groups(jobs: int) -> list[set[int] | None]:
    """Split this process's CPUs into ``jobs`` disjoint groups (``None``: pinning unsupported)."""
    if not hasattr(os, "sched_getaffinity"):
        return [None] * jobs
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < jobs:
        return [None] * jobs
    size = len(cpus) // jobs
    return [set(cpus[k * size : (k + 1) * size]) for k in range(jobs)]


def run_parallel(names, out, quick: bool, jobs: int, report) -> list[FigureResult]:
    """Run the figures in ``jobs`` pinned worker processes; this process only manages them.

    Each worker takes the next figure from ``names`` as soon as it is free;
    ``report(i, result)`` is called as each one finishes. On ``KeyboardInterrupt`` every worker
    is terminated and joined before the interrupt propagates. (This process used to run figures
    too, saving a worker's ~8 s start; interrupted inside XLA it could die of SIGSEGV before
    stopping its workers, so it no longer computes anything.)
    """
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in names:
        pending.put(name)
    results: list[FigureResult] = []
    lock = threading.Lock()
    stop = threading.Event()

    def finished(result: FigureResult) -> None:
        with lock:
            if stop.is_set() and result.error is not None:
                return  # killed by the interrupt: not a failure to report
            results.append(result)
            report(len(results), result)

    threads = [
        threading.Thread(target=_manage, args=(cpus, str(out), quick, pending, finished, stop))
        for cpus in cpu_groups(jobs)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.2)  # short waits: Ctrl-C is delivered between them
    except KeyboardInterrupt:
        stop.set()
        _drain_all(pending)
        for thread in threads:
            thread.join()
        raise
    return results


def _drain_all(pending: queue.SimpleQueue) -> None:
    for _ in _drain(pending):
        pass


def _drain(pending: queue.SimpleQueue):
    """Names from ``pending`` until it is empty."""
    while True:
        try:
            yield pending.get_nowait()
        except queue.Empty:
            return


@contextlib.contextmanager
def _pinned(cpus: set[int] | None):
    """Restrict the calling thread (and the processes it starts) to ``cpus``."""
    if cpus is None:
        yield
        return
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, own)


def _manage(cpus, out: str, quick: bool, pending: queue.SimpleQueue, finished, stop) -> None:
    """Thread body: feed figures to one pinned worker process until none are left (or ``stop``)."""
    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with _pinned(cpus):
        worker = None
        try:
            for name in _drain(pending):
                if stop.is_set():
                    break
                if worker is None:
                    worker = _Worker(context, out, quick, stop)
                print(f"  {name} started", file=sys.stderr, flush=True)
                result = worker.run(name)
                if worker.dead:  # the next figure gets a fresh worker
                    worker.close()
                    worker = None
                finished(result)
        finally:
            if worker is not None:
                worker.close()


class _Worker:
    """A spawned process that runs figures sent over a pipe (``None`` stops it); it inherits
    the CPU affinity of the thread that creates it and ignores SIGINT (its manager terminates it
    when the run is interrupted)."""

    def __init__(self, context, out: str, quick: bool, stop: threading.Event):
        self.dead = False
        self.stop = stop
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, out, quick), daemon=True)
        self.process.start()
        child.close()

    def run(self, name: str) -> FigureResult:
        started = time.perf_counter()
        try:
            self.conn.send(name)
            while not self.conn.poll(0.2):
                if self.stop.is_set():
                    self.process.terminate()
                    raise EOFError
            return self.conn.recv()
        except (EOFError, OSError):
            self.dead = True
            self.process.join(timeout=5)
            return FigureResult(
                name,
                (),
                time.perf_counter() - started,
                _death(name, self.process.exitcode, self.stop.is_set()),
            )

    def close(self) -> None:
        if self.process.is_alive():
            try:
                if self.stop.is_set():
                    self.process.terminate()
                else:
                    self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5)
        self.conn.close()


def _death(name: str, code, interrupted: bool) -> str:
    """Why a worker process ended, in words."""
    if interrupted:
        return f"{name!r} was interrupted (its worker was stopped)."
    if code is None:
        cause = "did not report back"
    elif code == -signal.SIGKILL:
        cause = "was killed (SIGKILL: usually the system ran out of memory)"
    elif code in (-signal.SIGTERM, -signal.SIGINT):
        cause = f"was stopped by signal {-code}"
    elif code < 0:
        cause = f"died of signal {-code}"
    else:
        cause = f"exited with code {code}"
    return (
        f"the worker process running {name!r} {cause}. "
        "Rerun this figure alone with `--only NAME --jobs 1`."
    )


def _serve(conn, out: str, quick: bool) -> None:
    """Worker loop: run each figure name received, send back its :class:`FigureResult`.

    The figure's progress lines (stdout and stderr) carry its name, since they interleave with
    those of the other workers. SIGINT is ignored: the parent decides when to stop.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while (name := conn.recv()) is not None:
        sys.stdout = _Prefixed(sys.__stdout__, f"[{name}] ")
        sys.stderr = _Prefixed(sys.__stderr__, f"[{name}] ")
        conn.send(run_figure(name, out, quick))


class _Prefixed(io.TextIOBase):
    """A text stream that writes each line to ``stream`` with ``prefix`` in front."""

    def __init__(self, stream, prefix: str):
        self._stream, self._prefix, self._line_start = stream, prefix, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self._line_start:
                self._stream.write(self._prefix)
            self._stream.write(piece)
            self._line_start = piece.endswith("\n")
        self._stream.flush()
        return len(text)
