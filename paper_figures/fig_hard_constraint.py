"""Hard boundary constraints against soft boundary weights: the spectra they give the PINN.

1-D Poisson ``u'' = f`` on [0, 1] with ``u(0) = u(1) = 0``, tanh and erf networks (one hidden
layer, ``σ_w = σ_b = 1``). The soft PINN learns the boundary values through a loss term; the hard
one is ``u = D N`` with ``D = x(1 - x)`` (Lagaris et al. 1998), so its kernel is
``(∂²∘D)_x (∂²∘D)_{x'} Θ`` and the boundary term is gone.

* left: Nyström eigenvalues of the residual kernel ``K_rr`` (Gauss–Legendre on [0, 1]) without and
  with the constraint, fitted ``λ_i ≈ C i^{-α}`` ± standard error;
* right: eigenvalues of the gradient-descent dynamics matrix ``Λ^{1/2} K Λ^{1/2}`` on the
  problem's collocation points: soft with unit loss weights, soft with Wang–Yu–Perdikaris trace
  weights, and hard (residual only).

Run: ``uv run python -m paper_figures.fig_hard_constraint [out_dir] [--quick]``.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

import ntk_theory as nt
from paper_figures._common import fit_label, fit_record, save, script

NAME = "hard_constraint"
ACTIVATIONS = ("tanh", "erf")
D = nt.OutputTransform("x*(1 - x)", coords=("x",))


def compute(quick: bool = False, progress: bool = True) -> dict:
    q = nt.interval(0.0, 1.0, 60 if quick else 200)
    problem = nt.poisson_1d(n_residual=32 if quick else 100, frequency=1.0)
    T = problem.residual
    results = []
    for act in ACTIVATIONS:
        t0 = time.perf_counter()
        soft = nt.MLP(1, act, W_std=1.0, b_std=1.0)
        hard = nt.MLP(1, act, W_std=1.0, b_std=1.0, output_transform=D)
        entry = {"activation": act, "nystrom": {}, "dynamics": {}}
        for label, net in (("soft (plain K_rr)", soft), ("hard, D = x(1 - x)", hard)):
            s = nt.spectrum(np.asarray(nt.operator_kernel(net, T, q.points)), q.weights)
            entry["nystrom"][label] = {
                "eigenvalues": s.eigenvalues[s.eigenvalues > s.floor],
                "fit": fit_record(s.decay),
            }
        P = problem.kernel(soft)
        weights = nt.trace_weights(P)
        weighted = dataclasses.replace(problem, loss_weights=tuple(weights.values()))
        Ph = nt.pinn_kernel(hard, T, [], problem.x_residual, [])
        for label, kernel in (
            ("soft, unit weights", P),
            ("soft, trace weights", weighted.kernel(soft)),
            ("hard, residual only", Ph),
        ):
            lam = scipy.linalg.eigvalsh(np.asarray(kernel.symmetric))[::-1]
            floor = lam.size * np.finfo(float).eps * lam[0]  # below: round-off, not spectrum
            entry["dynamics"][label] = {
                "eigenvalues": lam[lam > floor],
                "n_total": int(lam.size),
                "floor": floor,
                "lambda_max": float(lam[0]),
            }
        entry["trace_weights"] = weights
        entry["seconds"] = time.perf_counter() - t0
        results.append(entry)
        if progress:
            fits = {k: v["fit"]["alpha"] for k, v in entry["nystrom"].items() if v["fit"]}
            print(f"  {act}: K_rr exponents {fits} ({entry['seconds']:.1f} s)", file=sys.stderr)
    return {
        "problem": problem.name,
        "network": "MLP(depth=1, W_std=1, b_std=1, ntk parameterization)",
        "n_quadrature": q.n,
        "n_residual": int(problem.x_residual.shape[0]),
        "results": results,
    }


def plot(data: dict):
    fig, axes = plt.subplots(len(ACTIVATIONS), 2, figsize=(10.0, 3.4 * len(ACTIVATIONS)))
    for row, r in zip(axes, data["results"], strict=True):
        ax = row[0]
        for label, v in r["nystrom"].items():
            lam = np.asarray(v["eigenvalues"])
            ax.loglog(np.arange(1, lam.size + 1), lam, lw=1.3, label=fit_label(label, v["fit"]))
        ax.set_title(
            f"{r['activation']}: Nyström eigenvalues of K_rr = T T' Θ, N = {data['n_quadrature']}"
        )
        ax.set_xlabel("eigenvalue index i")
        ax.set_ylabel("λ_i (integral operator)")
        ax.legend(loc="lower left")
        ax = row[1]
        for label, v in r["dynamics"].items():
            lam = np.asarray(v["eigenvalues"])
            text = f"{label}: {lam.size} of {v['n_total']} above N ε λ_max"
            ax.loglog(np.arange(1, lam.size + 1), lam, lw=1.3, label=text)
        ax.set_title(f"{r['activation']}: eigenvalues of Λ^1/2 K Λ^1/2 (gradient-descent rates)")
        ax.set_xlabel("eigenvalue index i")
        ax.set_ylabel("rate λ_i")
        ax.legend(loc="lower left")
    fig.suptitle(
        f"{data['problem']}: hard constraint vs soft boundary loss, {data['network']}", fontsize=9
    )
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``hard_constraint.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
