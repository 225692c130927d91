"""Mercer spectra on the sphere S² by Funk–Hecke, with and without a Laplace–Beltrami operator.

Three panels:

(a) Eigenvalue-decay anchors (Bietti & Bach, arXiv 2009.14397): on ``S^{d-1}`` the ReLU NTK of
    any depth has ``μ_k ~ k^{-d}``, the ReLU NNGP ``k^{-d-2}``, the ReLU² NNGP ``k^{-d-4}``.
(b) ``T = -Δ_S`` multiplies ``μ_k`` by ``(k(k+1))²``: the degree exponent drops by exactly 4
    (slower decay) for ReLU³; erf stays faster than any power.
(c) The same spectra from data: Nyström eigenvalues of ``Θ`` and of ``Δ_S Δ_S' Θ``
    (``operator_kernel`` with ``laplace_beltrami``) on uniform samples, against the exact
    Funk–Hecke eigenvalues repeated by multiplicity.

Run: ``uv run python -m paper_figures.fig_sphere_spectra [out_dir] [--quick]``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import ntk_theory as nt
from paper_figures._common import fit_record, save, script

NAME = "sphere_spectra"
DIM = 3


def compute(quick: bool = False) -> dict:
    K = 60 if quick else 200
    window = (10, K)
    anchors = []
    for label, net, get, theory in [
        ("ReLU NTK, 1 hidden layer", nt.MLP(1, "relu", b_std=1.0), "ntk", DIM),
        ("ReLU NTK, 2 hidden layers", nt.MLP(2, "relu", b_std=1.0), "ntk", DIM),
        ("ReLU NTK, 4 hidden layers", nt.MLP(4, "relu", b_std=1.0), "ntk", DIM),
        ("ReLU NNGP, 1 hidden layer", nt.MLP(1, "relu", b_std=1.0), "nngp", DIM + 2),
        ("ReLU² NNGP, 1 hidden layer", nt.MLP(1, "relu2", b_std=1.0), "nngp", DIM + 4),
    ]:
        s = nt.sphere_spectrum(net, DIM, K, get=get, degree_window=window)
        anchors.append(
            {
                "label": label,
                "theory_exponent": theory,
                "degrees": s.degrees,
                "mu": s.eigenvalues,
                "floor": s.floor,
                "fit": fit_record(s.degree_decay),
            }
        )
    operators = []
    for label, net, theory in [
        ("ReLU³ NTK", nt.MLP(1, "relu3", b_std=1.0), DIM + 2 * 3 - 2),
        ("erf NTK", nt.MLP(2, "erf", W_std=1.5, b_std=0.5), None),
    ]:
        plain = nt.sphere_spectrum(net, DIM, K)
        # Degrees where μ_k itself is above the quadrature floor; the operator factor
        # (k(k+1))² would otherwise amplify round-off into a spurious rising tail.
        resolved = int(np.nonzero(plain.eigenvalues > 100 * plain.floor)[0][-1])
        for op_label, op in (("Θ", None), ("Δ_S Δ_S' Θ", [0.0, 1.0])):
            first = window[0] if theory is not None else 2
            fit_window = (first, min(window[1], resolved))
            s = nt.sphere_spectrum(net, DIM, K, op, degree_window=fit_window)
            mu = np.where(s.degrees <= resolved, s.eigenvalues, np.nan)
            operators.append(
                {
                    "label": f"{label}: {op_label}",
                    "theory_exponent": None if theory is None else theory - (4 if op else 0),
                    "degrees": s.degrees,
                    "mu": mu,
                    "floor": s.floor,
                    "fit": fit_record(s.degree_decay),
                }
            )
    # (c) Nyström on samples against the exact eigenvalues.
    n = 120 if quick else 700
    net = nt.MLP(2, "erf", W_std=1.5, b_std=0.5)
    q = nt.sphere(DIM, n, seed=1)
    coords = ("x", "y", "z")
    nystrom = []
    kernels = [("Θ", nt.identity(coords), None)]
    if not quick:  # its compilation alone is ~6 s; decay_operators covers Δ_S in quick runs
        kernels.append(("Δ_S Δ_S' Θ", -1 * nt.laplace_beltrami(coords), [0.0, 1.0]))
    for op_label, op, poly in kernels:
        Km = np.asarray(nt.operator_kernel(net, op, q.points))
        s = nt.spectrum(Km, q.weights)
        exact = nt.sphere_spectrum(net, DIM, 40, poly).sorted_eigenvalues(n)
        count = min(60, n)
        nystrom.append(
            {
                "label": op_label,
                "n": n,
                "nystrom": s.eigenvalues[:count],
                "exact": exact[:count],
                "rel_error_top10": np.abs(s.eigenvalues[:10] - exact[:10]) / exact[:10],
                # Degrees 0, 1, 2 (1 + 3 + 5 eigenvalues): sampling splits a degree's equal
                # eigenvalues, but their sum is stable (Monte Carlo error O(N^-1/2)).
                "rel_error_degrees_0_2": abs(s.eigenvalues[:9].sum() - exact[:9].sum())
                / exact[:9].sum(),
            }
        )
    return {
        "dim": DIM,
        "max_degree": K,
        "window": window,
        "anchors": anchors,
        "operators": operators,
        "nystrom": nystrom,
        "note": "degree exponents β from μ_k ≈ C k^-β over the window; NTK parameterization, "
        "W_std = 1 unless stated, b_std as in the labels of the JSON",
    }


def _degree_panel(ax, entries, title):
    for e in entries:
        k, mu = np.asarray(e["degrees"]), np.asarray(e["mu"], dtype=float)
        ok = (k >= 1) & np.isfinite(mu) & (mu > 100 * e["floor"])
        fit = e["fit"]
        label = e["label"]
        if fit:
            label += f": β = {fit['alpha']:.2f} ± {fit['stderr']:.2f}"
        if e["theory_exponent"] is not None:
            label += f" (theory {e['theory_exponent']})"
        (line,) = ax.loglog(k[ok], mu[ok], lw=1.2, label=label)
        if fit and e["theory_exponent"] is not None:
            kk = np.arange(fit["window"][0], fit["window"][1] + 1, dtype=float)
            ax.loglog(
                kk,
                np.exp(fit["log_c"]) * kk ** (-fit["alpha"]),
                ls=":",
                color=line.get_color(),
            )
    ax.set_xlabel("spherical-harmonic degree k")
    ax.set_ylabel("Mercer eigenvalue μ_k (kernel units)")
    ax.set_title(title)
    ax.legend(loc="lower left")


def plot(data: dict):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    _degree_panel(
        axes[0], data["anchors"], "(a) anchors on S² (Bietti–Bach: NTK k^-d, NNGP k^-d-2s)"
    )
    _degree_panel(axes[1], data["operators"], "(b) with and without T = -Δ_S: μ_k (k(k+1))²")
    ax = axes[2]
    for e in data["nystrom"]:
        i = np.arange(1, len(e["exact"]) + 1)
        (line,) = ax.loglog(i, e["exact"], lw=1.2, label=f"{e['label']}: Funk–Hecke (exact)")
        ax.loglog(
            i,
            np.clip(e["nystrom"], 1e-300, None),
            "o",
            ms=2.5,
            color=line.get_color(),
            label=f"{e['label']}: Nyström, {e['n']} samples",
        )
    ax.set_xlabel("eigenvalue index i (with multiplicity)")
    ax.set_ylabel("eigenvalue λ_i (kernel units)")
    ax.set_title("(c) erf, 2 hidden layers: Nyström vs exact")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``sphere_spectra.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
