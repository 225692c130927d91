"""Linear differential operators on one or several unknown functions, built with sympy.

An :class:`Operator` is ``T = Σ_f Σ_α a_{f,α}(x) ∂^α u_f`` on functions of the coordinates
``coords``: a tuple of ``((f, α), a_{f,α})`` terms with sympy coefficients, ``f`` indexing the
unknowns ``functions`` (one, ``("u",)``, unless a system of PDEs is given). It is immutable and
hashable, so the sympy work done for an operator (lambdified coefficients) is cached.

Ways to build one:

* :meth:`Operator.parse` from a string with subscript derivatives, read by a whitelist parser
  that evaluates nothing (:mod:`ntk_theory._parse`):
  ``Operator.parse("u_t - nu*u_xx", coords=("t", "x"), params={"nu": 0.01})``, or for systems
  ``Operator.parse("-nu*(u_xx + u_yy) + p_x", ("x", "y"), functions=("u", "v", "p"), params=...)``;
* :meth:`Operator.from_sympy` from an expression in ``sympy.Derivative``'s of the unknowns;
* helpers :func:`identity`, :func:`derivative`, :func:`laplacian`, :func:`neumann`,
  :func:`robin`, :func:`laplace_beltrami` -- all plain :class:`Operator` objects;
* algebra: ``T + S``, ``c * T``, ``T @ S`` (composition ``T(S u)``, Leibniz rule by sympy; for
  single-function operators);
* nonlinear residuals (Burgers, Allen–Cahn, Navier–Stokes convection) are linearized around
  reference functions (Fréchet derivative: the coefficient of ``∂^α v_f`` is ``∂R/∂(∂^α u_f)`` at
  ``u = u0``), which gives an operator whose coefficients depend on the coordinates.

Per-point data that is not a function of the coordinates (outward normals of a boundary) are
*fields*: symbols whose values are supplied per point with :meth:`Operator.bind`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ._parse import CONSTANTS, FUNCTIONS, ExpressionError, parse_expression

__all__ = [
    "BoundOperator",
    "Operator",
    "OperatorError",
    "derivative",
    "identity",
    "laplace_beltrami",
    "laplacian",
    "neumann",
    "robin",
]

MultiIndex = tuple[int, ...]
Key = tuple[int, MultiIndex]  # (function index, multi-index)
#: Highest derivative order an operator may have (kernels of order-p operators need φ^(4p+1)
#: through every layer; beyond 6 their cost grows past minutes per point pair).
MAX_ORDER = 6


class OperatorError(ValueError):
    """An operator expression could not be interpreted."""


def _placeholder(f: int, alpha: MultiIndex) -> sp.Symbol:
    return sp.Symbol(f"__D{f}_{'_'.join(map(str, alpha))}")


def _derivative_name(function: str, alpha: MultiIndex, coords: Sequence[str]) -> str:
    if sum(alpha) == 0:
        return function
    return f"{function}_" + "".join(c * k for c, k in zip(coords, alpha, strict=True))


@dataclass(frozen=True)
class Operator:
    """A linear differential operator ``T = Σ_f Σ_α a_{f,α}(x) ∂^α u_f``.

    Attributes:
        coords: coordinate names, in the order of the columns of the points ``x``.
        terms: ``(((f, α), a_{f,α}), ...)`` with ``f`` the index of an unknown in ``functions``,
            ``α`` a multi-index over ``coords`` and ``a`` a sympy expression in the coordinates
            (and fields); sorted, no zero coefficients.
        fields: names of per-point symbols (e.g. normals ``n_x``) bound by :meth:`bind`.
        reference: for a linearized residual given callables: ``{function: u0}``, and
            ``reference_symbols`` maps the symbols standing for ``∂^β u0_f`` to ``(f, β)``.
        functions: the unknowns' names (default ``("u",)``).

    Example:
        >>> T = Operator.parse("-(u_xx + u_yy)", coords=("x", "y"))
        >>> T.order
        2
    """

    coords: tuple[str, ...]
    terms: tuple[tuple[Key, sp.Expr], ...]
    fields: tuple[str, ...] = ()
    reference: Mapping | None = field(default=None, compare=False)
    reference_symbols: tuple[tuple[str, Key], ...] = ()
    functions: tuple[str, ...] = ("u",)

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
        params: Mapping[str, float | str] | None = None,
        fields: Sequence[str] = (),
        about=None,
        *,
        functions: Sequence[str] | None = None,
    ) -> Operator:
        """Parse ``"u_xx + sin(pi*x)*u"``-style text into an operator (nothing is evaluated).

        Args:
            expr: the operator applied to the unknown(s); derivatives are written with
                subscripts (``u_t``, ``u_xxy``); coefficients may use the coordinates,
                ``params``, ``fields``, ``pi``, ``E`` and elementary functions (sin, cos,
                exp, ...; :data:`ntk_theory._parse.FUNCTIONS`).
            coords: coordinate names, in the order of the columns of the points.
            function: the unknown's name (default ``"u"``).
            params: values of named parameters, numbers or numeric strings (``{"nu": 0.01}``,
                ``{"c": "1/3"}``). Every parameter must be used.
            fields: names of per-point values supplied later with :meth:`bind`.
            about: for a nonlinear residual (``u*u_x``, ``u**3``), the reference function ``u0``
                to linearize around: a string or sympy expression in the coordinates, or a
                callable ``u0(x) -> scalar`` on one point ``x`` of shape ``(d,)``; for systems a
                mapping ``{function: u0}``.
            functions: the unknowns of a system of PDEs, e.g. ``("u", "v", "p")`` (then
                ``function`` is ignored).

        Raises:
            OperatorError: anything that is not a linear (or linearizable) operator in the
                declared names: unknown or ambiguous names, unused parameters, a term without an
                unknown (a forcing term), a nonlinear residual without ``about``, code.
        """
        coords = _check_coords(coords)
        functions = _check_functions(functions if functions is not None else (function,), coords)
        params = dict(params or {})
        fields = tuple(str(f) for f in fields)
        taken = set(coords) | set(functions)
        for name in list(params) + list(fields):
            if not isinstance(name, str) or not name.isidentifier():
                raise OperatorError(f"Parameter/field name {name!r} is not an identifier.")
            if name in taken:
                raise OperatorError(
                    f"'{name}' is used both as a parameter/field and a coordinate or unknown."
                )
            if name in FUNCTIONS or name in CONSTANTS:
                raise OperatorError(f"'{name}' is reserved (a function or constant); rename it.")
        values = {k: _param_value(k, v) for k, v in params.items()}
        used: set[str] = set()
        symbols = {c: sp.Symbol(c, real=True) for c in coords}
        field_syms = {f: sp.Symbol(f, real=True) for f in fields}
        placeholders: dict[sp.Symbol, Key] = {}

        def resolve(name: str):
            if name in symbols:
                return symbols[name]
            if name in values:
                used.add(name)
                return values[name]
            if name in field_syms:
                used.add(name)
                return field_syms[name]
            key = _read_derivative(name, functions, coords)
            if key is not None:
                sym = _placeholder(*key)
                placeholders[sym] = key
                return sym
            return None

        try:
            parsed = parse_expression(expr, resolve, what="operator")
        except ExpressionError as err:
            message = str(err)
            if "unknown name" in message:
                message += (
                    f" Coordinates are {coords}, unknowns {functions}; give parameter values with "
                    "params={...}, declare per-point values with fields=[...], or write derivatives "
                    f"as {functions[0]}_<coords>, e.g. {functions[0]}_{coords[0] * 2}."
                )
            raise OperatorError(message) from None
        unused = sorted((set(values) | set(field_syms)) - used)
        if unused:
            raise OperatorError(
                f"{unused} {'is' if len(unused) == 1 else 'are'} declared (params/fields) but not "
                f"used in {expr!r}; remove {'it' if len(unused) == 1 else 'them'} or fix the typo."
            )
        about = _about_mapping(about, functions)
        return _from_placeholders(parsed, placeholders, coords, fields, about, expr, functions)

    @classmethod
    def from_sympy(
        cls,
        expr: sp.Expr,
        u,
        coords: Sequence[sp.Symbol | str],
        fields: Sequence[str] = (),
        about=None,
    ) -> Operator:
        """Build an operator from a sympy expression in the unknown(s) and their ``Derivative``'s.

        Args:
            expr: e.g. ``u.diff(x, 2) + u.diff(y, 2)``.
            u: the unknown, ``sympy.Function("u")(x, y)`` (or its function class), or a sequence
                of them for a system.

        Example:
            >>> x, y = sp.symbols("x y"); u = sp.Function("u")(x, y)
            >>> Operator.from_sympy(u.diff(x, 2) + u.diff(y, 2), u, (x, y)).order
            2
        """
        names = tuple(str(c) for c in coords)
        coords = _check_coords(names)
        unknowns = list(u) if isinstance(u, (list, tuple)) else [u]
        funcs = [v.func if isinstance(v, AppliedUndef) else v for v in unknowns]
        functions = _check_functions(tuple(str(f) for f in funcs), coords)
        symbols = {sp.Symbol(c, real=True) for c in coords} | {sp.Symbol(c) for c in coords}
        dsyms: dict[sp.Symbol, Key] = {}
        replacements = {}
        for d in expr.atoms(sp.Derivative):
            fn = getattr(d.expr, "func", None)
            if fn not in funcs:
                continue
            alpha = [0] * len(coords)
            for var, count in d.variable_count:
                if str(var) not in coords:
                    raise OperatorError(f"Derivative with respect to {var}, not a coordinate.")
                alpha[coords.index(str(var))] += int(count)
            key = (funcs.index(fn), tuple(alpha))
            sym = _placeholder(*key)
            dsyms[sym] = key
            replacements[d] = sym
        expr = expr.xreplace(replacements)
        for atom in expr.atoms(AppliedUndef):
            if atom.func in funcs:
                key = (funcs.index(atom.func), (0,) * len(coords))
                sym = _placeholder(*key)
                dsyms[sym] = key
                expr = expr.xreplace({atom: sym})
        expr = expr.xreplace(
            {s: sp.Symbol(str(s), real=True) for s in expr.free_symbols if s in symbols}
        )
        about = _about_mapping(about, functions)
        return _from_placeholders(expr, dsyms, coords, tuple(fields), about, str(expr), functions)

    # -- properties ----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    def order(self) -> int:
        """The highest total derivative order ``max |α|``."""
        return max(sum(alpha) for (_, alpha), _ in self.terms)

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(sp.Symbol(c, real=True) for c in self.coords)

    @property
    def keys(self) -> tuple[Key, ...]:
        """``(f, α)`` of every term, in order."""
        return tuple(k for k, _ in self.terms)

    @property
    def multi_indices(self) -> tuple[MultiIndex, ...]:
        """``α`` of every term, in order (the function index dropped)."""
        return tuple(alpha for (_, alpha), _ in self.terms)

    def component(self, f: int | str) -> Operator | None:
        """The part of ``T`` acting on unknown ``f`` (index or name), as a one-function operator."""
        index = self.functions.index(f) if isinstance(f, str) else int(f)
        terms = tuple(((0, a), c) for (g, a), c in self.terms if g == index)
        if not terms:
            return None
        return Operator(
            self.coords,
            terms,
            self.fields,
            self.reference,
            self.reference_symbols,
            (self.functions[index],),
        )

    def to_sympy(self, u=None) -> sp.Expr:
        """``Σ a ∂^α u_f`` with ``u_f = Function(name)(*coords)`` by default (a list for systems)."""
        xs = self.symbols
        if u is None:
            us = [sp.Function(name)(*xs) for name in self.functions]
        else:
            us = list(u) if isinstance(u, (list, tuple)) else [u]
        out = sp.Integer(0)
        for (f, alpha), coeff in self.terms:
            term = us[f]
            for var, k in zip(xs, alpha, strict=True):
                if k:
                    term = sp.diff(term, var, k)
            out += coeff * term
        return out

    def __repr__(self) -> str:
        parts = []
        for (f, alpha), coeff in self.terms:
            name = _derivative_name(self.functions[f], alpha, self.coords)
            parts.append(name if coeff == 1 else f"({coeff})*{name}")
        text = " + ".join(parts)
        extra = f", fields={self.fields}" if self.fields else ""
        if self.functions != ("u",):
            extra += f", functions={self.functions}"
        return f"Operator({text}; coords={self.coords}{extra})"

    # -- algebra -------------------------------------------------------------------------
    def _compatible(self, other: Operator) -> None:
        if not isinstance(other, Operator):
            raise TypeError(f"Cannot combine an Operator with {type(other).__name__}.")
        if other.coords != self.coords:
            raise OperatorError(f"Coordinates differ: {self.coords} vs {other.coords}.")
        if other.functions != self.functions:
            raise OperatorError(f"Unknowns differ: {self.functions} vs {other.functions}.")
        if (
            self.reference is not None
            and other.reference is not None
            and self.reference is not other.reference
        ):
            raise OperatorError("Cannot combine operators linearized about different callables.")

    def __add__(self, other: Operator) -> Operator:
        self._compatible(other)
        terms = dict(self.terms)
        for key, coeff in other.terms:
            terms[key] = terms.get(key, 0) + coeff
        return self._with_terms(terms, other)

    def __sub__(self, other: Operator) -> Operator:
        return self + (-1) * other

    def __neg__(self) -> Operator:
        return (-1) * self

    def __rmul__(self, scalar) -> Operator:
        try:
            c = sp.sympify(scalar, strict=True)
        except sp.SympifyError:
            raise TypeError(
                f"An operator can be scaled by numbers or sympy expressions, not {type(scalar).__name__}."
            ) from None
        return self._with_terms({key: c * coeff for key, coeff in self.terms})

    __mul__ = __rmul__

    def __matmul__(self, other: Operator) -> Operator:
        """Composition ``(T @ S) u = T(S u)``; coefficients of ``S`` are differentiated."""
        self._compatible(other)
        if len(self.functions) != 1:
            raise OperatorError("Composition is defined for single-function operators only.")
        u = sp.Function(self.functions[0])(*self.symbols)
        expr = self.to_sympy(other.to_sympy(u))
        op = Operator.from_sympy(
            sp.expand(expr),
            u,
            self.coords,
            fields=tuple(sorted(set(self.fields) | set(other.fields))),
        )
        return op._with_terms(dict(op.terms), self, other)

    def _with_terms(self, terms: Mapping[Key, sp.Expr], *others: Operator) -> Operator:
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
            self.functions,
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
        for k, v in arrays.items():
            if not np.all(np.isfinite(v)):
                bad = int(np.argmax(~np.isfinite(v)))
                raise OperatorError(f"Field {k!r} is not finite at point {bad} ({v[bad]}).")
        return BoundOperator(self, tuple(sorted(arrays.items())))

    # -- evaluation ----------------------------------------------------------------------
    def coefficient_values(self, x, field_values: Mapping[str, jax.Array] | None = None):
        """``{(f, α): a_{f,α}(x_i)}`` as float64 ``(n,)`` arrays at the points ``x`` of shape ``(n, d)``.

        Concrete points are evaluated on the host with NumPy (eager ``jax.numpy`` would
        compile every elementwise operation again for each new ``n``) and give NumPy arrays;
        traced points (inside ``jit``/``vmap``/``grad``) give JAX arrays.

        Raises:
            OperatorError: a coefficient that is NaN or infinite at some point (``1/x`` at
                ``x = 0``): its term and the first such point are named.
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
        out = {}
        for (key, coeff), fn in zip(self.terms, functions, strict=True):
            with np.errstate(all="ignore"):
                val = xp.broadcast_to(xp.asarray(fn(*args), dtype=xp.float64), (n,))
            if not traced and not np.all(np.isfinite(val)):
                bad = int(np.argmax(~np.isfinite(val)))
                name = _derivative_name(self.functions[key[0]], key[1], self.coords)
                raise OperatorError(
                    f"The coefficient {coeff} of {name} is {val[bad]} at point {bad} "
                    f"({np.asarray(x)[bad].tolist()}); the operator is not defined there. Move the "
                    "point or rewrite the operator (e.g. multiply through by the denominator)."
                )
            out[key] = val
        return out

    def _reference_values(self, x) -> dict[str, jax.Array]:
        if not self.reference_symbols:
            return {}
        values = {}
        for name, (f, beta) in self.reference_symbols:
            u0 = self.reference[self.functions[f]]
            values[name] = jax.vmap(lambda p, beta=beta, u0=u0: _partial(u0, p, beta))(
                jnp.asarray(x)
            )
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
    """``(T f)(x) = Σ a_{f,α} ∂^α f_f(x)`` at one point, with ``coeffs[k]`` the value of the
    ``k``-th term's coefficient at ``x`` (order of ``op.terms``). ``f(x)`` returns a scalar for
    one unknown, or a vector with one entry per unknown."""
    total = 0.0
    for k, ((fi, alpha), _) in enumerate(op.terms):
        if len(op.functions) == 1:
            g = f
        else:
            g = lambda p, fi=fi: f(p)[fi]  # noqa: E731
        total = total + coeffs[k] * partial_derivative(g, x, alpha)
    return total


def _partial(f: Callable, x: jax.Array, beta: MultiIndex) -> jax.Array:
    return jnp.asarray(partial_derivative(f, x, beta), dtype=jnp.float64).reshape(())


@functools.cache
def _coefficient_functions(op: Operator, backend: str) -> list[Callable]:
    """The coefficients ``a`` lambdified for ``backend`` ("numpy" or "jax")."""
    args = list(op.symbols) + [sp.Symbol(f, real=True) for f in op.fields]
    args += [sp.Symbol(name) for name, _ in op.reference_symbols]
    modules = ["scipy", "numpy"] if backend == "numpy" else "jax"
    return [sp.lambdify(args, coeff, modules=modules) for _, coeff in op.terms]


def _check_coords(coords: Sequence[str]) -> tuple[str, ...]:
    if isinstance(coords, str) or not isinstance(coords, Sequence):
        raise OperatorError(
            f"coords must be a sequence of names such as ('x', 'y'), got {coords!r}."
        )
    coords = tuple(str(c) for c in coords)
    if not coords or len(set(coords)) != len(coords):
        raise OperatorError(f"coords must be distinct names, got {coords}.")
    for c in coords:
        if not c.isidentifier() or c in FUNCTIONS or c in CONSTANTS or c.startswith("__"):
            raise OperatorError(
                f"Coordinate name {c!r} is not usable (reserved or not an identifier)."
            )
    return coords


def _check_functions(functions: Sequence[str], coords: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(functions, str):
        functions = (functions,)
    functions = tuple(str(f) for f in functions)
    if not functions or len(set(functions)) != len(functions):
        raise OperatorError(f"functions must be distinct names, got {functions}.")
    for f in functions:
        if (
            not f.isidentifier()
            or f in FUNCTIONS
            or f in CONSTANTS
            or f in coords
            or f.startswith("__")
        ):
            raise OperatorError(
                f"Unknown-function name {f!r} is not usable (reserved, a coordinate, or not an identifier)."
            )
    return functions


def _segmentations(sub: str, coords: tuple[str, ...]) -> list[MultiIndex]:
    """Every way to read ``sub`` as a sequence of coordinate names."""

    @functools.cache
    def go(i: int) -> list[tuple[int, ...]]:
        if i == len(sub):
            return [()]
        out = []
        for k, c in enumerate(coords):
            if sub.startswith(c, i):
                out.extend((k, *rest) for rest in go(i + len(c)))
        return out

    readings = set()
    for seq in go(0):
        alpha = [0] * len(coords)
        for k in seq:
            alpha[k] += 1
        readings.add(tuple(alpha))
    return sorted(readings)


def _read_derivative(name: str, functions: tuple[str, ...], coords: tuple[str, ...]) -> Key | None:
    """``(f, α)`` if ``name`` is an unknown or one of its derivatives ``u_xy``, else ``None``."""
    d = len(coords)
    if name in functions:
        return functions.index(name), (0,) * d
    matches = []
    for f, fn in enumerate(functions):
        prefix = fn + "_"
        if name.startswith(prefix) and len(name) > len(prefix):
            for alpha in _segmentations(name[len(prefix) :], coords):
                matches.append((f, alpha))
    if not matches:
        for fn in functions:
            if name.startswith(fn + "_"):
                raise OperatorError(
                    f"Cannot read the subscript in '{name}': '{name[len(fn) + 1 :]}' is not made of "
                    f"coordinates {coords}. Write derivatives as {fn}_<coords>, e.g. {fn}_{coords[0] * 2}."
                )
        return None
    if len(matches) > 1:
        readings = ", ".join(f"∂^{alpha} {functions[f]}" for f, alpha in matches)
        raise OperatorError(
            f"'{name}' can be read in more than one way with coordinates {coords} ({readings}). "
            "Rename the coordinates so that no name is a concatenation of others (e.g. 'x', 'y')."
        )
    f, alpha = matches[0]
    if sum(alpha) > MAX_ORDER:
        raise OperatorError(
            f"'{name}' is a derivative of order {sum(alpha)}; at most {MAX_ORDER} is supported (an "
            f"order-p operator kernel needs φ^(4p+1) through every layer)."
        )
    return f, alpha


def _param_value(name: str, value) -> sp.Expr:
    """A parameter's value: a finite real number or a numeric expression string."""
    if isinstance(value, str):
        try:
            out = parse_expression(value, {}, what=f"value of parameter {name!r}")
        except ExpressionError as err:
            raise OperatorError(str(err)) from None
    elif isinstance(value, sp.Expr):
        out = value
    else:
        if isinstance(value, bool):
            raise OperatorError(f"Parameter {name!r} must be a number, got {value!r}.")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise OperatorError(f"Parameter {name!r} must be a number, got {value!r}.") from None
        if not math.isfinite(f):
            raise OperatorError(f"Parameter {name!r} must be finite, got {value!r}.")
        out = sp.Integer(value) if isinstance(value, (int, np.integer)) else sp.Float(f)
    if out.free_symbols or not out.is_number or not out.is_real:
        raise OperatorError(f"Parameter {name!r} must be a real number, got {value!r}.")
    return out


def _about_mapping(about, functions: tuple[str, ...]):
    """``about`` as ``{function: reference}`` (``None`` stays ``None``)."""
    if about is None:
        return None
    if isinstance(about, Mapping):
        unknown = sorted(set(about) - set(functions))
        if unknown:
            raise OperatorError(f"about= names {unknown}, which are not unknowns {functions}.")
        return dict(about)
    if len(functions) != 1:
        raise OperatorError(
            f"For a system, about= must map each unknown {functions} to its reference function."
        )
    return {functions[0]: about}


def _from_placeholders(expr, dsyms, coords, fields, about, text, functions) -> Operator:
    expr = sp.expand(expr)
    syms = list(dsyms)
    if not syms:
        raise OperatorError(f"{text!r} does not involve the unknown function(s) {functions}.")
    nonlinear = any(sp.diff(expr, a, b) != 0 for a in syms for b in syms)
    reference, ref_symbols = None, ()
    if nonlinear:
        if about is None:
            raise OperatorError(
                f"{text!r} is nonlinear in the unknown function(s). Its NTK is that of the "
                "linearization (Fréchet derivative) around a reference: pass about=u0 (a string "
                "or sympy expression in the coordinates, or a callable; a mapping for systems)."
            )
        expr, reference, ref_symbols = _linearize(expr, dsyms, coords, about, functions)
    elif about is not None:
        pass  # a linear operator ignores its reference function
    forcing = expr.subs({s: 0 for s in syms})
    if forcing != 0 and not nonlinear:
        raise OperatorError(
            f"{text!r} has a term without the unknown function ({forcing}). An operator has no "
            "forcing term: move it to the right-hand side f."
        )
    terms = {dsyms[s]: sp.diff(expr, s) for s in syms}
    return Operator(coords, _canonical_terms(terms), fields, reference, ref_symbols, functions)


def _linearize(expr, dsyms, coords, about, functions):
    """Fréchet derivative: ``L v = Σ_{f,α} ∂R/∂(∂^α u_f)|_{u0} ∂^α v_f``."""
    xs = [sp.Symbol(c, real=True) for c in coords]
    derivs = {s: sp.diff(expr, s) for s in dsyms}
    missing = sorted({functions[dsyms[s][0]] for s in dsyms} - set(about))
    if missing:
        raise OperatorError(f"about= has no reference function for {missing}.")
    callables = {
        f: ref for f, ref in about.items() if callable(ref) and not isinstance(ref, (sp.Expr, str))
    }
    subs = {}
    ref_names: dict[sp.Symbol, str] = {}
    for s, (f, alpha) in dsyms.items():
        fname = functions[f]
        ref = about[fname]
        if fname in callables:
            name = f"__u0_{f}_{'_'.join(map(str, alpha))}"
            subs[s] = sp.Symbol(name)
            ref_names[s] = name
            continue
        locals_ = {c: x for c, x in zip(coords, xs, strict=True)}
        if isinstance(ref, str):
            try:
                u0 = parse_expression(ref, locals_, what=f"about= reference for {fname}")
            except ExpressionError as err:
                raise OperatorError(str(err)) from None
        else:
            u0 = sp.sympify(ref)
            unknown = [str(v) for v in u0.free_symbols if str(v) not in coords]
            if unknown:
                raise OperatorError(
                    f"Reference function u0 = {ref!r} uses unknown symbols {unknown}."
                )
            u0 = u0.xreplace({v: xs[coords.index(str(v))] for v in u0.free_symbols})
        d = u0
        for x, k in zip(xs, alpha, strict=True):
            if k:
                d = sp.diff(d, x, k)
        subs[s] = d
    lin = sum((derivs[s].subs(subs) * s for s in dsyms), sp.Integer(0))
    lin = sp.expand(lin)
    ref_symbols = tuple(
        sorted(
            (ref_names[s], dsyms[s])
            for s in ref_names
            if sp.Symbol(ref_names[s]) in lin.free_symbols
        )
    )
    reference = callables or None
    return lin, reference, ref_symbols


def _canonical_terms(terms: Mapping[Key, sp.Expr]):
    out = []
    for key, coeff in terms.items():
        coeff = sp.expand(sp.sympify(coeff))
        if coeff != 0:
            out.append(((int(key[0]), tuple(int(a) for a in key[1])), coeff))
    return tuple(sorted(out, key=lambda t: (t[0][0], -sum(t[0][1]), t[0][1])))


# ----------------------------------------------------------------------------------------------
# common operators, all built from the general Operator
# ----------------------------------------------------------------------------------------------
def _unit(i: int, d: int, k: int = 1) -> MultiIndex:
    return tuple(k if j == i else 0 for j in range(d))


def identity(coords: Sequence[str], function: str = "u") -> Operator:
    """``T u = u`` (Dirichlet boundary operator; the plain NTK)."""
    coords = _check_coords(coords)
    functions = _check_functions((function,), coords)
    return Operator(coords, (((0, (0,) * len(coords)), sp.Integer(1)),), functions=functions)


def derivative(coords: Sequence[str], coord: str, k: int = 1, function: str = "u") -> Operator:
    """``∂^k u / ∂ coord^k``."""
    coords = _check_coords(coords)
    if coord not in coords:
        raise OperatorError(f"{coord!r} is not one of the coordinates {coords}.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_ORDER:
        raise OperatorError(f"k must be an integer in 1..{MAX_ORDER}, got {k!r}.")
    functions = _check_functions((function,), coords)
    return Operator(
        coords,
        (((0, _unit(coords.index(coord), len(coords), k)), sp.Integer(1)),),
        functions=functions,
    )


def laplacian(coords: Sequence[str], function: str = "u") -> Operator:
    """``Δu = Σ_i ∂²u/∂x_i²``."""
    coords = _check_coords(coords)
    functions = _check_functions((function,), coords)
    d = len(coords)
    terms = _canonical_terms({(0, _unit(i, d, 2)): sp.Integer(1) for i in range(d)})
    return Operator(coords, terms, functions=functions)


def neumann(coords: Sequence[str], function: str = "u") -> Operator:
    """``∂_n u = Σ_i n_i ∂_i u`` with per-point normals: fields ``n_<coord>``; bind them."""
    coords = _check_coords(coords)
    functions = _check_functions((function,), coords)
    d = len(coords)
    names = tuple(f"n_{c}" for c in coords)
    terms = {(0, _unit(i, d)): sp.Symbol(names[i], real=True) for i in range(d)}
    return Operator(coords, _canonical_terms(terms), names, functions=functions)


def robin(coords: Sequence[str], alpha: float, beta: float, function: str = "u") -> Operator:
    """``α u + β ∂_n u`` with per-point normals (fields ``n_<coord>``)."""
    if beta:
        return neumann(coords, function) * beta + identity(coords, function) * alpha
    return identity(coords, function) * alpha


def laplace_beltrami(coords: Sequence[str], function: str = "u") -> Operator:
    """Laplace–Beltrami operator of the unit sphere ``S^{d-1}``, written in ambient coordinates.

    .. math::
        Δ_S f = Δ f - \\sum_{ij} x_i x_j ∂_{ij} f - (d-1) \\sum_i x_i ∂_i f \\quad (|x| = 1),

    i.e. ``Δ - ∂_r² - (d-1)/r ∂_r`` at ``r = 1``; its eigenvalue on degree-k spherical harmonics
    is ``-k(k+d-2)``. Valid for points on the unit sphere only.
    """
    coords = _check_coords(coords)
    functions = _check_functions((function,), coords)
    d = len(coords)
    xs = [sp.Symbol(c, real=True) for c in coords]
    terms: dict[Key, sp.Expr] = {}
    for i, j in itertools.product(range(d), repeat=2):
        alpha = tuple(int(k == i) + int(k == j) for k in range(d))
        terms[(0, alpha)] = terms.get((0, alpha), 0) - xs[i] * xs[j]
    for i in range(d):
        terms[(0, _unit(i, d, 2))] = terms.get((0, _unit(i, d, 2)), 0) + 1
        terms[(0, _unit(i, d))] = terms.get((0, _unit(i, d)), 0) - (d - 1) * xs[i]
    return Operator(coords, _canonical_terms(terms), functions=functions)
