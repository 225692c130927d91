"""Theory vs practice: width sweeps, NTK drift in training, predicted vs actual dynamics.

* :func:`width_sweep` -- relative Frobenius error of the empirical (operator) NTK of
  ``net.finite(width)`` against the analytic kernel, over widths and seeds, with the fitted
  slope of log error vs log width (theory: ``-1/2``; Jacot et al. 2018, Thm. 1; Gan et al.
  arXiv 2503.11029 for operator kernels), top-eigenvalue errors and decay exponents.
  Results are written to JSON as they are produced, so an interrupted sweep resumes.
* :class:`PINNProblem`, :func:`train_pinn` -- full-batch gradient descent on a real PINN,
  recording the loss pieces and the NTK drift ``‖K_t - K_0‖_F / ‖K_0‖_F``
  (Wang, Yu, Perdikaris, arXiv 2007.14527, §5, Figs. 2–3).
* :func:`predicted_losses` -- the infinite-width linear dynamics ``e(t) = exp(-η K Λ t) e(0)``
  applied to the initial residuals (their eq. (4.9)), to compare with the actual curves.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .empirical import empirical_ntk, init_params
from .networks import MLP, check_points
from .operator_kernels import operator_kernel
from .operators import Operator, apply_at
from .pinn import PINNKernel, pinn_kernel
from .spectra import spectrum

__all__ = [
    "PINNProblem",
    "SweepResult",
    "TrainingRecord",
    "fit_power_law",
    "predicted_losses",
    "train_pinn",
    "width_sweep",
]


# ----------------------------------------------------------------------------------------------
# width sweeps
# ----------------------------------------------------------------------------------------------
def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Slope and its standard error of ``log y`` vs ``log x`` (ordinary least squares)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    xm = lx - lx.mean()
    slope = float(np.dot(xm, ly - ly.mean()) / np.dot(xm, xm))
    resid = ly - ly.mean() - slope * xm
    dof = max(lx.size - 2, 1)
    return slope, float(math.sqrt(np.dot(resid, resid) / dof / np.dot(xm, xm)))


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`width_sweep`.

    Attributes:
        widths: the widths, ascending.
        errors: ``(len(widths), len(seeds))`` relative Frobenius errors.
        mean_error, std_error: over seeds, per width.
        slope, slope_stderr: fit of ``log mean_error`` vs ``log width`` (theory -1/2).
        eig_errors: ``(len(widths), len(seeds), top_k)`` relative errors of top eigenvalues.
        alpha_empirical: ``(len(widths), len(seeds))`` decay exponents of the empirical kernels.
        alpha_analytic: decay exponent of the analytic kernel (with its standard error).
        records: the raw per-run records (what the JSON file holds).
    """

    widths: np.ndarray
    errors: np.ndarray
    mean_error: np.ndarray
    std_error: np.ndarray
    slope: float
    slope_stderr: float
    eig_errors: np.ndarray
    alpha_empirical: np.ndarray
    alpha_analytic: tuple[float, float]
    records: list = field(repr=False)

    def table(self) -> str:
        lines = [f"{'width':>7} {'rel. error':>12} {'± std':>9} {'top-λ err':>10} {'α_emp':>8}"]
        for i, w in enumerate(self.widths):
            lines.append(
                f"{w:>7d} {self.mean_error[i]:>12.4e} {self.std_error[i]:>9.2e} "
                f"{np.nanmean(self.eig_errors[i, :, 0]):>10.3e} {np.nanmean(self.alpha_empirical[i]):>8.3f}"
            )
        lines.append(
            f"slope of log error vs log width: {self.slope:.3f} ± {self.slope_stderr:.3f} "
            f"(theory -0.5); analytic α = {self.alpha_analytic[0]:.3f} ± {self.alpha_analytic[1]:.3f}"
        )
        return "\n".join(lines)


def _progress(message: str, enabled: bool) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def width_sweep(
    net: MLP,
    x,
    widths: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    operator: Operator | None = None,
    *,
    weights=None,
    top_k: int = 5,
    out: str | Path | None = None,
    progress: bool = True,
) -> SweepResult:
    """Empirical vs analytic (operator) NTK over widths and seeds.

    Args:
        net: the network.
        x: ``(n, d)`` points.
        widths: hidden widths to try.
        seeds: initialization seeds per width.
        operator: ``T`` (kernel ``T_x T_{x'} Θ``); default the plain NTK.
        weights: quadrature weights for the spectra (default ``1/n``).
        top_k: number of top eigenvalues whose relative errors are recorded.
        out: JSON file; each finished run is appended immediately and runs already in the
            file (same widths/seeds/configuration) are skipped, so an interrupted sweep resumes.
        progress: print one line per run to stderr.

    Returns:
        :class:`SweepResult`.
    """
    x, _ = check_points(x)
    widths = sorted(int(w) for w in widths)
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"widths must be positive integers, got {widths}.")
    w = np.full(x.shape[0], 1.0 / x.shape[0]) if weights is None else np.asarray(weights, float)
    K = operator_kernel(net, operator, x) if operator is not None else net.ntk(x)
    K = np.asarray(K)
    s_an = spectrum(K, w)
    top = s_an.eigenvalues[:top_k]
    config = {"net": repr(net), "operator": repr(operator), "n": int(x.shape[0])}
    records: list[dict] = []
    path = Path(out) if out is not None else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        if saved.get("config") == config:
            records = saved["records"]
    done = {(r["width"], r["seed"]) for r in records}
    total = len(widths) * len(seeds)
    for count, (width, seed) in enumerate(((a, b) for a in widths for b in seeds), start=1):
        if (width, seed) in done:
            continue
        t0 = time.perf_counter()
        Ke = np.asarray(empirical_ntk(net, width, x, operator=operator, seed=int(seed)))
        err = float(np.linalg.norm(Ke - K) / np.linalg.norm(K))
        s_emp = spectrum(0.5 * (Ke + Ke.T), w)
        rec = {
            "width": width,
            "seed": int(seed),
            "error": err,
            "eig_errors": (np.abs(s_emp.eigenvalues[:top_k] - top) / np.abs(top)).tolist(),
            "alpha": s_emp.decay.alpha if s_emp.decay else float("nan"),
            "seconds": time.perf_counter() - t0,
        }
        records.append(rec)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps({"config": config, "records": records}, indent=1))
            tmp.replace(path)
        _progress(
            f"[{count}/{total}] width={width} seed={seed} rel. error={err:.3e} "
            f"({rec['seconds']:.1f} s)",
            progress,
        )
    by = {(r["width"], r["seed"]): r for r in records}
    errors = np.array([[by[(a, int(b))]["error"] for b in seeds] for a in widths])
    eig = np.array([[by[(a, int(b))]["eig_errors"] for b in seeds] for a in widths])
    alpha = np.array([[by[(a, int(b))]["alpha"] for b in seeds] for a in widths])
    mean = errors.mean(axis=1)
    slope, se = fit_power_law(widths, mean) if len(widths) > 1 else (math.nan, math.nan)
    alpha_an = (s_an.decay.alpha, s_an.decay.stderr) if s_an.decay else (math.nan, math.nan)
    return SweepResult(
        np.array(widths), errors, mean, errors.std(axis=1), slope, se, eig, alpha, alpha_an, records
    )


# ----------------------------------------------------------------------------------------------
# training a real PINN
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PINNProblem:
    """A linear PDE problem ``T u = f`` in the domain, ``B_k u = g_k`` on boundary pieces.

    Attributes:
        residual: ``T``.
        boundary: ``(B_1, ...)``.
        x_residual: ``(N_r, d)``; ``f``: ``(N_r,)`` right-hand side at those points.
        x_boundary: ``((N_1, d), ...)``; ``g``: ``((N_1,), ...)`` boundary data.
        weights: loss weights ``(w_r, w_1, ...)``.
        exact: optional exact solution ``u(x)`` on ``(n, d)`` points, for errors.
        name: label.
    """

    residual: Operator
    boundary: tuple[Operator, ...]
    x_residual: np.ndarray
    f: np.ndarray
    x_boundary: tuple[np.ndarray, ...]
    g: tuple[np.ndarray, ...]
    weights: tuple[float, ...] | None = None
    exact: Callable | None = field(default=None, compare=False)
    name: str = ""

    def kernel(self, net: MLP) -> PINNKernel:
        """The infinite-width PINN kernel of this problem."""
        return pinn_kernel(
            net,
            self.residual,
            list(self.boundary),
            self.x_residual,
            list(self.x_boundary),
            self.weights,
        )

    def empirical_kernel(self, net: MLP, width: int, params) -> np.ndarray:
        """The finite-width PINN kernel ``J Jᵀ`` of ``net.finite(width)`` at ``params``.

        Rows/columns ordered as the residual points, then each boundary piece (unweighted,
        like :attr:`PINNKernel.K`).
        """
        ops = [self.residual, *self.boundary]
        xs = [jnp.asarray(self.x_residual), *(jnp.asarray(x) for x in self.x_boundary)]
        rows = [
            [
                empirical_ntk(
                    net, width, xs[i], xs[j], operator=ops[i], operator2=ops[j], params=params
                )
                for j in range(len(ops))
            ]
            for i in range(len(ops))
        ]
        return np.asarray(jnp.block(rows))

    @property
    def loss_weights(self) -> np.ndarray:
        sizes = [self.x_residual.shape[0], *(xb.shape[0] for xb in self.x_boundary)]
        w = self.weights or (1.0,) * len(sizes)
        return np.concatenate([np.full(n, wk / n) for n, wk in zip(sizes, w, strict=True)])


def poisson_1d(n_residual: int = 64, frequency: float = 1.0) -> PINNProblem:
    """``u'' = f`` on [0, 1], ``u(0) = u(1) = 0``, exact ``u = sin(k π x)`` (Wang–Yu–Perdikaris §5)."""
    from .operators import derivative, identity

    xr = np.linspace(0.0, 1.0, n_residual)[:, None]
    k = frequency * math.pi
    f = -(k**2) * np.sin(k * xr[:, 0])
    xb = np.array([[0.0], [1.0]])
    g = np.sin(k * xb[:, 0])
    return PINNProblem(
        derivative(("x",), "x", 2),
        (identity(("x",)),),
        xr,
        f,
        (xb,),
        (g,),
        exact=lambda x: np.sin(k * np.asarray(x)[:, 0]),
        name=f"1-D Poisson, u = sin({frequency:g}πx)",
    )


def poisson_2d(n_per_dim: int = 12, n_boundary: int = 12) -> PINNProblem:
    """``-Δu = f`` on [0, 1]², ``u = 0`` on the boundary, exact ``u = sin(πx) sin(πy)``."""
    from .domains import box_boundary
    from .operators import identity, laplacian

    t = np.linspace(0.0, 1.0, n_per_dim + 2)[1:-1]
    xr = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    f = 2 * math.pi**2 * np.sin(math.pi * xr[:, 0]) * np.sin(math.pi * xr[:, 1])
    xb = box_boundary((0.0, 0.0), (1.0, 1.0), n_boundary, rule="uniform").points
    return PINNProblem(
        -1 * laplacian(("x", "y")),
        (identity(("x", "y")),),
        xr,
        f,
        (xb,),
        (np.zeros(len(xb)),),
        exact=lambda x: (
            np.sin(math.pi * np.asarray(x)[:, 0]) * np.sin(math.pi * np.asarray(x)[:, 1])
        ),
        name="2-D Poisson, u = sin(πx) sin(πy)",
    )


def _apply_operator(apply_fn, params, op: Operator, x: jax.Array) -> jax.Array:
    """``(T u_θ)(x_i)`` for all points, by nested forward-mode in ``x``."""
    coeffs = op.coefficient_values(x)

    def u(p):
        return apply_fn(params, p[None])[0, 0]

    cmat = jnp.stack([coeffs[key] for key, _ in op.terms], axis=1)
    return jax.vmap(lambda p, c: apply_at(op, u, p, c))(x, cmat)


@dataclass(frozen=True)
class TrainingRecord:
    """What :func:`train_pinn` records at each checkpoint.

    Attributes:
        steps: ``(m,)`` step numbers.
        losses: ``(m, pieces)`` loss per piece ``w_k/(2N_k) Σ e²``.
        drift: ``(m,)`` ``‖K_t - K_0‖_F / ‖K_0‖_F`` of the full empirical PINN kernel.
        block_drift: ``(m, pieces)`` the same per diagonal block.
        param_change: ``(m,)`` ``‖θ_t - θ_0‖ / ‖θ_0‖``.
        errors0: ``(N,)`` initial stacked errors ``(r, b_1, ...)``.
        K0: ``(N, N)`` empirical PINN kernel at initialization.
        learning_rate: ``η`` used.
        l2_error: relative L2 error of the final solution at the residual points (if exact).
        params: the final parameters.
    """

    steps: np.ndarray
    losses: np.ndarray
    drift: np.ndarray
    block_drift: np.ndarray
    param_change: np.ndarray
    errors0: np.ndarray
    K0: np.ndarray
    learning_rate: float
    l2_error: float
    params: object = field(repr=False)


def train_pinn(
    net: MLP,
    width: int,
    problem: PINNProblem,
    steps: int,
    *,
    learning_rate: float | None = None,
    lr_factor: float = 0.5,
    seed: int = 0,
    record_every: int | None = None,
    track_kernel: bool = True,
) -> TrainingRecord:
    """Full-batch gradient descent on the PINN loss of ``problem`` with ``net.finite(width)``.

    The default learning rate is ``lr_factor × 2 / λ_max(Λ^{1/2} K Λ^{1/2})`` with ``K`` the
    infinite-width PINN kernel: gradient descent on the linearized model is stable for
    ``η < 2/λ_max`` (Wang, Yu, Perdikaris, §4; Lee et al. 2019, arXiv 1902.06720, §2.3).

    Returns:
        :class:`TrainingRecord`; loss pieces and NTK drift every ``record_every`` steps.
    """
    from jax.flatten_util import ravel_pytree

    d = problem.x_residual.shape[1]
    params = init_params(net, width, d, seed)
    _, apply_fn = net.finite(width)
    ops = [problem.residual, *problem.boundary]
    xs = [jnp.asarray(problem.x_residual), *(jnp.asarray(x) for x in problem.x_boundary)]
    targets = [jnp.asarray(problem.f), *(jnp.asarray(g) for g in problem.g)]
    sizes = [x.shape[0] for x in xs]
    wk = problem.weights or (1.0,) * len(ops)
    if learning_rate is None:
        lam_max = float(
            scipy.linalg.eigh(np.asarray(problem.kernel(net).symmetric), eigvals_only=True)[-1]
        )
        learning_rate = lr_factor * 2.0 / lam_max

    def errors(p):
        return [
            _apply_operator(apply_fn, p, op, x) - t
            for op, x, t in zip(ops, xs, targets, strict=True)
        ]

    def pieces(p):
        return jnp.stack(
            [w / (2 * n) * jnp.sum(e**2) for w, n, e in zip(wk, sizes, errors(p), strict=True)]
        )

    loss = lambda p: jnp.sum(pieces(p))  # noqa: E731

    @jax.jit
    def step(p):
        g = jax.grad(loss)(p)
        return jax.tree_util.tree_map(lambda a, b: a - learning_rate * b, p, g)

    pieces_jit = jax.jit(pieces)
    errors_jit = jax.jit(errors)
    record_every = record_every or max(steps // 20, 1)
    flat = jax.jit(lambda q: ravel_pytree(q)[0])
    theta0 = np.asarray(flat(params))
    K0 = problem.empirical_kernel(net, width, params) if track_kernel else np.zeros((1, 1))
    off = np.concatenate([[0], np.cumsum(sizes)])
    e0 = np.concatenate([np.asarray(e) for e in errors_jit(params)])
    steps_rec, losses, drift, bdrift, pchange = [], [], [], [], []
    p = params
    for t in range(steps + 1):
        if t % record_every == 0 or t == steps:
            steps_rec.append(t)
            losses.append(np.asarray(pieces_jit(p)))
            theta = np.asarray(flat(p))
            pchange.append(float(np.linalg.norm(theta - theta0) / np.linalg.norm(theta0)))
            if track_kernel:
                Kt = problem.empirical_kernel(net, width, p)
                drift.append(float(np.linalg.norm(Kt - K0) / np.linalg.norm(K0)))
                bdrift.append(
                    [
                        float(
                            np.linalg.norm(
                                Kt[off[i] : off[i + 1], off[i] : off[i + 1]]
                                - K0[off[i] : off[i + 1], off[i] : off[i + 1]]
                            )
                            / np.linalg.norm(K0[off[i] : off[i + 1], off[i] : off[i + 1]])
                        )
                        for i in range(len(sizes))
                    ]
                )
        if t < steps:
            p = step(p)
    l2 = math.nan
    if problem.exact is not None:
        pred = np.asarray(jax.jit(apply_fn)(p, xs[0]))[:, 0]
        ex = problem.exact(np.asarray(xs[0]))
        l2 = float(np.linalg.norm(pred - ex) / np.linalg.norm(ex))
    return TrainingRecord(
        np.array(steps_rec),
        np.array(losses),
        np.array(drift),
        np.array(bdrift),
        np.array(pchange),
        e0,
        K0,
        float(learning_rate),
        l2,
        p,
    )


def predicted_losses(
    K,
    loss_weights,
    errors0,
    steps: Sequence[int],
    learning_rate: float,
    sizes: Sequence[int],
    piece_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Loss pieces predicted by the linear NTK dynamics ``e(t) = exp(-η K Λ t) e(0)``.

    Computed stably through the symmetric form: with ``S = Λ^{1/2} K Λ^{1/2} = V diag(λ) Vᵀ``,
    ``Λ^{1/2} e(t) = V exp(-η λ t) Vᵀ Λ^{1/2} e(0)``. (Gradient descent with ``t`` steps of size
    ``η`` is approximated by gradient flow for time ``η t``.)

    Args:
        K: ``(N, N)`` PINN kernel (analytic, or empirical at initialization).
        loss_weights: ``(N,)`` diagonal of ``Λ`` (``w_k / N_k``).
        errors0: ``(N,)`` initial errors.
        steps: step numbers.
        learning_rate: ``η``.
        sizes: ``(N_r, N_1, ...)`` piece sizes.
        piece_weights: ``(w_r, w_1, ...)`` (default 1).

    Returns:
        ``(len(steps), pieces)`` predicted loss pieces ``w_k/(2N_k) |e_k(t)|²``.
    """
    lam_w = np.asarray(loss_weights, float)
    s = np.sqrt(lam_w)
    S = s[:, None] * np.asarray(K) * s[None, :]
    ev, V = scipy.linalg.eigh(0.5 * (S + S.T))
    ev = np.clip(ev, 0.0, None)  # round-off negatives would grow; the true spectrum is ≥ 0
    c0 = V.T @ (s * np.asarray(errors0))
    off = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for t in steps:
        e_scaled = V @ (np.exp(-learning_rate * ev * t) * c0)  # = Λ^{1/2} e(t)
        # loss piece k: w_k/(2N_k) |e_k|² = ½ |Λ^{1/2} e|² restricted to piece k
        out.append(
            [0.5 * float(np.sum(e_scaled[off[i] : off[i + 1]] ** 2)) for i in range(len(sizes))]
        )
    return np.array(out)
