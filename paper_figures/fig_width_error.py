"""Empirical finite-width NTK against the infinite-width limit: error against width.

For a network of width ``n``, the empirical NTK at initialization fluctuates around the limit
with standard deviation ``O(n^{-1/2})`` (Jacot et al. 2018; Hanin & Nica 2019), so the relative
Frobenius error should fall on a line of slope ``-1/2`` in log–log axes. We check this for the
plain kernel ``Θ`` and for the residual kernel ``∂²_x ∂²_x' Θ`` of a 1-D Poisson PINN
(Gan, Li, Lin, Shi, arXiv 2503.11029: the operator kernel converges at initialization too).

Each finished run is stored at once in ``width_error_runs_<kernel>.json`` next to the figure, so
an interrupted run resumes where it stopped.

Run: ``uv run python -m paper_figures.fig_width_error [out_dir] [--quick]``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import ntk_theory as nt
from paper_figures._common import output_dir, save, script

NAME = "width_error"


def compute(out_dir, quick: bool = False) -> dict:
    net = nt.MLP(2, "erf", W_std=1.5, b_std=0.5)
    if quick:
        widths, seeds, n = (64, 256, 1024), tuple(range(6)), 16
    else:
        widths, seeds, n = (64, 128, 256, 512, 1024, 2048, 4096), tuple(range(16)), 40
    x = nt.interval(0.0, 1.0, n).points
    out = output_dir(out_dir)
    rows = []
    for key, label, op in (
        ("theta", "Θ", None),
        ("residual", "∂²_x ∂²_x' Θ", nt.Operator.parse("u_xx", ("x",))),
    ):
        res = nt.width_sweep(
            net,
            x,
            widths,
            seeds,
            operator=op,
            out=out / f"{NAME}_runs_{key}{'_quick' if quick else ''}.json",
        )
        rows.append(
            {
                "kernel": label,
                "widths": res.widths,
                "errors": res.errors,
                "mean_error": res.mean_error,
                "std_error": res.std_error,
                "slope": res.slope,
                "slope_stderr": res.slope_stderr,
            }
        )
    return {
        "network": repr(net),
        "points": f"{n} Gauss–Legendre nodes on [0, 1]",
        "seeds": list(seeds),
        "error": "‖K_emp − K_∞‖_F / ‖K_∞‖_F at initialization",
        "theory_slope": -0.5,
        "kernels": rows,
    }


def plot(data: dict):
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for row in data["kernels"]:
        w = np.asarray(row["widths"], float)
        m, s = np.asarray(row["mean_error"]), np.asarray(row["std_error"])
        (line,) = ax.loglog(
            w,
            m,
            "o-",
            label=f"{row['kernel']}: slope {row['slope']:.2f} ± {row['slope_stderr']:.2f}",
        )
        ax.fill_between(w, np.clip(m - s, m * 0.05, None), m + s, color=line.get_color(), alpha=0.2)
        # Slope −1/2 through the geometric mean of the points (no fit of the slope).
        w0, m0 = np.exp(np.mean(np.log(w))), np.exp(np.mean(np.log(m)))
        ax.loglog(w, m0 * (w / w0) ** -0.5, ":", color=line.get_color(), lw=1)
    ax.plot([], [], "k:", label="slope −1/2 (theory)")
    ax.set_xlabel("hidden width n")
    ax.set_ylabel("relative Frobenius error (dimensionless)")
    ax.set_title(f"Empirical vs infinite-width NTK, {len(data['seeds'])} seeds (band: ±1 std)")
    ax.legend()
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``width_error.{png,pdf,json}`` to ``out_dir``."""
    data = compute(out_dir, quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
