"""Does a Fourier-feature embedding change the spectrum of the PDE residual's kernel?

1-D Poisson, ``K_rr = ∂²_x ∂²_x' Θ`` on [0, 1] (Gauss–Legendre quadrature, Nyström eigenvalues),
for tanh and erf networks (one hidden layer, ``σ_w = σ_b = 1``): raw coordinates against
Gaussian Fourier features ``γ(x) = [cos 2πBx, sin 2πBx]`` with ``B ~ N(0, s²)``, ``s = 1, 5, 10``
(Tancik et al., arXiv 2006.10739; Wang, Wang, Perdikaris, arXiv 2012.10047), both with
``m = 64`` frequencies (one draw) and in the ``m → ∞`` limit, where the first layer sees the
Gaussian kernel ``½ exp(-2π² s² |x - x'|²)``. Fitted exponents ``λ_i ≈ C i^{-α}`` with standard
errors.

Run: ``uv run python -m paper_figures.fig_fourier_features [out_dir] [--quick]``.
"""

from __future__ import annotations

import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import ntk_theory as nt
from paper_figures._common import fit_label, fit_record, save, script

NAME = "fourier_features"
SCALES = (1.0, 5.0, 10.0)
M = 64
ACTIVATIONS = ("tanh", "erf")


def _embeddings(quick: bool):
    yield "plain", None
    for s in SCALES[::2] if quick else SCALES:  # quick: s = 1 and 10
        yield f"FF s={s:g}, m={M}", nt.FourierFeatures.gaussian(M, s, 1, seed=0)
        yield f"FF s={s:g}, m=∞", nt.FourierFeatures.infinite(s)


def compute(quick: bool = False, progress: bool = True) -> dict:
    q = nt.interval(0.0, 1.0, 60 if quick else 200)
    T = nt.derivative(("x",), "x", 2)
    results = []
    for act in ACTIVATIONS:
        for label, emb in _embeddings(quick):
            t0 = time.perf_counter()
            net = nt.MLP(1, act, W_std=1.0, b_std=1.0, embedding=emb)
            K = np.asarray(nt.operator_kernel(net, T, q.points))
            s = nt.spectrum(K, q.weights)
            keep = s.eigenvalues[s.eigenvalues > s.floor]
            results.append(
                {
                    "activation": act,
                    "embedding": label,
                    "eigenvalues": keep,
                    "floor": s.floor,
                    "fit": fit_record(s.decay),
                    "effective_rank": s.effective_rank,
                    "trace": float(np.sum(q.weights * np.diag(K))),
                    "seconds": time.perf_counter() - t0,
                }
            )
            if progress:
                print(
                    f"  {act:5s} {label:18s} {s.decay} ({results[-1]['seconds']:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return {
        "problem": "1-D Poisson, K_rr = ∂²_x ∂²_x' Θ on [0, 1]",
        "network": "MLP(depth=1, W_std=1, b_std=1, ntk parameterization)",
        "n": q.n,
        "method": "Nyström eigenvalues of W^1/2 K W^1/2 (Gauss–Legendre); fit of log λ_i vs "
        "log i in ntk_theory.fit_decay's window",
        "results": results,
    }


def plot(data: dict):
    fig, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(5.2 * len(ACTIVATIONS), 3.8))
    colors = {"plain": "k"}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, s in enumerate(SCALES):
        colors[f"s={s:g}"] = palette[k]
    for ax, act in zip(axes, ACTIVATIONS, strict=True):
        for r in data["results"]:
            if r["activation"] != act:
                continue
            lam = np.asarray(r["eigenvalues"])
            idx = np.arange(1, lam.size + 1)
            key = "plain" if r["embedding"] == "plain" else r["embedding"].split(",")[0][3:]
            label = fit_label(r["embedding"], r["fit"])
            ls = "--" if r["embedding"].endswith("m=∞") else "-"
            ax.loglog(idx, lam, ls=ls, color=colors[key], lw=1.2, label=label)
        ax.set_title(f"{act}: eigenvalues of ∂²_x ∂²_x' Θ on [0, 1]")
        ax.set_xlabel("eigenvalue index i")
        ax.set_ylabel("λ_i (integral operator)")
        ax.legend(loc="lower left", fontsize=6)
    fig.suptitle(
        f"Fourier features vs raw coordinates, {data['network']}, N = {data['n']} "
        "(solid: m = 64 frequencies, dashed: m → ∞)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``fourier_features.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
