"""Width sweeps: how fast the empirical (operator) NTK approaches its infinite-width limit.

:func:`width_sweep` measures the relative Frobenius error of the empirical kernel of
``net.finite(width)`` against the analytic kernel over widths and seeds, with the fitted slope of
log error vs log width (theory: ``-1/2``; Jacot et al. 2018, Thm. 1; Gan et al., arXiv
2503.11029, for operator kernels), top-eigenvalue errors and decay exponents.

Finished runs are written to a JSON file as they come. The file records a SHA-256 of everything
that determines a run (the network, the operator, the points, the quadrature weights, ``top_k``),
so an interrupted sweep resumes with the same configuration, and a different configuration is
refused instead of mixing or overwriting records.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._progress import progress_bar
from .empirical import empirical_ntk
from .networks import MLP, check_points
from .operator_kernels import operator_kernel
from .operators import BoundOperator, Operator
from .spectra import spectrum

__all__ = ["SweepFileError", "SweepResult", "fit_power_law", "width_sweep"]


class SweepFileError(ValueError):
    """The sweep's JSON file holds another configuration, is not a sweep file, or is a folder."""


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Slope and its standard error of ``log y`` vs ``log x`` (ordinary least squares)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    xm = lx - lx.mean()
    slope = float(np.dot(xm, ly - ly.mean()) / np.dot(xm, xm))
    resid = ly - ly.mean() - slope * xm
    dof = max(lx.size - 2, 1)
    return slope, float(math.sqrt(np.dot(resid, resid) / dof / np.dot(xm, xm)))


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`width_sweep`.

    Attributes:
        widths: the widths, ascending.
        errors: ``(len(widths), len(seeds))`` relative Frobenius errors.
        mean_error, std_error: over seeds, per width.
        slope, slope_stderr: fit of ``log mean_error`` vs ``log width`` (theory -1/2).
        eig_errors: ``(len(widths), len(seeds), top_k)`` relative errors of top eigenvalues.
        alpha_empirical: ``(len(widths), len(seeds))`` decay exponents of the empirical kernels.
        alpha_analytic: decay exponent of the analytic kernel (with its standard error).
        records: the raw per-run records (what the JSON file holds).
    """

    widths: np.ndarray
    errors: np.ndarray
    mean_error: np.ndarray
    std_error: np.ndarray
    slope: float
    slope_stderr: float
    eig_errors: np.ndarray
    alpha_empirical: np.ndarray
    alpha_analytic: tuple[float, float]
    records: list = field(repr=False)

    def table(self) -> str:
        lines = [f"{'width':>7} {'rel. error':>12} {'± std':>9} {'top-λ err':>10} {'α_emp':>8}"]
        for i, w in enumerate(self.widths):
            lines.append(
                f"{w:>7d} {self.mean_error[i]:>12.4e} {self.std_error[i]:>9.2e} "
                f"{np.nanmean(self.eig_errors[i, :, 0]):>10.3e} {np.nanmean(self.alpha_empirical[i]):>8.3f}"
            )
        lines.append(
            f"slope of log error vs log width: {self.slope:.3f} ± {self.slope_stderr:.3f} "
            f"(theory -0.5); analytic α = {self.alpha_analytic[0]:.3f} ± {self.alpha_analytic[1]:.3f}"
        )
        return "\n".join(lines)


def configuration(
    net: MLP, x: np.ndarray, operator, weights: np.ndarray, top_k: int
) -> tuple[dict, str]:
    """A readable summary and the SHA-256 of everything that determines a sweep's records."""
    summary = {
        "net": repr(net),
        "activation": net.act.source or net.act.name,
        "operator": repr(operator),
        "n": int(x.shape[0]),
        "dim": int(x.shape[1]),
        "top_k": int(top_k),
    }
    h = hashlib.sha256()
    h.update(json.dumps(summary, sort_keys=True).encode())
    if net.act.expr is not None:
        h.update(str(net.act.expr).encode())
    h.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(weights, dtype=np.float64).tobytes())
    if isinstance(operator, BoundOperator):
        for name, vals in operator.values:
            h.update(name.encode())
            h.update(np.ascontiguousarray(vals, dtype=np.float64).tobytes())
    return summary, h.hexdigest()


def _load(path: Path, digest: str, summary: dict) -> list[dict]:
    if path.is_dir():
        raise SweepFileError(f"out={str(path)!r} is a folder; pass a file name such as sweep.json.")
    if not path.exists():
        return []
    try:
        saved = json.loads(path.read_text())
        records, saved_hash = saved["records"], saved["config_hash"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise SweepFileError(
            f"{path} is not a width-sweep file written by ntk_theory (or it was cut short: "
            f"{type(err).__name__}: {err}). Move it away or pass another out=; nothing was overwritten."
        ) from None
    if saved_hash != digest:
        old = saved.get("config", {})
        diff = sorted(k for k in set(old) | set(summary) if old.get(k) != summary.get(k))
        what = f"differing in {', '.join(diff)}" if diff else "with other points or weights"
        raise SweepFileError(
            f"{path} holds a sweep of another configuration ({what}); its records were kept. "
            "Pass another out= (or delete the file) to start this sweep."
        )
    return records


def _save(path: Path, summary: dict, digest: str, records: list[dict]) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(
        json.dumps({"config": summary, "config_hash": digest, "records": records}, indent=1)
    )
    os.replace(tmp, path)


def width_sweep(
    net: MLP,
    x,
    widths: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    operator: Operator | BoundOperator | None = None,
    *,
    weights=None,
    top_k: int = 5,
    out: str | Path | None = None,
    progress: bool = True,
) -> SweepResult:
    """Empirical vs analytic (operator) NTK over widths and seeds.

    Args:
        net: the network.
        x: ``(n, d)`` points.
        widths: hidden widths to try (positive integers).
        seeds: initialization seeds per width (at least one).
        operator: ``T`` (kernel ``T_x T_{x'} Θ``); default the plain NTK.
        weights: quadrature weights for the spectra (default ``1/n``).
        top_k: number of top eigenvalues whose relative errors are recorded.
        out: JSON file; each finished run is saved immediately (atomically) and runs already in
            the file are skipped, so an interrupted sweep resumes. A file of another
            configuration raises :class:`SweepFileError` and is left untouched.
        progress: show a progress bar (stderr).

    Returns:
        :class:`SweepResult`.
    """
    x, _ = check_points(x)
    x = np.asarray(x)
    widths = sorted({int(w) for w in widths})
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"widths must be positive integers, got {widths}.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must contain at least one seed, e.g. seeds=range(3).")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
    w = np.full(x.shape[0], 1.0 / x.shape[0]) if weights is None else np.asarray(weights, float)
    summary, digest = configuration(net, x, operator, w, top_k)
    path = Path(out) if out is not None else None
    records = _load(path, digest, summary) if path is not None else []
    K = operator_kernel(net, operator, x) if operator is not None else net.ntk(x)
    K = np.asarray(K)
    s_an = spectrum(K, w)
    top = s_an.eigenvalues[:top_k]
    done = {(r["width"], r["seed"]) for r in records}
    todo = [(a, b) for a in widths for b in seeds if (a, b) not in done]
    with progress_bar(len(todo), "width sweep", progress) as update:
        for width, seed in todo:
            t0 = time.perf_counter()
            Ke = np.asarray(empirical_ntk(net, x, T=operator, width=width, seed=seed))
            err = float(np.linalg.norm(Ke - K) / np.linalg.norm(K))
            s_emp = spectrum(0.5 * (Ke + Ke.T), w)
            records.append(
                {
                    "width": width,
                    "seed": seed,
                    "error": err,
                    "eig_errors": (np.abs(s_emp.eigenvalues[:top_k] - top) / np.abs(top)).tolist(),
                    "alpha": s_emp.decay.alpha if s_emp.decay else float("nan"),
                    "seconds": time.perf_counter() - t0,
                }
            )
            if path is not None:
                _save(path, summary, digest, records)
            update()
    by = {(r["width"], r["seed"]): r for r in records}
    errors = np.array([[by[(a, b)]["error"] for b in seeds] for a in widths])
    eig = np.array([[by[(a, b)]["eig_errors"] for b in seeds] for a in widths])
    alpha = np.array([[by[(a, b)]["alpha"] for b in seeds] for a in widths])
    mean = errors.mean(axis=1)
    slope, se = fit_power_law(widths, mean) if len(widths) > 1 else (math.nan, math.nan)
    alpha_an = (s_an.decay.alpha, s_an.decay.stderr) if s_an.decay else (math.nan, math.nan)
    return SweepResult(
        np.array(widths), errors, mean, errors.std(axis=1), slope, se, eig, alpha, alpha_an, records
    )
