"""The 1-D Poisson PINN of Wang, Yu, Perdikaris (arXiv 2007.14527), Figs. 1-3.

``u_xx = f`` on [0, 1] with ``u = sin(πx)``, ``u(0) = u(1) = 0``; tanh, σ_w = σ_b = 1, NTK
parameterization (the paper's convention, not their TF code's -- see ``../shared/PAPERS.md``).

(a) Eigenvalues of the boundary block ``K_uu``, the residual block ``K_rr`` and the full ``K`` at
    initialization: infinite width (lines) and one width-100 network (markers). ``K_rr ≫ K_uu``:
    the residual is fitted far faster than the boundary.
(b) NTK drift ``‖K(t) − K(0)‖_F / ‖K(0)‖_F`` during full-batch gradient descent for several
    widths and 1 or 3 hidden layers: it shrinks as the width grows.
(c) Relative parameter change ``‖θ(t) − θ(0)‖ / ‖θ(0)‖``.
(d) Eigenvalues of the empirical ``K`` before and after training at the largest width.

Learning rate: one for all runs, ``0.5 × 2/λ_max`` of the stiffest initial kernel (infinite
width or any of the networks); the paper's 1e-5 belongs to its code's standard
parameterization and loss scaling.

Run: ``uv run python -m paper_figures.fig_wyp_poisson [out_dir] [--quick]``.
"""

from __future__ import annotations

import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

import ntk_theory as nt
from paper_figures._common import positive, save, script

NAME = "wyp_poisson"


def _net(depth: int) -> nt.MLP:
    return nt.MLP(depth, "tanh", W_std=1.0, b_std=1.0)


def _eig(K) -> np.ndarray:
    return scipy.linalg.eigvalsh(0.5 * (np.asarray(K) + np.asarray(K).T))[::-1]


def compute(quick: bool = False, progress: bool = True) -> dict:
    problem = nt.poisson_1d(n_residual=24 if quick else 100)
    n_r = problem.x_residual.shape[0]
    net = _net(1)
    P = problem.kernel(net)
    spectra = {
        "infinite": {
            "K_uu": _eig(P.blocks["bb"]),
            "K_rr": _eig(P.blocks["rr"]),
            "K": _eig(P.K),
        }
    }
    params = nt.init_params(net, 100, 1, seed=0)
    Ke = np.asarray(problem.empirical_kernel(net, 100, params).K)
    spectra["width 100"] = {
        "K_uu": _eig(Ke[n_r:, n_r:]),
        "K_rr": _eig(Ke[:n_r, :n_r]),
        "K": _eig(Ke),
    }
    steps = 100 if quick else 2000
    runs = []
    configs = (
        [(1, 10), (1, 100)] if quick else [(1, 10), (1, 100), (1, 500), (3, 10), (3, 100), (3, 500)]
    )
    # One learning rate for every run (as in the paper): half the stability limit 2/λ_max of
    # the stiffest initial kernel, empirical or infinite-width, so that no run diverges.
    lam_max = max(
        max(_eig(problem.kernel(_net(depth)).K)[0] for depth in {d for d, _ in configs}),
        max(
            _eig(problem.empirical_kernel(_net(d), w, nt.init_params(_net(d), w, 1, 0)).K)[0]
            for d, w in configs
        ),
    )
    learning_rate = 0.5 * 2.0 / lam_max
    final = None
    for depth, width in configs:
        t0 = time.perf_counter()
        rec = nt.train_pinn(
            _net(depth),
            width,
            problem,
            steps,
            learning_rate=learning_rate,
            seed=0,
            record_every=max(steps // 10, 1),
        )
        runs.append(
            {
                "depth": depth,
                "width": width,
                "steps": rec.steps,
                "drift": rec.drift,
                "param_change": rec.param_change,
                "losses": rec.losses,
                "learning_rate": rec.learning_rate,
                "l2_error": rec.l2_error,
            }
        )
        if depth == 1:
            final = (width, rec)
        if progress:
            print(
                f"  depth {depth} width {width:4d}: drift {rec.drift[-1]:.3e}, "
                f"L2 error {rec.l2_error:.2e} ({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    width, rec = final
    KT = problem.empirical_kernel(_net(1), width, rec.params).K
    return {
        "problem": problem.name,
        "network": "tanh, σ_w = σ_b = 1, NTK parameterization",
        "n_residual": n_r,
        "n_boundary": 2,
        "spectra": spectra,
        "learning_rate": learning_rate,
        "training": runs,
        "eigs_before_after": {"width": width, "before": _eig(rec.K0.K), "after": _eig(KT)},
    }


def plot(data: dict):
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.0))
    ax = axes[0]
    colors = {"K_uu": "C0", "K_rr": "C1", "K": "C2"}
    for name, c in colors.items():
        lam = positive(data["spectra"]["infinite"][name])
        ax.semilogy(np.arange(1, lam.size + 1), lam, color=c, label=f"{name}, infinite width")
        lam = positive(data["spectra"]["width 100"][name])
        ax.semilogy(
            np.arange(1, lam.size + 1), lam, "o", ms=2.5, color=c, label=f"{name}, width 100"
        )
    ax.set_xlabel("eigenvalue index i")
    ax.set_ylabel("eigenvalue λ_i (matrix, kernel units)")
    ax.set_title(f"(a) spectra at initialization (N_r = {data['n_residual']}, N_b = 2)")
    ax.text(
        0.98,
        0.5,
        "K_uu: 2 eigenvalues (2 boundary points)",
        transform=ax.transAxes,
        ha="right",
        fontsize=7,
    )
    ax.legend()
    styles = {1: "-", 3: "--"}
    for key, ax, ylabel, title in (
        ("drift", axes[1], "‖K(t) − K(0)‖_F / ‖K(0)‖_F", "(b) NTK drift during training"),
        ("param_change", axes[2], "‖θ(t) − θ(0)‖ / ‖θ(0)‖", "(c) parameter change"),
    ):
        for run in data["training"]:
            steps = np.asarray(run["steps"])
            vals = np.asarray(run[key])
            ax.semilogy(
                steps[1:],
                vals[1:],
                styles[run["depth"]],
                color=f"C{sorted({r['width'] for r in data['training']}).index(run['width'])}",
                label=f"{run['depth']} hidden layer{'s' if run['depth'] > 1 else ''}, width {run['width']}",
            )
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel(f"{ylabel} (dimensionless)")
        ax.set_title(title)
        ax.legend()
    ax = axes[3]
    ba = data["eigs_before_after"]
    for key, style in (("before", "-"), ("after", "o")):
        lam = positive(ba[key])
        ax.semilogy(np.arange(1, lam.size + 1), lam, style, ms=2.5, label=f"K {key} training")
    ax.set_xlabel("eigenvalue index i")
    ax.set_ylabel("eigenvalue λ_i (matrix, kernel units)")
    ax.set_title(f"(d) empirical K at width {ba['width']}, 1 hidden layer")
    ax.legend()
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``wyp_poisson.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
