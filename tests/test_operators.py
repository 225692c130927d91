"""Operator parsing, algebra, linearization and the helpers."""

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from ntk_theory.operators import (
    Operator,
    OperatorError,
    derivative,
    identity,
    laplace_beltrami,
    laplacian,
    neumann,
)


def test_parse_laplacian_matches_helper():
    T = Operator.parse("-(u_xx + u_yy)", coords=("x", "y"))
    assert T == -1 * laplacian(("x", "y"))
    assert T.order == 2
    assert "u_xx" in repr(T)


def test_parse_params_and_coefficients():
    T = Operator.parse("u_t - nu*u_xx", coords=("t", "x"), params={"nu": 0.01})
    assert dict(T.terms)[(0, (0, 2))] == sp.Float(-0.01)
    V = Operator.parse("u_xx + sin(pi*x)*u", coords=("x",))
    vals = V.coefficient_values(jnp.array([[0.5], [0.25]]))
    np.testing.assert_allclose(
        np.asarray(vals[(0, (0,))]), np.sin(np.pi * np.array([0.5, 0.25])), rtol=1e-15
    )
    assert Operator.parse("u_xxy", coords=("x", "y")).order == 3


def test_from_sympy():
    x, y = sp.symbols("x y")
    u = sp.Function("u")(x, y)
    T = Operator.from_sympy(u.diff(x, 2) + u.diff(y, 2) + x * u.diff(y), u, (x, y))
    assert T == Operator.parse("u_xx + u_yy + x*u_y", ("x", "y"))


def test_algebra():
    X = ("x",)
    dx = derivative(X, "x")
    assert dx @ dx == derivative(X, "x", 2)
    assert (dx + 2 * identity(X)).terms == Operator.parse("u_x + 2*u", X).terms
    # composition differentiates coefficients (Leibniz): ∂_x (x u) = u + x u_x
    xu = Operator.parse("x*u", X)
    assert dx @ xu == Operator.parse("u + x*u_x", X)


def test_linearization_burgers_and_allen_cahn():
    C = ("t", "x")
    B = Operator.parse("u_t + u*u_x - nu*u_xx", C, params={"nu": 0.01}, about="sin(pi*x)")
    terms = dict(B.terms)
    x = sp.Symbol("x", real=True)
    assert sp.simplify(terms[(0, (0, 0))] - sp.pi * sp.cos(sp.pi * x)) == 0  # ∂R/∂u = u0_x
    assert sp.simplify(terms[(0, (0, 1))] - sp.sin(sp.pi * x)) == 0  # ∂R/∂u_x = u0
    AC = Operator.parse("u_t - eps*u_xx + u**3 - u", C, params={"eps": 1e-3}, about="x")
    assert sp.simplify(dict(AC.terms)[(0, (0, 0))] - (3 * x**2 - 1)) == 0
    # a callable reference gives the same coefficient values
    B2 = Operator.parse(
        "u_t + u*u_x - nu*u_xx", C, params={"nu": 0.01}, about=lambda p: jnp.sin(jnp.pi * p[1])
    )
    pts = jnp.array([[0.1, 0.3], [0.5, 0.8]])
    for alpha, v in B.coefficient_values(pts).items():
        np.testing.assert_allclose(
            np.asarray(B2.coefficient_values(pts)[alpha]), np.asarray(v), rtol=1e-14
        )


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("u_xx + nu*u", {}, r"unknown name 'nu'.*params="),
        ("sinn(x)*u", {}, r"unknown function 'sinn'"),
        ("u_xz", {}, r"not made of coordinates"),
        ("u*u_x", {}, "nonlinear.*about=u0"),
        ("u_xx - x", {}, "forcing term"),
    ],
)
def test_bad_input(text, kwargs, match):
    with pytest.raises(OperatorError, match=match):
        Operator.parse(text, ("x",), **kwargs)


def test_neumann_fields_must_be_bound():
    N = neumann(("x", "y"))
    assert N.fields == ("n_x", "n_y")
    with pytest.raises(OperatorError, match="missing"):
        N.bind(n_x=np.ones(3))
    bound = N.bind(n_x=np.ones(3), n_y=np.zeros(3))
    assert bound.n_points == 3


def test_laplace_beltrami_on_spherical_harmonic():
    # Δ_S of the degree-2 harmonic x*y on S^2 is -k(k+d-2) x*y = -6 x*y.
    C = ("x", "y", "z")
    xs = sp.symbols("x y z", real=True)
    f = xs[0] * xs[1]
    expr = laplace_beltrami(C).to_sympy(f)
    p = np.array([0.3, -0.5, np.sqrt(1 - 0.34)])
    val = float(expr.subs(dict(zip(xs, p, strict=True))))
    assert abs(val - (-6 * p[0] * p[1])) < 1e-13
