"""Track the empirical PINN kernel of any model inside the user's own training loop.

:class:`NTKTracker` is called every ``k`` steps with the current parameters (or with nothing,
for a Flax NNX module updated in place). Each call records

* the NTK drift ``‖K_t − K_0‖_F / ‖K_0‖_F``, full and per diagonal block (Wang, Yu, Perdikaris,
  arXiv 2007.14527, §5, Fig. 3);
* the top eigenvalues, condition number and effective rank of ``Λ^{1/2} K Λ^{1/2}``;
* the trace weights ``Tr K / Tr K_kk`` (their Algorithm 1);
* the actual loss pieces ``w_k/(2N_k) Σ_i e_i²`` and, with ``learning_rate``, the pieces the
  linear dynamics of the *initial* kernel predict for that step (their eq. (4.9)).

Records are plain JSON-ready dicts; :meth:`NTKTracker.save` writes them atomically and
:meth:`NTKTracker.plot` draws drift, eigenvalues and predicted vs actual losses.

Example (optax, Flax NNX)::

    tracker = NTKTracker(problem, model, learning_rate=1e-3)
    for step in range(2001):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        if step % 200 == 0:
            tracker(step)                  # NNX: reads the module's current parameters
    tracker.save("ntk_track.json"); tracker.plot("ntk_track.png")
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from .models import as_float64, wrap
from .networks import MLP
from .operator_kernels import _unbind
from .pinn import PINNKernel, PINNProblem
from .spectra import spectrum, trace_weights
from .training import _apply_operator, predicted_losses

__all__ = ["NTKTracker"]


class NTKTracker:
    """Records the empirical PINN kernel's drift, spectrum and loss pieces during training.

    Args:
        problem: the :class:`~ntk_theory.PINNProblem` being trained.
        model: the network (anything :func:`~ntk_theory.empirical_ntk` takes).
        width: hidden width, for our :class:`~ntk_theory.MLP` only.
        learning_rate: ``η`` of the user's (full-batch gradient-descent) loop; enables the
            predicted loss pieces. Other optimizers: leave it out (the prediction assumes GD).
        top: how many leading eigenvalues to record.
        output: the output index for a multi-output model and a one-unknown problem.

    Example:
        >>> tracker = NTKTracker(problem, model, learning_rate=1e-3)
        >>> tracker(0); ...; tracker(1000)
        >>> tracker.records[-1]["drift"]
    """

    def __init__(
        self,
        problem: PINNProblem,
        model,
        *,
        width: int | None = None,
        learning_rate: float | None = None,
        top: int = 5,
        output: int | None = None,
    ):
        if not isinstance(problem, PINNProblem):
            raise TypeError(f"problem must be a PINNProblem, got {type(problem).__name__}.")
        if learning_rate is not None and not (float(learning_rate) > 0):
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}.")
        self.problem, self.model, self.width = problem, model, width
        self.learning_rate = None if learning_rate is None else float(learning_rate)
        self.top, self.output = int(top), output
        self.records: list[dict] = []
        self._K0: PINNKernel | None = None
        self._e0: np.ndarray | None = None
        self._step0 = 0

    # -- one checkpoint ------------------------------------------------------------------
    def __call__(self, step: int, params=None) -> dict:
        """Record step ``step`` with ``params`` (default: the model's own, for NNX/Equinox)."""
        K = self.problem.empirical_kernel(self.model, width=self.width, params=params)
        errors = self._errors(params)
        if self._K0 is None:
            self._K0, self._e0, self._step0 = K, errors, int(step)
        K0 = np.asarray(self._K0.K)
        Kt = np.asarray(K.K)
        off = K.offsets
        block_drift = {}
        for i, label in enumerate(K.labels):
            sl = slice(off[i], off[i + 1])
            block_drift[label] = float(
                np.linalg.norm(Kt[sl, sl] - K0[sl, sl]) / np.linalg.norm(K0[sl, sl])
            )
        spec = spectrum(np.asarray(K.symmetric))
        lam = np.asarray(self.problem.lam)
        losses = [
            0.5 * float(np.sum(lam[off[i] : off[i + 1]] * errors[off[i] : off[i + 1]] ** 2))
            for i in range(len(K.labels))
        ]
        record = {
            "step": int(step),
            "drift": float(np.linalg.norm(Kt - K0) / np.linalg.norm(K0)),
            "block_drift": block_drift,
            "top_eigenvalues": [float(v) for v in spec.eigenvalues[: self.top]],
            "condition_number": float(spec.condition_number),
            "effective_rank": float(spec.effective_rank),
            "trace_weights": trace_weights(K),
            "losses": dict(zip(K.labels, losses, strict=True)),
        }
        if self.learning_rate is not None:
            pred = predicted_losses(
                self._K0, self._e0, [int(step) - self._step0], self.learning_rate
            )
            record["predicted_losses"] = dict(
                zip(K.labels, (float(v) for v in pred.losses[0]), strict=True)
            )
        self.records.append(record)
        return record

    def _errors(self, params) -> np.ndarray:
        """Stacked errors ``(T u)(x) − f`` of every piece."""
        if isinstance(self.model, MLP):
            if params is None:
                raise ValueError("For an MLP, pass the current params to the tracker.")
            _, apply_fn = self.model.finite(self.width or int(np.shape(params[0][0])[1]))
        else:
            w = wrap(self.model, params, self.output)
            params = as_float64(w.params)

            def apply_fn(theta, xb):  # (1, d) -> (1, outputs), as _apply_operator expects
                return jnp.reshape(w.apply(w.static, theta, w.aux, xb[0]), (1, -1))

        out = []
        for bound, x, target in self.problem.pieces:
            op, fields = _unbind(bound, len(x), "operator")
            vals = _apply_operator(apply_fn, params, op, jnp.asarray(x), fields)
            out.append(np.asarray(vals) - target)
        return np.concatenate(out)

    # -- output --------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the records as JSON (to a temporary name, then renamed: never half-written)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"problem": self.problem.name, "records": self.records}))
        os.replace(tmp, path)
        return path

    def plot(self, path=None):
        """Drift, top eigenvalues and (predicted vs actual) loss pieces against step."""
        import matplotlib.pyplot as plt

        if not self.records:
            raise ValueError("Nothing recorded yet: call the tracker during training first.")
        steps = [r["step"] for r in self.records]
        fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
        ax[0].plot(steps, [r["drift"] for r in self.records], "k-o", label="full")
        for label in self.records[0]["block_drift"]:
            ax[0].plot(steps, [r["block_drift"][label] for r in self.records], label=label)
        ax[0].set(xlabel="step", ylabel=r"$\|K_t-K_0\|_F/\|K_0\|_F$", title="NTK drift")
        ax[0].legend(fontsize=7)
        tops = np.array([r["top_eigenvalues"] for r in self.records])
        ax[1].semilogy(steps, tops)
        ax[1].set(
            xlabel="step",
            ylabel="eigenvalue",
            title=r"top eigenvalues of $\Lambda^{1/2}K\Lambda^{1/2}$",
        )
        for k, label in enumerate(self.records[0]["losses"]):
            line = ax[2].semilogy(
                steps, [r["losses"][label] for r in self.records], "o-", label=label
            )
            if "predicted_losses" in self.records[0]:
                ax[2].semilogy(
                    steps,
                    [r["predicted_losses"][label] for r in self.records],
                    "--",
                    color=line[0].get_color(),
                    label=f"{label} (predicted)" if k == 0 else None,
                )
        ax[2].set(xlabel="step", ylabel="loss piece", title="loss: actual (—) vs predicted (--)")
        ax[2].legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig
