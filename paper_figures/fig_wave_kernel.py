"""The wave-equation PINN kernel with three boundary pieces (Wang, Yu, Perdikaris §7.3).

``u_tt − 4 u_xx = 0`` on (0, 1)², ``u(x, 0) = sin(πx) + ½ sin(4πx)``, ``u_t(x, 0) = 0`` and
``u(0, t) = u(1, t) = 0``: a block kernel with a residual and three boundary pieces
(``pinn_kernel`` with a list of operators). We show the eigenvalues of each diagonal block of the
infinite-width NTK (tanh, σ_w = σ_b = 1) and the trace weights ``λ_k = Tr K / Tr K_kk`` of
Algorithm 1, for 1 and 3 hidden layers: the residual block, which carries second derivatives in
``t`` and ``x``, is orders of magnitude stiffer than the boundary blocks.

Run: ``uv run python -m paper_figures.fig_wave_kernel [out_dir] [--quick]``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

import ntk_theory as nt
from paper_figures._common import positive, save, script

NAME = "wave_kernel"


def compute(quick: bool = False) -> dict:
    problem = nt.wave_1d(n_per_dim=8 if quick else 11)  # 121 residual points: one 128-row block
    out = []
    for depth in (1,) if quick else (1, 3):
        net = nt.MLP(depth, "tanh", W_std=1.0, b_std=1.0)
        P = problem.kernel(net)
        blocks = {
            label: scipy.linalg.eigvalsh(np.asarray(P.piece(k, k)))[::-1]
            for k, label in enumerate(P.labels)
        }
        out.append(
            {"depth": depth, "trace_weights": nt.trace_weights(P), "block_eigenvalues": blocks}
        )
    return {
        "equation": "u_tt - 4 u_xx = 0 on (0,1)^2",
        "points": dict(zip(P.labels, P.sizes, strict=True)),
        "network": "tanh, σ_w = σ_b = 1, NTK parameterization, infinite width",
        "kernels": out,
    }


def plot(data: dict):
    n = len(data["kernels"])
    fig, axes = plt.subplots(1, n, figsize=(5.6 * n, 4.2), squeeze=False)
    axes = axes[0]
    for ax, entry in zip(axes, data["kernels"], strict=True):
        for label, lam in entry["block_eigenvalues"].items():
            lam = positive(lam)
            w = entry["trace_weights"][label]
            ax.semilogy(np.arange(1, lam.size + 1), lam, label=f"{label}: λ = {w:.3g}")
        ax.set_xlabel("eigenvalue index i")
        ax.set_ylabel("eigenvalue of the diagonal block (matrix, kernel units)")
        ax.set_title(
            f"{entry['depth']} hidden layer{'s' if entry['depth'] > 1 else ''}: "
            "blocks and trace weights"
        )
        ax.legend(title="block: trace weight")
    fig.suptitle("Wave equation u_tt − 4u_xx = 0: infinite-width PINN kernel blocks", fontsize=10)
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``wave_kernel.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
