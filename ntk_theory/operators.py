"""Linear differential operators, parsed and manipulated with sympy.

An :class:`Operator` is ``T = Σ_α a_α(x) ∂^α`` on functions of the coordinates ``coords``:
a tuple of ``(α, a_α)`` terms with sympy coefficients. It is immutable and hashable, so the
sympy work done for an operator (chain rules, lambdified coefficients) is cached.

Ways to build one:

* :meth:`Operator.parse` from a string with subscript derivatives:
  ``Operator.parse("u_t - nu*u_xx", coords=("t", "x"), params={"nu": 0.01})``;
* :meth:`Operator.from_sympy` from an expression in ``sympy.Derivative``'s of a function;
* helpers :func:`identity`, :func:`derivative`, :func:`laplacian`, :func:`neumann`,
  :func:`robin`, :func:`laplace_beltrami` -- all plain :class:`Operator` objects;
* algebra: ``T + S``, ``c * T``, ``T @ S`` (composition ``T(S u)``, Leibniz rule by sympy);
* nonlinear residuals (Burgers, Allen–Cahn) are linearized around a reference function ``u0``
  (Fréchet derivative: the coefficient of ``∂^α v`` is ``∂R/∂(∂^α u)`` at ``u = u0``), which
  gives an operator whose coefficients depend on the coordinates.

Per-point data that is not a function of the coordinates (outward normals of a boundary) are
*fields*: symbols whose values are supplied per point with :meth:`Operator.bind`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

__all__ = [
    "BoundOperator",
    "Operator",
    "derivative",
    "identity",
    "laplace_beltrami",
    "laplacian",
    "neumann",
    "robin",
]

MultiIndex = tuple[int, ...]

#: Names a parsed expression may use besides coordinates, parameters, fields and ``u``.
_ALLOWED_FUNCTIONS: dict[str, object] = {
    name: getattr(sp, name)
    for name in (
        "sin cos tan exp log sqrt sinh cosh tanh atan asin acos erf Abs sign pi E Rational"
    ).split()
}


class OperatorError(ValueError):
    """An operator expression could not be interpreted."""


def _multi_index_name(alpha: MultiIndex, coords: Sequence[str]) -> str:
    if sum(alpha) == 0:
        return "u"
    return "u_" + "".join(c * k for c, k in zip(coords, alpha, strict=True))


@dataclass(frozen=True)
class Operator:
    """A linear differential operator ``T = Σ_α a_α(x) ∂^α`` in the coordinates ``coords``.

    Attributes:
        coords: coordinate names, in the order of the columns of the points ``x``.
        terms: ``((α, a_α), ...)`` with ``α`` a multi-index over ``coords`` and ``a_α`` a sympy
            expression in the coordinates (and fields); sorted, no zero coefficients.
        fields: names of per-point symbols (e.g. normals ``n_x``) bound by :meth:`bind`.
        reference: for a linearized residual given a callable ``u0``: the callable, and
            ``reference_symbols`` maps the symbols standing for ``∂^β u0`` to ``β``.

    Example:
        >>> T = Operator.parse("-(u_xx + u_yy)", coords=("x", "y"))
        >>> T.order
        2
    """

    coords: tuple[str, ...]
    terms: tuple[tuple[MultiIndex, sp.Expr], ...]
    fields: tuple[str, ...] = ()
    reference: Callable | None = field(default=None, compare=False)
    reference_symbols: tuple[tuple[str, MultiIndex], ...] = ()

    def __post_init__(self):
        if not self.terms:
            raise OperatorError("An operator needs at least one term with a non-zero coefficient.")

    # -- construction --------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        expr: str,
        coords: Sequence[str],
        function: str = "u",
        params: Mapping[str, float] | None = None,
        fields: Sequence[str] = (),
        about: str | sp.Expr | Callable | None = None,
    ) -> Operator:
        """Parse ``"u_xx + sin(pi*x)*u"``-style text into an operator.

        Args:
            expr: the operator applied to ``function``; derivatives are written with subscripts
                (``u_t``, ``u_xxy``); coefficients may use the coordinates, ``params``,
                ``fields``, ``pi`` and elementary functions (sin, cos, exp, ...).
            coords: coordinate names, in the order of the columns of the points.
            function: the unknown's name (default ``"u"``).
            params: numeric values of named parameters (``{"nu": 0.01}``).
            fields: names of per-point values supplied later with :meth:`bind`.
            about: for a nonlinear residual (``u*u_x``, ``u**3``), the reference function
                ``u0`` to linearize around: a string or sympy expression in the coordinates, or
                a callable ``u0(x) -> scalar`` on one point ``x`` of shape ``(d,)``.

        Raises:
            OperatorError: unknown symbols or functions, a term without ``function`` (a forcing
                term), or a nonlinear residual without ``about``.
        """
        coords = _check_coords(coords)
        params = dict(params or {})
        for name in list(params) + list(fields):
            if name in coords or name == function:
                raise OperatorError(f"'{name}' is used both as a parameter/field and a coordinate.")
        pattern = re.compile(rf"\b{re.escape(function)}(?:_([A-Za-z0-9]+))?\b")
        placeholders: dict[str, MultiIndex] = {}

        def replace(match: re.Match) -> str:
            alpha = _subscript_to_index(match.group(1) or "", coords, function)
            name = f"__D{'_'.join(map(str, alpha))}"
            placeholders[name] = alpha
            return name

        text = pattern.sub(replace, expr)
        local = dict(_ALLOWED_FUNCTIONS)
        local.update({c: sp.Symbol(c, real=True) for c in coords})
        local.update({f: sp.Symbol(f, real=True) for f in fields})
        local.update(
            {k: sp.Float(v) if isinstance(v, float) else sp.sympify(v) for k, v in params.items()}
        )
        local.update({name: sp.Symbol(name) for name in placeholders})
        try:
            parsed = parse_expr(
                text,
                local_dict=local,
                transformations=standard_transformations,
                evaluate=True,
            )
        except (SyntaxError, TypeError, sp.SympifyError) as err:
            raise OperatorError(f"Could not parse operator {expr!r}: {err}") from err
        _check_names(parsed, expr, coords, fields, placeholders, function)
        dsyms = {sp.Symbol(name): alpha for name, alpha in placeholders.items()}
        return _from_placeholders(parsed, dsyms, coords, tuple(fields), about, expr)

    @classmethod
    def from_sympy(
        cls,
        expr: sp.Expr,
        u: sp.Function | sp.Expr,
        coords: Sequence[sp.Symbol | str],
        fields: Sequence[str] = (),
        about: str | sp.Expr | Callable | None = None,
    ) -> Operator:
        """Build an operator from a sympy expression in ``u`` and its ``Derivative``'s.

        Example:
            >>> x, y = sp.symbols("x y"); u = sp.Function("u")(x, y)
            >>> Operator.from_sympy(u.diff(x, 2) + u.diff(y, 2), u, (x, y)).order
            2
        """
        names = tuple(str(c) for c in coords)
        coords = _check_coords(names)
        symbols = {sp.Symbol(c, real=True) for c in coords} | {sp.Symbol(c) for c in coords}
        func = u.func if isinstance(u, AppliedUndef) else u
        dsyms: dict[sp.Symbol, MultiIndex] = {}
        replacements = {}
        for d in expr.atoms(sp.Derivative):
            if getattr(d.expr, "func", None) != func:
                continue
            alpha = [0] * len(coords)
            for var, count in d.variable_count:
                if str(var) not in coords:
                    raise OperatorError(f"Derivative with respect to {var}, not a coordinate.")
                alpha[coords.index(str(var))] += int(count)
            sym = sp.Symbol(f"__D{'_'.join(map(str, alpha))}")
            dsyms[sym] = tuple(alpha)
            replacements[d] = sym
        expr = expr.xreplace(replacements)
        u_atoms = [a for a in expr.atoms(AppliedUndef) if a.func == func]
        sym0 = sp.Symbol("__D" + "_".join("0" * len(coords)))
        if u_atoms:
            dsyms[sym0] = (0,) * len(coords)
            expr = expr.xreplace({a: sym0 for a in u_atoms})
        expr = expr.xreplace(
            {s: sp.Symbol(str(s), real=True) for s in expr.free_symbols if s in symbols}
        )
        return _from_placeholders(expr, dsyms, coords, tuple(fields), about, str(expr))

    # -- properties ----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    def order(self) -> int:
        """The highest total derivative order ``max |α|``."""
        return max(sum(alpha) for alpha, _ in self.terms)

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(sp.Symbol(c, real=True) for c in self.coords)

    def to_sympy(self, u: sp.Expr | None = None) -> sp.Expr:
        """``Σ_α a_α ∂^α u`` with ``u = Function('u')(*coords)`` by default."""
        xs = self.symbols
        u = sp.Function("u")(*xs) if u is None else u
        out = sp.Integer(0)
        for alpha, coeff in self.terms:
            term = u
            for var, k in zip(xs, alpha, strict=True):
                if k:
                    term = sp.diff(term, var, k)
            out += coeff * term
        return out

    def __repr__(self) -> str:
        parts = []
        for alpha, coeff in self.terms:
            name = _multi_index_name(alpha, self.coords)
            parts.append(name if coeff == 1 else f"({coeff})*{name}")
        text = " + ".join(parts)
        extra = f", fields={self.fields}" if self.fields else ""
        return f"Operator({text}; coords={self.coords}{extra})"

    # -- algebra -------------------------------------------------------------------------
    def _compatible(self, other: Operator) -> None:
        if not isinstance(other, Operator):
            raise TypeError(f"Cannot combine an Operator with {type(other).__name__}.")
        if other.coords != self.coords:
            raise OperatorError(f"Coordinates differ: {self.coords} vs {other.coords}.")
        if self.reference is not None or other.reference is not None:
            if self.reference is not other.reference and None not in (
                self.reference,
                other.reference,
            ):
                raise OperatorError(
                    "Cannot combine operators linearized about different callables."
                )

    def __add__(self, other: Operator) -> Operator:
        self._compatible(other)
        terms = dict(self.terms)
        for alpha, coeff in other.terms:
            terms[alpha] = terms.get(alpha, 0) + coeff
        return self._with_terms(terms, other)

    def __sub__(self, other: Operator) -> Operator:
        return self + (-1) * other

    def __neg__(self) -> Operator:
        return (-1) * self

    def __rmul__(self, scalar) -> Operator:
        c = sp.sympify(scalar)
        return self._with_terms({alpha: c * coeff for alpha, coeff in self.terms})

    __mul__ = __rmul__

    def __matmul__(self, other: Operator) -> Operator:
        """Composition ``(T @ S) u = T(S u)``; coefficients of ``S`` are differentiated."""
        self._compatible(other)
        u = sp.Function("u")(*self.symbols)
        expr = self.to_sympy(other.to_sympy(u))
        op = Operator.from_sympy(
            sp.expand(expr),
            u,
            self.coords,
            fields=tuple(sorted(set(self.fields) | set(other.fields))),
        )
        return op._with_terms(dict(op.terms), self, other)

    def _with_terms(self, terms: Mapping[MultiIndex, sp.Expr], *others: Operator) -> Operator:
        fields = tuple(sorted(set(self.fields).union(*(o.fields for o in others))))
        refs = dict(self.reference_symbols)
        reference = self.reference
        for o in others:
            refs.update(dict(o.reference_symbols))
            reference = reference or o.reference
        return Operator(
            self.coords,
            _canonical_terms(terms),
            fields,
            reference,
            tuple(sorted(refs.items())),
        )

    def bind(self, **values) -> BoundOperator:
        """Attach per-point field values (e.g. normals), each an ``(n,)`` array."""
        missing = set(self.fields) - set(values)
        extra = set(values) - set(self.fields)
        if missing or extra:
            raise OperatorError(
                f"bind() needs exactly the fields {self.fields}; missing {sorted(missing)}, "
                f"unexpected {sorted(extra)}."
            )
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        lengths = {v.shape for v in arrays.values()}
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            raise OperatorError(
                f"Field values must be 1-D arrays of one length, got shapes {lengths}."
            )
        return BoundOperator(self, tuple(sorted(arrays.items())))

    # -- evaluation ----------------------------------------------------------------------
    def coefficient_values(self, x, field_values: Mapping[str, jax.Array] | None = None):
        """``{α: a_α(x_i)}`` as float64 ``(n,)`` arrays at the points ``x`` of shape ``(n, d)``.

        Concrete points are evaluated on the host with NumPy (eager ``jax.numpy`` would
        compile every elementwise operation again for each new ``n``) and give NumPy arrays;
        traced points (inside ``jit``/``vmap``/``grad``) give JAX arrays.
        """
        field_values = dict(field_values or {})
        if set(field_values) != set(self.fields):
            raise OperatorError(
                f"Operator has fields {self.fields}; bind their per-point values with "
                f"op.bind({', '.join(f + '=...' for f in self.fields)})."
            )
        traced = any(isinstance(v, jax.core.Tracer) for v in (x, *field_values.values()))
        xp = jnp if traced else np
        x = xp.asarray(x, dtype=xp.float64)
        n = x.shape[0]
        args = [x[:, i] for i in range(self.dim)]
        args += [xp.asarray(field_values[f], dtype=xp.float64) for f in self.fields]
        ref_values = self._reference_values(x)
        args += [xp.asarray(ref_values[name]) for name, _ in self.reference_symbols]
        functions = _coefficient_functions(self, "jax" if traced else "numpy")
        return {
            alpha: xp.broadcast_to(xp.asarray(fn(*args), dtype=xp.float64), (n,))
            for (alpha, _), fn in zip(self.terms, functions, strict=True)
        }

    def _reference_values(self, x: jax.Array) -> dict[str, jax.Array]:
        if not self.reference_symbols:
            return {}
        u0 = self.reference
        values = {}
        for name, beta in self.reference_symbols:
            values[name] = jax.vmap(lambda p, beta=beta: _partial(u0, p, beta))(x)
        return values


@dataclass(frozen=True)
class BoundOperator:
    """An :class:`Operator` with per-point field values (see :meth:`Operator.bind`)."""

    operator: Operator
    values: tuple[tuple[str, np.ndarray], ...] = field(compare=False)

    @property
    def order(self) -> int:
        return self.operator.order

    @property
    def n_points(self) -> int:
        return len(self.values[0][1])

    def field_values(self) -> dict[str, jax.Array]:
        return {k: jnp.asarray(v) for k, v in self.values}

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def partial_derivative(f: Callable, x: jax.Array, alpha: MultiIndex) -> jax.Array:
    """``∂^α f(x)`` for a function of one point ``x`` of shape ``(d,)``, by nested forward mode."""
    g = f
    for i, k in enumerate(alpha):
        e = jnp.zeros_like(x).at[i].set(1.0)
        for _ in range(k):
            g = (lambda h, e=e: lambda p: jax.jvp(h, (p,), (e,))[1])(g)
    return g(x)


def apply_at(op: Operator, f: Callable, x: jax.Array, coeffs) -> jax.Array:
    """``(T f)(x) = Σ_α a_α ∂^α f(x)`` at one point, with ``coeffs[k]`` the value of the
    ``k``-th term's coefficient at ``x`` (order of ``op.terms``)."""
    return sum(coeffs[k] * partial_derivative(f, x, alpha) for k, (alpha, _) in enumerate(op.terms))


def _partial(f: Callable, x: jax.Array, beta: MultiIndex) -> jax.Array:
    return jnp.asarray(partial_derivative(f, x, beta), dtype=jnp.float64).reshape(())


@functools.cache
def _coefficient_functions(op: Operator, backend: str) -> list[Callable]:
    """The coefficients ``a_α`` lambdified for ``backend`` ("numpy" or "jax")."""
    args = list(op.symbols) + [sp.Symbol(f, real=True) for f in op.fields]
    args += [sp.Symbol(name) for name, _ in op.reference_symbols]
    modules = ["scipy", "numpy"] if backend == "numpy" else "jax"
    return [sp.lambdify(args, coeff, modules=modules) for _, coeff in op.terms]


def _check_coords(coords: Sequence[str]) -> tuple[str, ...]:
    if isinstance(coords, str):
        raise OperatorError(
            f"coords must be a sequence of names such as ('x', 'y'), got {coords!r}."
        )
    coords = tuple(str(c) for c in coords)
    if not coords or len(set(coords)) != len(coords):
        raise OperatorError(f"coords must be distinct names, got {coords}.")
    for c in coords:
        if not c.isidentifier() or c in _ALLOWED_FUNCTIONS:
            raise OperatorError(
                f"Coordinate name {c!r} is not usable (reserved or not an identifier)."
            )
    return coords


def _subscript_to_index(sub: str, coords: tuple[str, ...], function: str) -> MultiIndex:
    alpha = [0] * len(coords)
    rest = sub
    while rest:
        for i, c in sorted(enumerate(coords), key=lambda ic: -len(ic[1])):
            if rest.startswith(c):
                alpha[i] += 1
                rest = rest[len(c) :]
                break
        else:
            raise OperatorError(
                f"Cannot read the subscript in '{function}_{sub}': '{rest}' is not a coordinate "
                f"(coords={coords}). Write derivatives as {function}_<coords>, e.g. "
                f"{function}_{coords[0] * 2}."
            )
    return tuple(alpha)


def _check_names(parsed, text, coords, fields, placeholders, function) -> None:
    undefined = sorted(str(f.func) for f in parsed.atoms(AppliedUndef))
    if undefined:
        raise OperatorError(
            f"Unknown function(s) {undefined} in {text!r}. Known functions: "
            f"{', '.join(k for k in _ALLOWED_FUNCTIONS if k not in ('pi', 'E', 'Rational'))}."
        )
    allowed = set(coords) | set(fields) | set(placeholders)
    unknown = sorted(str(s) for s in parsed.free_symbols if str(s) not in allowed)
    if unknown:
        raise OperatorError(
            f"Unknown symbol(s) {unknown} in {text!r}. Coordinates are {coords}; give parameter "
            f"values with params={{'{unknown[0]}': ...}}, declare per-point values with "
            f"fields=[...], or write derivatives of '{function}' as {function}_<coords>."
        )


def _from_placeholders(expr, dsyms, coords, fields, about, text) -> Operator:
    expr = sp.expand(expr)
    syms = list(dsyms)
    if not syms:
        raise OperatorError(f"{text!r} does not involve the unknown function.")
    nonlinear = any(sp.diff(expr, a, b) != 0 for a in syms for b in syms)
    reference, ref_symbols = None, ()
    if nonlinear:
        if about is None:
            raise OperatorError(
                f"{text!r} is nonlinear in the unknown function. Its NTK is that of the "
                "linearization (Fréchet derivative) around a reference function: pass "
                "about=u0 (a sympy expression or string in the coordinates, or a callable)."
            )
        expr, reference, ref_symbols = _linearize(expr, dsyms, coords, about)
    forcing = expr.subs({s: 0 for s in syms})
    if forcing != 0 and not nonlinear:
        raise OperatorError(
            f"{text!r} has a term without the unknown function ({forcing}). An operator has no "
            "forcing term: move it to the right-hand side f."
        )
    terms = {dsyms[s]: sp.diff(expr, s) for s in syms}
    return Operator(coords, _canonical_terms(terms), fields, reference, ref_symbols)


def _linearize(expr, dsyms, coords, about):
    """Fréchet derivative: ``L v = Σ_α ∂R/∂(∂^α u)|_{u0} ∂^α v``."""
    xs = [sp.Symbol(c, real=True) for c in coords]
    derivs = {s: sp.diff(expr, s) for s in dsyms}
    if callable(about) and not isinstance(about, (sp.Expr, str)):
        ref_names = {s: f"__u0_{'_'.join(map(str, a))}" for s, a in dsyms.items()}
        subs = {s: sp.Symbol(ref_names[s]) for s in dsyms}
        lin = sum((derivs[s].subs(subs) * s for s in dsyms), sp.Integer(0))
        ref_symbols = tuple(
            sorted(
                (ref_names[s], dsyms[s])
                for s in dsyms
                if sp.Symbol(ref_names[s]) in lin.free_symbols
            )
        )
        return sp.expand(lin), about, ref_symbols
    u0 = sp.sympify(
        about, locals={c: x for c, x in zip(coords, xs, strict=True)} | dict(_ALLOWED_FUNCTIONS)
    )
    unknown = [str(s) for s in u0.free_symbols if s not in xs]
    if unknown:
        raise OperatorError(f"Reference function u0 = {about!r} uses unknown symbols {unknown}.")
    subs = {}
    for s, alpha in dsyms.items():
        d = u0
        for x, k in zip(xs, alpha, strict=True):
            if k:
                d = sp.diff(d, x, k)
        subs[s] = d
    lin = sum((derivs[s].subs(subs) * s for s in dsyms), sp.Integer(0))
    return sp.expand(lin), None, ()


def _canonical_terms(terms: Mapping[MultiIndex, sp.Expr]):
    out = []
    for alpha, coeff in terms.items():
        coeff = sp.expand(sp.sympify(coeff))
        if coeff != 0:
            out.append((tuple(int(a) for a in alpha), coeff))
    return tuple(sorted(out, key=lambda t: (-sum(t[0]), t[0])))


# ----------------------------------------------------------------------------------------------
# common operators, all built from the general Operator
# ----------------------------------------------------------------------------------------------
def _unit(i: int, d: int, k: int = 1) -> MultiIndex:
    return tuple(k if j == i else 0 for j in range(d))


def identity(coords: Sequence[str]) -> Operator:
    """``T u = u`` (Dirichlet boundary operator; the plain NTK)."""
    coords = _check_coords(coords)
    return Operator(coords, (((0,) * len(coords), sp.Integer(1)),))


def derivative(coords: Sequence[str], coord: str, k: int = 1) -> Operator:
    """``∂^k u / ∂ coord^k``."""
    coords = _check_coords(coords)
    if coord not in coords:
        raise OperatorError(f"{coord!r} is not one of the coordinates {coords}.")
    return Operator(coords, ((_unit(coords.index(coord), len(coords), k), sp.Integer(1)),))


def laplacian(coords: Sequence[str]) -> Operator:
    """``Δu = Σ_i ∂²u/∂x_i²``."""
    coords = _check_coords(coords)
    d = len(coords)
    return Operator(coords, _canonical_terms({_unit(i, d, 2): sp.Integer(1) for i in range(d)}))


def neumann(coords: Sequence[str]) -> Operator:
    """``∂_n u = Σ_i n_i ∂_i u`` with per-point normals: fields ``n_<coord>``; bind them."""
    coords = _check_coords(coords)
    d = len(coords)
    names = tuple(f"n_{c}" for c in coords)
    terms = {_unit(i, d): sp.Symbol(names[i], real=True) for i in range(d)}
    return Operator(coords, _canonical_terms(terms), names)


def robin(coords: Sequence[str], alpha: float, beta: float) -> Operator:
    """``α u + β ∂_n u`` with per-point normals (fields ``n_<coord>``)."""
    return neumann(coords) * beta + identity(coords) * alpha if beta else identity(coords) * alpha


def laplace_beltrami(coords: Sequence[str]) -> Operator:
    """Laplace–Beltrami operator of the unit sphere ``S^{d-1}``, written in ambient coordinates.

    .. math::
        Δ_S f = Δ f - \\sum_{ij} x_i x_j ∂_{ij} f - (d-1) \\sum_i x_i ∂_i f \\quad (|x| = 1),

    i.e. ``Δ - ∂_r² - (d-1)/r ∂_r`` at ``r = 1``; its eigenvalue on degree-k spherical harmonics
    is ``-k(k+d-2)``. Valid for points on the unit sphere only.
    """
    coords = _check_coords(coords)
    d = len(coords)
    xs = [sp.Symbol(c, real=True) for c in coords]
    terms: dict[MultiIndex, sp.Expr] = {}
    for i, j in itertools.product(range(d), repeat=2):
        alpha = tuple(int(k == i) + int(k == j) for k in range(d))
        terms[alpha] = terms.get(alpha, 0) - xs[i] * xs[j]
    for i in range(d):
        terms[_unit(i, d, 2)] = terms.get(_unit(i, d, 2), 0) + 1
        terms[_unit(i, d)] = terms.get(_unit(i, d), 0) - (d - 1) * xs[i]
    return Operator(coords, _canonical_terms(terms))
