"""The NTK of a PINN for a system: 2-D Stokes flow in the lid-driven cavity.

Unknowns ``(u, v, p)``, one network with three outputs (tanh, one hidden layer,
``σ_w = σ_b = 1``; at infinite width the kernel is ``Θ ⊗ I_3``). Five loss pieces: the two
momentum equations ``-νΔu + p_x``, ``-νΔv + p_y``, continuity ``u_x + v_y``, and Dirichlet
``u``, ``v`` on the walls (Wang, Yu, Perdikaris, arXiv 2007.14527, eq. (4.5)-(4.7), one block row
per piece). Shown: the trace of each diagonal block, the trace weights ``Tr K / Tr K_kk``
(their Algorithm 1) and the spectrum of ``Λ^{1/2} K Λ^{1/2}`` with unit and with trace weights.

Run: ``uv run python -m paper_figures.fig_stokes [out_dir] [--quick]``.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

import ntk_theory as nt
from paper_figures._common import save, script

NAME = "stokes"


def compute(quick: bool = False, progress: bool = True) -> dict:
    t0 = time.perf_counter()
    problem = nt.stokes_cavity(n_per_dim=4 if quick else 10, n_boundary=4 if quick else 10)
    net = nt.MLP(1, "tanh", W_std=1.0, b_std=1.0, outputs=3)
    P = problem.kernel(net)
    weights = nt.trace_weights(P)
    weighted = dataclasses.replace(problem, loss_weights=tuple(weights.values()))
    spectra, floors = {}, {}
    for label, kernel in (("unit weights", P), ("trace weights", weighted.kernel(net))):
        lam = scipy.linalg.eigvalsh(np.asarray(kernel.symmetric))[::-1]
        # below N ε λ_max the eigenvalues of a float64 matrix are round-off, not spectrum
        floors[label] = lam.size * np.finfo(float).eps * lam[0]
        spectra[label] = lam[lam > floors[label]]
    data = {
        "problem": problem.name,
        "network": f"{net!r}",
        "labels": list(P.labels),
        "sizes": list(P.sizes),
        "traces": [float(np.trace(np.asarray(P.piece(k, k)))) for k in range(len(P.labels))],
        "trace_weights": weights,
        "spectra": spectra,
        "floors": floors,
        "n_total": int(P.K.shape[0]),
        # λ_max / (smallest eigenvalue above the floor): a lower bound where eigenvalues are
        # floored (the true condition number is larger)
        "condition_numbers": {k: float(v[0] / v[-1]) for k, v in spectra.items()},
        "seconds": time.perf_counter() - t0,
    }
    if progress:
        print(f"  traces {data['traces']} ({data['seconds']:.1f} s)", file=sys.stderr)
    return data


def plot(data: dict):
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8))
    labels = data["labels"]
    names = ["-νΔu + p_x", "-νΔv + p_y", "u_x + v_y", "u on walls", "v on walls"]
    names = names if len(names) == len(labels) else labels
    ax = axes[0]
    ax.bar(range(len(labels)), data["traces"], color="C0")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), names, rotation=30, ha="right")
    ax.set_ylabel("Tr K_kk")
    ax.set_title("block traces")
    ax = axes[1]
    ax.bar(range(len(labels)), list(data["trace_weights"].values()), color="C1")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), names, rotation=30, ha="right")
    ax.set_ylabel("λ_k = Tr K / Tr K_kk")
    ax.set_title("trace weights (WYP Algorithm 1)")
    ax = axes[2]
    for label, lam in data["spectra"].items():
        lam = np.asarray(lam)
        lam = lam[lam > 0]
        cond = data["condition_numbers"][label]
        text = f"{label}: {lam.size} of {data['n_total']} above N ε λ_max (κ ≥ {cond:.2g})"
        ax.loglog(np.arange(1, lam.size + 1), lam, lw=1.3, label=text)
    ax.set_xlabel("eigenvalue index i")
    ax.set_ylabel("rate λ_i of Λ^1/2 K Λ^1/2")
    ax.set_title("spectrum of the full PINN kernel")
    ax.legend(loc="lower left")
    fig.suptitle(f"{data['problem']}, {data['network']}", fontsize=9)
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``stokes.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
