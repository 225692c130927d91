"""The solution an infinitely wide PINN converges to, against ensembles of trained networks.

For the 1-D Poisson problem ``u'' = f``, ``u = sin(kπx)`` (``k = 1, 4``), with and without the
Wang–Yu–Perdikaris trace weights, and the 2-D Poisson problem: the infinite-width mean
``μ_t(x)`` and standard deviation ``σ_t(x)`` over initializations (:func:`ntk_theory.predict`;
Lee et al. 2019, arXiv 1902.06720, eq. (16), with operator blocks) against ensembles of tanh
networks of several widths trained by full-batch gradient descent with the same step
(:func:`ntk_theory.train_ensemble`), and the relative L2 error to the exact solution over
training, predicted vs actual.

Run: ``uv run python -m paper_figures.fig_prediction [out_dir] [--quick]``.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import ntk_theory as nt
from paper_figures._common import save, script

NAME = "prediction"


def _case(net, problem, x_test, steps, widths, seeds, label, progress) -> dict:
    t0 = time.perf_counter()
    pred = nt.predict(net, problem, x_test, steps)
    exact = pred.exact
    runs = []
    for width in widths:
        rec = nt.train_ensemble(net, width, problem, steps, x_test, seeds=seeds)
        actual = np.linalg.norm(rec.mean - exact, axis=1) / np.linalg.norm(exact)
        runs.append(
            {
                "width": width,
                "l2_error": actual,
                "mean": rec.mean[-1],
                "std": rec.std[-1],
                "max_mean_deviation": np.abs(rec.mean - pred.mean).max(axis=1),
                "std_ratio_median": np.median(rec.std / np.maximum(pred.std, 1e-300), axis=1),
            }
        )
    if progress:
        finals = ", ".join(f"{r['l2_error'][-1]:.3e}" for r in runs)
        print(
            f"  {label}: predicted L2 at step {steps[-1]} {pred.l2_error()[-1]:.3e} (∞: "
            f"{pred.l2_error_inf:.3e}); ensembles {finals}"
            f" ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return {
        "label": label,
        "problem": problem.name,
        "loss_weights": problem.loss_weights,
        "learning_rate": pred.learning_rate,
        "steps": pred.steps,
        "x_test": pred.x_test,
        "exact": exact,
        "predicted_l2_error": pred.l2_error(),
        "predicted_l2_error_inf": pred.l2_error_inf,
        "predicted_mean": pred.mean[-1],
        "predicted_std": pred.std[-1],
        "n_floored": pred.n_floored,
        "weight_change": pred.weight_change,
        "runs": runs,
    }


def compute(quick: bool = False, progress: bool = True) -> dict:
    net = nt.MLP(1, "tanh", W_std=1.0, b_std=1.0)
    # Cost: the ensembles (~2 µs per width × seed × step on one core). sin(4πx) needs the
    # weights to move ~10² further than sin(πx) (Prediction.weight_change), beyond the linear
    # regime of every width here: two widths show that.
    steps = [0, 10, 100] if quick else [0, 10, 30, 100, 300, 1000]
    widths = (64, 512) if quick else (64, 256, 1024, 4096)
    seeds = tuple(range(4 if quick else 16))
    x1 = np.linspace(0.0, 1.0, 101)[:, None]
    cases = []
    for k in (1.0, 4.0):
        base = nt.poisson_1d(12 if quick else 24, frequency=k)
        weights = nt.trace_weights(base.kernel(net))
        for weighted in (False, True):
            problem = (
                dataclasses.replace(base, loss_weights=tuple(weights.values()))
                if weighted
                else base
            )
            label = f"sin({k:g}πx), {'trace weights' if weighted else 'unweighted'}"
            ws = widths if k == 1.0 else widths[1::2]
            cases.append(_case(net, problem, x1, steps, ws, seeds, label, progress))
    problem2 = nt.poisson_2d(4 if quick else 8, 4 if quick else 8)
    t = np.linspace(0.0, 1.0, 11 if quick else 21)
    x2 = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    widths2 = (widths[-1] if quick else widths[-2],)
    cases.append(_case(net, problem2, x2, steps, widths2, seeds, "2-D Poisson", progress))
    return {"network": repr(net), "seeds": len(seeds), "cases": cases}


def plot(data: dict):
    cases = data["cases"]
    fig, axes = plt.subplots(len(cases), 2, figsize=(10, 3.0 * len(cases)), squeeze=False)
    for (ax1, ax2), case in zip(axes, cases, strict=True):
        x = np.asarray(case["x_test"])
        widest = case["runs"][-1]
        last = case["steps"][-1]
        if x.shape[1] == 1:
            xs = x[:, 0]
            mu, sd = np.asarray(case["predicted_mean"]), np.asarray(case["predicted_std"])
            ax1.plot(xs, case["exact"], "k--", lw=1, label="exact")
            ax1.plot(xs, mu, "C0", lw=1.4, label=f"predicted μ ± 2σ, step {last:g}")
            ax1.fill_between(xs, mu - 2 * sd, mu + 2 * sd, color="C0", alpha=0.25)
            em, es = np.asarray(widest["mean"]), np.asarray(widest["std"])
            ax1.plot(xs, em, "C3:", lw=1.4, label=f"ensemble, width {widest['width']}")
            ax1.fill_between(xs, em - 2 * es, em + 2 * es, color="C3", alpha=0.15)
            ax1.set_xlabel("x")
            ax1.set_ylabel("u")
        else:
            n = round(np.sqrt(x.shape[0]))
            err = np.asarray(case["predicted_mean"]) - np.asarray(case["exact"])
            im = ax1.imshow(err.reshape(n, n).T, origin="lower", extent=(0, 1, 0, 1), cmap="RdBu")
            fig.colorbar(im, ax=ax1, label=f"μ - u at step {last:g}")
        moved = case["weight_change"][-1]
        ax1.set_title(f"{case['label']}; linearized ‖θ_t - θ_0‖ = {moved:.3g}")
        if x.shape[1] == 1:
            ax1.legend(loc="best")
        steps = np.maximum(np.asarray(case["steps"], dtype=float), 1.0)
        ax2.loglog(steps, case["predicted_l2_error"], "k-", lw=1.6, label="predicted (∞ width)")
        ax2.axhline(case["predicted_l2_error_inf"], color="k", ls=":", lw=0.8, label="t → ∞")
        for i, run in enumerate(case["runs"]):
            ax2.loglog(
                steps, run["l2_error"], "o--", color=f"C{i}", ms=3, label=f"width {run['width']}"
            )
        ax2.set_xlabel("gradient-descent step (step 0 at 1)")
        ax2.set_ylabel("relative L2 error of the mean")
        ax2.set_title(f"η = {case['learning_rate']:.3g}, {data['seeds']} seeds per width")
        ax2.legend(loc="lower left")
    fig.suptitle(f"Infinite-width predictions vs trained ensembles: {data['network']}")
    fig.tight_layout()
    return fig


def main(out_dir="figures", quick: bool = False) -> dict:
    """Compute, plot and write ``prediction.{png,pdf,json}`` to ``out_dir``."""
    data = compute(quick)
    return save(plot(data), out_dir, NAME, data, quick)


if __name__ == "__main__":
    script(main)
