"""Eigenvalue decay of Θ against ``T_x T_x' Θ`` on an interval, a square and the sphere.

The central question of Gan, Li, Lin, Shi (arXiv 2503.11029): does a differential operator in
the loss make the NTK's eigenvalues decay faster (stronger spectral bias)? For each domain and
activation we compute the integral-operator (Nyström) eigenvalues of the infinite-width kernel
with and without the operator, on the same quadrature, and fit ``λ_i ≈ C i^{-α}``.

Operators: identity, ``∂_x``, and the second-order one of each domain (``∂_xx`` on [0, 1],
``-Δ`` on [0, 1]², ``-Δ_S`` (Laplace–Beltrami) on S²). Activations: erf (smooth) and ReLU⁴
(``u ∈ C³``; the tool allows first-order operators for it — second order raises
``SmoothnessError``, recorded in the JSON as skipped).

Run: ``uv run python -m paper_figures.fig_decay_operators [out_dir] [--quick]``.
"""

from __future__ import annotations

import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import ntk_theory as nt
from paper_figures._common import fit_label, fit_record, save, script

NAME = "decay_operators"
DEPTH, W_STD, B_STD = 2, 1.0, 1.0
ACTIVATIONS = ("erf", "relu4")


def _domains(quick: bool):
    n_int, n_sq, n_sph = (60, 8, 150) if quick else (400, 24, 800)
    minus_lb = -1 * nt.laplace_beltrami(("x", "y", "z"))
    return [
        (
            "interval [0, 1]",
            nt.interval(0.0, 1.0, n_int),
            [
                ("Θ", nt.identity(("x",))),
                ("∂_x ∂_x' Θ", nt.Operator.parse("u_x", ("x",))),
                ("∂²_x ∂²_x' Θ", nt.Operator.parse("u_xx", ("x",))),
            ],
        ),
        (
            "square [0, 1]²",
            nt.box((0.0, 0.0), (1.0, 1.0), n_sq),
            [
                ("Θ", nt.identity(("x", "y"))),
                ("∂_x ∂_x' Θ", nt.Operator.parse("u_x", ("x", "y"))),
                ("Δ_x Δ_x' Θ", nt.Operator.parse("-(u_xx + u_yy)", ("x", "y"))),
            ],
        ),
        (
            "sphere S²",
            nt.sphere(3, n_sph, seed=0),
            [
                ("Θ", nt.identity(("x", "y", "z"))),
                ("∂_x ∂_x' Θ", nt.Operator.parse("u_x", ("x", "y", "z"))),
                ("Δ_S Δ_S' Θ", minus_lb),
            ],
        ),
    ]


def compute(quick: bool = False, progress: bool = True) -> dict:
    """Spectra and fitted exponents for every (activation, domain, operator)."""
    results = []
    depth = 1 if quick else DEPTH  # quick: one hidden layer compiles in a fraction of the time
    for act in ACTIVATIONS:
        net = nt.MLP(depth, act, W_std=W_STD, b_std=B_STD)
        for dom_name, q, ops in _domains(quick):
            for label, op in ops:
                t0 = time.perf_counter()
                entry = {"activation": act, "domain": dom_name, "operator": label, "n": q.n}
                try:
                    K = np.asarray(nt.operator_kernel(net, op, q.points))
                except nt.SmoothnessError as err:
                    entry["skipped"] = str(err).splitlines()[0]
                    results.append(entry)
                    continue
                s = nt.spectrum(K, q.weights)
                keep = s.eigenvalues[s.eigenvalues > s.floor]
                entry.update(
                    eigenvalues=keep,
                    floor=s.floor,
                    fit=fit_record(s.decay),
                    condition_number_window=s.condition_number_window,
                    effective_rank=s.effective_rank,
                    seconds=time.perf_counter() - t0,
                )
                results.append(entry)
                if progress:
                    print(
                        f"  {act:6s} {dom_name:16s} {label:14s} {s.decay} "
                        f"({entry['seconds']:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    return {
        "network": f"MLP(depth={depth}, W_std={W_STD}, b_std={B_STD}, ntk parameterization)",
        "method": "Nyström eigenvalues of W^1/2 K W^1/2 (Gauss–Legendre on interval/square, "
        "uniform samples with weights 1/N on S²); fit of log λ_i vs log i, window from "
        "ntk_theory.fit_decay",
        "results": results,
    }


def plot(data: dict):
    domains = list(dict.fromkeys(r["domain"] for r in data["results"]))
    fig, axes = plt.subplots(
        len(ACTIVATIONS), len(domains), figsize=(4.0 * len(domains), 3.2 * len(ACTIVATIONS))
    )
    for i, act in enumerate(ACTIVATIONS):
        for j, dom in enumerate(domains):
            ax = axes[i, j]
            for r in data["results"]:
                if r["activation"] != act or r["domain"] != dom or "skipped" in r:
                    continue
                lam = np.asarray(r["eigenvalues"])
                idx = np.arange(1, lam.size + 1)
                fit = r["fit"]
                (line,) = ax.loglog(idx, lam / lam[0], lw=1.3, label=fit_label(r["operator"], fit))
                if fit:
                    a, b = fit["window"]
                    ii = np.arange(a, b + 1)
                    ax.loglog(
                        ii,
                        np.exp(fit["log_c"]) * ii ** (-fit["alpha"]) / lam[0],
                        ls=":",
                        color=line.get_color(),
                        lw=1.0,
                    )
            skipped = [
                r["operator"]
                for r in data["results"]
                if r["activation"] == act and r["domain"] == dom and "skipped" in r
            ]
            title = f"{act}, {dom}"
            if skipped:
                title += f"\n(not defined for {act}: {', '.join(skipped)})"
            ax.set_title(title)
            ax.set_xlabel("eigenvalue index i")
            ax.set_ylabel("λ_i / λ_1 (dimensionless)")
            ax.legend(loc="lower left")
    fig.suptitle(
        f"Integral-operator eigenvalues of Θ and T_x T_x' Θ, {data['network']} "
        "(dotted: fitted i^-α)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``decay_operators.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
