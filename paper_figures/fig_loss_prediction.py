"""Predicted against actual training: residual and boundary losses of the 1-D Poisson PINN.

Gradient descent on a wide network follows the linear NTK dynamics
``e(t) = exp(−η K Λ t) e(0)`` (Wang, Yu, Perdikaris, arXiv 2007.14527, eq. (4.4); Lee et al.
2019). We train real tanh networks (1 hidden layer) on ``u_xx = f``, ``u = sin(πx)``, and compare
their loss curves with the prediction from (i) the infinite-width kernel and (ii) the network's
own empirical kernel at initialization, both started from the network's initial errors.

Run: ``uv run python -m paper_figures.fig_loss_prediction [out_dir] [--quick]``.
"""

from __future__ import annotations

import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import ntk_theory as nt
from paper_figures._common import save, script

NAME = "loss_prediction"


def compute(quick: bool = False, progress: bool = True) -> dict:
    problem = nt.poisson_1d(n_residual=24 if quick else 64)
    widths = (256,) if quick else (256, 4096)
    steps = 150 if quick else 3000
    net = nt.MLP(1, "tanh", W_std=1.0, b_std=1.0)
    P_inf = problem.kernel(net)
    runs = []
    for width in widths:
        t0 = time.perf_counter()
        rec = nt.train_pinn(
            net, width, problem, steps, lr_factor=0.2, record_every=max(steps // 40, 1)
        )
        pred_inf = nt.predicted_losses(P_inf, rec.errors0, rec.steps, rec.learning_rate).losses
        pred_emp = nt.predicted_losses(rec.K0, rec.errors0, rec.steps, rec.learning_rate).losses
        final = rec.losses[-1]
        runs.append(
            {
                "width": width,
                "steps": rec.steps,
                "learning_rate": rec.learning_rate,
                "actual": rec.losses,
                "predicted_infinite": pred_inf,
                "predicted_empirical": pred_emp,
                "final_rel_diff_infinite": np.abs(pred_inf[-1] - final) / final,
                "final_rel_diff_empirical": np.abs(pred_emp[-1] - final) / final,
                "drift": rec.drift[-1],
            }
        )
        if progress:
            print(
                f"  width {width}: final losses {final}, predicted (∞) {pred_inf[-1]} "
                f"({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return {
        "problem": problem.name,
        "network": repr(net),
        "learning_rate_rule": "0.2 × 2/λ_max of the infinite-width weighted kernel",
        "pieces": ["residual", "boundary"],
        "runs": runs,
    }


def plot(data: dict):
    runs = data["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4.0), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        steps = np.asarray(run["steps"])
        for k, piece in enumerate(data["pieces"]):
            c = f"C{k}"
            ax.semilogy(
                steps, np.asarray(run["actual"])[:, k], color=c, lw=2, label=f"{piece}: actual"
            )
            ax.semilogy(
                steps,
                np.asarray(run["predicted_infinite"])[:, k],
                "--",
                color=c,
                label=f"{piece}: predicted, infinite-width K",
            )
            ax.semilogy(
                steps,
                np.asarray(run["predicted_empirical"])[:, k],
                ":",
                color=c,
                label=f"{piece}: predicted, empirical K(0)",
            )
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel("loss piece (½ mean squared error, units of u²)")
        ax.set_title(f"tanh, width {run['width']}, η = {run['learning_rate']:.2e}")
        ax.legend(loc="upper right")
    fig.suptitle("1-D Poisson PINN: linear NTK dynamics against real training", fontsize=10)
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``loss_prediction.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
