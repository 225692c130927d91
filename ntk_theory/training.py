"""Training real PINNs and the infinite-width prediction of their loss curves.

* :func:`train_pinn` -- full-batch gradient descent on the PINN loss of a
  :class:`~ntk_theory.pinn.PINNProblem` with ``net.finite(width)``, recording the loss pieces,
  the NTK drift ``‖K_t - K_0‖_F / ‖K_0‖_F`` (full and per block) and the parameter change
  (Wang, Yu, Perdikaris, arXiv 2007.14527, §5, Figs. 2–3);
* :func:`predicted_losses` -- the linear NTK dynamics ``e(t) = exp(-η K Λ t) e(0)`` applied to
  the initial errors (their eq. (4.9)), for any :class:`~ntk_theory.pinn.PINNKernel` (analytic or
  empirical), to compare with the actual curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .empirical import init_params
from .networks import MLP, check_points
from .operators import Operator, apply_at
from .pinn import PINNKernel, PINNProblem

__all__ = [
    "EnsembleRecord",
    "LossPrediction",
    "TrainingRecord",
    "predicted_losses",
    "train_ensemble",
    "train_pinn",
]


def _apply_operator(apply_fn, params, op: Operator, x: jax.Array, fields=None) -> jax.Array:
    """``(T u_θ)(x_i)`` for all points, by nested forward-mode in ``x``; ``apply_fn(params, X)``
    maps ``(n, d)`` points to ``(n, outputs)``; ``fields``: per-point field values of ``op``."""
    coeffs = op.coefficient_values(x, fields)
    n_out = len(op.functions)

    def u(p):
        out = apply_fn(params, p[None])[0]
        return out[0] if n_out == 1 else out

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
        errors0: ``(N,)`` initial stacked errors (pieces in order).
        K0: the empirical PINN kernel at initialization (a :class:`PINNKernel`).
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
    K0: PINNKernel | None
    learning_rate: float
    l2_error: float
    params: object = field(repr=False)


def _loss_functions(apply_fn, problem: PINNProblem):
    """``(errors, pieces)``: the stacked errors ``T_p u_θ(x_p) - target_p`` per piece and the
    loss pieces ``w_p/(2N_p) Σ e²`` as functions of the parameters."""
    ops = [op for op, _, _ in problem.pieces]
    xs = [jnp.asarray(x) for _, x, _ in problem.pieces]
    targets = [jnp.asarray(t) for _, _, t in problem.pieces]

    def errors(p):
        return [
            _apply_operator(apply_fn, p, op, x) - t
            for op, x, t in zip(ops, xs, targets, strict=True)
        ]

    def pieces(p):
        return jnp.stack(
            [
                w / (2 * n) * jnp.sum(e**2)
                for w, n, e in zip(problem.loss_weights, problem.sizes, errors(p), strict=True)
            ]
        )

    return errors, pieces


def stable_learning_rate(K: PINNKernel, factor: float = 0.5) -> float:
    """``factor × 2 / λ_max(Λ^{1/2} K Λ^{1/2})``: gradient descent on the linearized model is
    stable for ``η < 2/λ_max`` (Wang, Yu, Perdikaris §4; Lee et al. 2019, arXiv 1902.06720, §2.3)."""
    lam_max = float(scipy.linalg.eigh(np.asarray(K.symmetric), eigvals_only=True)[-1])
    return factor * 2.0 / lam_max


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
    infinite-width PINN kernel (:func:`stable_learning_rate`).

    Returns:
        :class:`TrainingRecord`; loss pieces and NTK drift every ``record_every`` steps.
    """
    from jax.flatten_util import ravel_pytree

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}.")
    d = problem.x_residual.shape[1]
    params = init_params(net, width, d, seed)
    _, apply_fn = net.finite(width)
    xs = [jnp.asarray(x) for _, x, _ in problem.pieces]
    sizes = problem.sizes
    if learning_rate is None:
        learning_rate = stable_learning_rate(problem.kernel(net), lr_factor)
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate!r}.")

    errors, pieces = _loss_functions(apply_fn, problem)
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
    K0 = problem.empirical_kernel(net, width, params) if track_kernel else None
    off = np.concatenate([[0], np.cumsum(sizes)])
    e0 = np.concatenate([np.asarray(e) for e in errors_jit(params)])
    steps_rec, losses, drift, bdrift, pchange = [], [], [], [], []
    p = params
    K0m = None if K0 is None else np.asarray(K0.K)
    for t in range(steps + 1):
        if t % record_every == 0 or t == steps:
            steps_rec.append(t)
            losses.append(np.asarray(pieces_jit(p)))
            theta = np.asarray(flat(p))
            pchange.append(float(np.linalg.norm(theta - theta0) / np.linalg.norm(theta0)))
            if track_kernel:
                Kt = np.asarray(problem.empirical_kernel(net, width, p).K)
                drift.append(float(np.linalg.norm(Kt - K0m) / np.linalg.norm(K0m)))
                bdrift.append(
                    [
                        float(
                            np.linalg.norm(
                                Kt[off[i] : off[i + 1], off[i] : off[i + 1]]
                                - K0m[off[i] : off[i + 1], off[i] : off[i + 1]]
                            )
                            / np.linalg.norm(K0m[off[i] : off[i + 1], off[i] : off[i + 1]])
                        )
                        for i in range(len(sizes))
                    ]
                )
        if t < steps:
            p = step(p)
    l2 = math.nan
    if problem.exact is not None:
        pred = np.asarray(jax.jit(apply_fn)(p, xs[0]))
        ex = np.asarray(problem.exact(np.asarray(xs[0])))
        pred = pred[:, 0] if ex.ndim == 1 else pred
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


@dataclass(frozen=True)
class LossPrediction:
    """Loss pieces predicted by the linear NTK dynamics (see :func:`predicted_losses`).

    Attributes:
        steps: ``(m,)`` step numbers.
        losses: ``(m, pieces)`` predicted ``w_k/(2N_k) |e_k(t)|²``.
        labels: names of the pieces.
        learning_rate: ``η``.
    """

    steps: np.ndarray
    losses: np.ndarray
    labels: tuple[str, ...]
    learning_rate: float


def predicted_losses(
    K: PINNKernel,
    errors0,
    steps: Sequence[int],
    learning_rate: float,
) -> LossPrediction:
    """Loss pieces predicted by the linear NTK dynamics ``e(t) = exp(-η K Λ t) e(0)``.

    Computed stably through the symmetric form: with ``S = Λ^{1/2} K Λ^{1/2} = V diag(λ) Vᵀ``,
    ``Λ^{1/2} e(t) = V exp(-η λ t) Vᵀ Λ^{1/2} e(0)``. (Gradient descent with ``t`` steps of size
    ``η`` is approximated by gradient flow for time ``η t``; :func:`ntk_theory.predict` has the
    exact discrete dynamics.)

    Args:
        K: a :class:`PINNKernel` (analytic, or :meth:`PINNProblem.empirical_kernel`).
        errors0: ``(N,)`` initial errors (pieces stacked like ``K``).
        steps: step numbers.
        learning_rate: ``η``.

    Returns:
        :class:`LossPrediction`.

    References:
        Wang, Yu, Perdikaris (arXiv 2007.14527), eq. (4.9).
    """
    if not isinstance(K, PINNKernel):
        raise TypeError(
            f"predicted_losses takes a PINNKernel (problem.kernel(net) or problem.empirical_kernel(...)), "
            f"got {type(K).__name__}."
        )
    e0 = np.asarray(errors0, dtype=float)
    if e0.shape != (int(np.sum(K.sizes)),):
        raise ValueError(f"errors0 must have shape ({int(np.sum(K.sizes))},), got {e0.shape}.")
    steps = np.asarray(steps)
    s = np.sqrt(np.asarray(K.lam))
    S = np.asarray(K.symmetric)
    ev, V = scipy.linalg.eigh(0.5 * (S + S.T))
    ev = np.clip(ev, 0.0, None)  # round-off negatives would grow; the true spectrum is ≥ 0
    c0 = V.T @ (s * e0)
    off = K.offsets
    out = []
    for t in steps:
        e_scaled = V @ (np.exp(-learning_rate * ev * t) * c0)  # = Λ^{1/2} e(t)
        # loss piece k: w_k/(2N_k) |e_k|² = ½ |Λ^{1/2} e|² restricted to piece k
        out.append(
            [0.5 * float(np.sum(e_scaled[off[i] : off[i + 1]] ** 2)) for i in range(len(K.sizes))]
        )
    return LossPrediction(steps, np.array(out), K.labels, float(learning_rate))


@dataclass(frozen=True)
class EnsembleRecord:
    """Outputs of an ensemble of independently initialized networks during training.

    Attributes:
        steps: ``(m,)`` step numbers.
        outputs: ``(m, seeds, n)`` ``T* u_θ`` at the test points, per step and seed.
        x_test: ``(n, d)`` test points.
        seeds: the initialization seeds.
        width: hidden width.
        learning_rate: ``η``.
    """

    steps: np.ndarray
    outputs: np.ndarray
    x_test: np.ndarray
    seeds: tuple[int, ...]
    width: int
    learning_rate: float

    @property
    def mean(self) -> np.ndarray:
        """``(m, n)`` ensemble mean."""
        return self.outputs.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        """``(m, n)`` ensemble standard deviation (``ddof = 1``)."""
        return self.outputs.std(axis=1, ddof=1)


def train_ensemble(
    net: MLP,
    width: int,
    problem: PINNProblem,
    steps: Sequence[int],
    x_test,
    *,
    seeds: Sequence[int] = tuple(range(16)),
    learning_rate: float | None = None,
    T_test: Operator | None = None,
) -> EnsembleRecord:
    """Train ``len(seeds)`` networks ``net.finite(width)`` on ``problem`` at once (full-batch
    gradient descent, vectorized over the seeds) and record ``T* u_θ(x_test)`` at ``steps``.

    The finite-width counterpart of :func:`ntk_theory.predict`: as the width grows the
    ensemble's mean and standard deviation approach the predicted ``μ_t`` and ``σ_t``
    (Lee et al. 2019, arXiv 1902.06720, Fig. 3). The default learning rate is ``predict``'s,
    ``1/λ_max`` of the infinite-width kernel.

    Args:
        net, width: the architecture and hidden width.
        problem: the PINN problem.
        steps: strictly increasing step numbers ``≥ 0`` at which outputs are recorded.
        x_test: ``(n, d)`` test points.
        seeds: initialization seeds (``init_params``).
        learning_rate: ``η``.
        T_test: operator applied to the output at the test points (default: ``u``).

    Returns:
        :class:`EnsembleRecord`.

    Example:
        >>> rec = train_ensemble(MLP(1, "tanh"), 512, poisson_1d(16), [0, 100], x, seeds=range(8))
        >>> rec.mean.shape   # (2, n)
    """
    from .operators import identity
    from .prediction import _check_steps

    stamps = _check_steps(steps, "gd").astype(int)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}.")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must name at least one initialization.")
    d = problem.x_residual.shape[1]
    x_test = np.asarray(check_points(x_test, None, "x_test")[0])
    if x_test.shape[1] != d:
        raise ValueError(
            f"x_test has points of dimension {x_test.shape[1]}, the problem {d}; pass (n, {d})."
        )
    if learning_rate is None:
        learning_rate = stable_learning_rate(problem.kernel(net), 0.5)
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate!r}.")
    _, apply_fn = net.finite(width)
    _, pieces = _loss_functions(apply_fn, problem)
    T_star = identity(problem.residuals[0].coords) if T_test is None else T_test
    xt = jnp.asarray(x_test)
    params = jax.tree_util.tree_map(
        lambda *leaves: jnp.stack(leaves), *[init_params(net, width, d, s) for s in seeds]
    )
    eta = float(learning_rate)

    def step(_, p):
        g = jax.grad(lambda q: jnp.sum(pieces(q)))(p)
        return jax.tree_util.tree_map(lambda a, b: a - eta * b, p, g)

    advance = jax.jit(jax.vmap(lambda p, k: jax.lax.fori_loop(0, k, step, p), (0, None)))
    observe = jax.jit(jax.vmap(lambda p: _apply_operator(apply_fn, p, T_star, xt)))
    out, done = [], 0
    for stamp in stamps:
        params = advance(params, stamp - done)
        done = int(stamp)
        out.append(np.asarray(observe(params)))
    return EnsembleRecord(
        stamps, np.array(out).reshape(len(stamps), len(seeds), -1), x_test, seeds, width, eta
    )
