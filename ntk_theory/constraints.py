"""Hard constraints: a network whose output satisfies boundary conditions exactly.

``MLP(..., output_transform=OutputTransform(D, g))`` is the network

.. math::
    u(x) = g(x) + D(x)\\, N(x),

with ``N`` the fully-connected network, ``D`` vanishing where the boundary condition holds
(``D = x(1 - x)`` on [0, 1]) and ``g`` satisfying it (Lagaris, Likas, Fotiadis 1998, IEEE TNN 9;
Sukumar & Srivastava 2022, CMAME 389). Only ``N`` has parameters, so the NTK is
``D(x) D(x') Θ_N(x, x')``, and an operator ``T`` of the residual acts on ``D N``: its kernel is

.. math::
    K_{T,S}(x, x') = (T∘D)_x\\, (S∘D)_{x'}\\, Θ_N(x, x'),

where ``T∘D`` is built by the operator algebra (:meth:`Operator.__matmul__`, the Leibniz rule on
sympy coefficients), so every operator kernel of a constrained network runs through the same
engine as the plain one. A boundary operator ``B`` whose ``B∘D`` vanishes at its points (a
Dirichlet condition that ``D`` enforces) has kernel rows that are identically zero: that piece
of the loss is constant, and :func:`~ntk_theory.pinn_kernel` refuses it with an error that says
so.

``D`` and ``g`` are parsed (never evaluated) from text by :mod:`ntk_theory._parse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
import sympy as sp

from ._parse import ExpressionError, parse_expression
from .operators import Operator, OperatorError, _check_coords, identity

__all__ = ["OutputTransform"]


class OutputTransform:
    """``u(x) = g(x) + D(x) N(x)``: exact boundary conditions by construction.

    .. math::
        Θ_u(x, x') = D(x) D(x') Θ_N(x, x'), \\qquad
        T_x S_{x'} Θ_u = (T∘D)_x (S∘D)_{x'} Θ_N

    Args:
        D: the distance-like factor, an expression in the coordinates (``"x*(1 - x)"``).
        g: the lift satisfying the boundary data (default 0).
        coords: coordinate names, in the order of the points' columns.
        params: values of named parameters used by ``D`` or ``g``.

    Example:
        >>> net = MLP(1, "tanh", W_std=1.0, b_std=1.0,
        ...           output_transform=OutputTransform("x*(1 - x)", coords=("x",)))
        >>> K = operator_kernel(net, derivative(("x",), "x", 2), x)   # (∂²∘D)(∂²∘D) Θ

    References:
        Lagaris, Likas, Fotiadis (1998), IEEE TNN 9(5), eq. (11); Wang, Yu, Perdikaris
        (arXiv 2007.14527) for the PINN kernel it modifies.
    """

    def __init__(
        self,
        D: str | sp.Expr,
        g: str | sp.Expr | float = 0,
        coords: Sequence[str] = ("x",),
        params: Mapping[str, float] | None = None,
    ):
        self.coords = _check_coords(coords)
        symbols = {c: sp.Symbol(c, real=True) for c in self.coords}
        values = {}
        for name, v in dict(params or {}).items():
            if not isinstance(name, str) or not name.isidentifier() or name in symbols:
                raise OperatorError(
                    f"parameter name {name!r} must be an identifier other than the coordinates."
                )
            try:
                values[name] = sp.Float(float(v)) if not isinstance(v, sp.Expr) else v
            except (TypeError, ValueError):
                raise OperatorError(f"parameter {name!r} must be a number, got {v!r}.") from None
        self.params = tuple(sorted((k, float(v)) for k, v in values.items()))
        names = {**symbols, **values}
        self.D = self._read(D, "D", names)
        self.g = self._read(g, "g", names)
        if self.D == 0:
            raise OperatorError("D = 0 makes the output g(x) with no trainable part.")

    def _read(self, expr, what: str, names: dict) -> sp.Expr:
        if isinstance(expr, (int, float)):
            return sp.sympify(expr)
        if isinstance(expr, sp.Expr):
            unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in names)
            if unknown:
                raise OperatorError(
                    f"The output transform's {what} uses {unknown}, which are not coordinates "
                    f"{self.coords} or parameters."
                )
            return expr.xreplace({s: names[str(s)] for s in expr.free_symbols})
        try:
            return parse_expression(expr, names, what=f"output transform's {what}")
        except ExpressionError as err:
            message = str(err)
            if "unknown name" in message:
                message += (
                    f" {what} may use the coordinates {self.coords}, parameters given with "
                    "params={...}, pi, E and elementary functions."
                )
            raise OperatorError(message) from None

    # -- the operator algebra ------------------------------------------------------------
    @property
    def multiplier(self) -> Operator:
        """The operator ``N ↦ D N`` (order 0)."""
        return self.D * identity(self.coords)

    def compose(self, T: Operator) -> Operator:
        """``T∘D``: the operator acting on ``N`` when ``T`` acts on ``u = g + D N``."""
        if T.coords != self.coords:
            raise OperatorError(
                f"The operator acts on coordinates {T.coords} but the output transform is written "
                f"in {self.coords}; use the same names, in the same order."
            )
        if len(T.functions) != 1:
            raise OperatorError(
                "An output transform applies to a network with one output; the operator acts on "
                f"{len(T.functions)} unknowns {T.functions}."
            )
        return T @ (self.D * identity(self.coords, T.functions[0]))

    # -- values ----------------------------------------------------------------------------
    def D_values(self, x) -> np.ndarray | jax.Array:
        """``D`` at points ``(n, d)``: NumPy for concrete points, JAX under tracing."""
        return _values(self.multiplier, x)

    def g_values(self, x) -> np.ndarray | jax.Array:
        """``g`` at points ``(n, d)`` (zeros where ``g = 0``)."""
        if self.g == 0:
            return np.zeros(np.shape(x)[0]) if not isinstance(x, jax.core.Tracer) else 0.0 * x[:, 0]
        return _values(self.g * identity(self.coords), x)

    def lift_values(self, T, x) -> np.ndarray:
        """``(T g)(x)`` at points ``(n, d)``: what the lift contributes to ``T u`` (exact, by
        sympy differentiation of ``g``). ``T`` may be bound to field values."""
        from .operator_kernels import _unbind  # operator_kernels imports networks, which imports us

        n = np.shape(x)[0]
        op, fields = _unbind(T, n, "T")
        if self.g == 0:
            return np.zeros(n)
        expr = sp.expand(op.to_sympy(self.g))
        if expr == 0:
            return np.zeros(n)
        carrier = identity(self.coords, op.functions[0])
        zero = (0, (0,) * len(self.coords))
        vals = carrier._with_terms({zero: expr}, op).coefficient_values(x, fields)
        return np.asarray(next(iter(vals.values())), dtype=float)

    def check_dim(self, dim: int) -> None:
        if dim != len(self.coords):
            raise ValueError(
                f"The output transform is written in {len(self.coords)} coordinate(s) "
                f"{self.coords} but the points have dimension {dim}."
            )

    # -- identity ----------------------------------------------------------------------------
    def _key(self):
        return ("OutputTransform", sp.srepr(self.D), sp.srepr(self.g), self.coords, self.params)

    def __eq__(self, other) -> bool:
        return isinstance(other, OutputTransform) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"OutputTransform(D={self.D}, g={self.g}, coords={self.coords})"


def _values(op: Operator, x):
    vals = op.coefficient_values(x)
    if not vals:
        return np.zeros(np.shape(x)[0])
    (v,) = vals.values()
    return v
