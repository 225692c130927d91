"""The whitelist parser: operator, about= and parameter strings never run code.

Hostile strings (the ones an attacker would put in a config file or a web form) are refused
without side effects; random strings either parse to an Operator or raise OperatorError, fast;
ambiguous and unused names are errors, not silent guesses.
"""

import os
import time

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ntk_theory as nt
from ntk_theory.operators import Operator, OperatorError

HOSTILE = [
    "u + __import__('os').system('echo hi')*0",
    "u + open('/tmp/ntk_theory_pwned','w').write('x')*0",
    "u + (lambda: 1)()*0",
    "u + u.__class__",
    "u + [c for c in ().__class__.__bases__]",
    "u + eval('1')",
    "u + exec('x=1')",
    "u + globals()",
    "u + sin.__globals__",
    "u + x[0]",
    "u if x else u",
    "u + 'text'",
    "u + f'{x}'",
    "u + (x := 1)",
    "u + 1 < 2",
    "u + x^2",  # Python's XOR, not a power
    "9**9**9*u",
    "u + 10**400",
    "(" * 500 + "u" + ")" * 500,
    "u" + "+u" * 3000,
    "u.xx",
    "u_xxxxxxxxxxx",  # order 11: refused (an order-10 kernel ran for minutes)
    "",
    "   ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_are_refused_without_side_effects(text, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = "/tmp/ntk_theory_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    t0 = time.perf_counter()
    with pytest.raises(OperatorError):
        Operator.parse(text, ("x",))
    assert time.perf_counter() - t0 < 2.0
    assert not os.path.exists(marker)
    assert capfd.readouterr().out == ""  # nothing ran `echo`


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"about": "__import__('os').system('echo hi')"}, "unknown (name|function)|not allowed"),
        ({"about": "foo(x)"}, "unknown function 'foo'"),
        ({"params": {"nu": "__import__('os')"}}, "not allowed|unknown"),
        ({"params": {"nu": "x"}}, "unknown name 'x'"),
        ({"params": {"nu": float("nan")}}, "finite"),
        ({"params": {"nu": "1/0"}}, "division by zero"),
    ],
)
def test_about_and_params_are_parsed_too(kwargs, match, capfd):
    text = "u*u_x - nu*u_xx" if "params" in kwargs else "u*u_x"
    with pytest.raises(OperatorError, match=match):
        Operator.parse(text, ("x",), **kwargs)
    assert capfd.readouterr().out == ""


def test_parameter_strings_and_numbers():
    T = Operator.parse("u_t - nu*u_xx + c*u", ("t", "x"), params={"nu": "1/100", "c": 2})
    terms = dict(T.terms)
    assert terms[(0, (0, 2))] == sp.Rational(-1, 100) and terms[(0, (0, 0))] == 2


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("u_xxx", {"coords": ("x", "xx")}, "more than one way"),
        (
            "u_xx + u",
            {"coords": ("x",), "params": {"nu": 1.0}},
            r"\['nu'\] is declared .* not used",
        ),
        ("u_x", {"coords": ("x", "y"), "fields": ["n_x"]}, r"\['n_x'\] is declared"),
        (None, {"coords": ("x",)}, "must be a string"),
        ("u", {"coords": "xy"}, "sequence of names"),
        ("u", {"coords": ("x", "pi")}, "reserved"),
        ("u", {"coords": ("x",), "function": "sin"}, "not usable"),
        ("u_x", {"coords": ("x",), "params": {"sin": 1}}, "reserved"),
    ],
)
def test_ambiguous_unused_and_reserved_names(text, kwargs, match):
    coords = kwargs.pop("coords")
    with pytest.raises(OperatorError, match=match):
        Operator.parse(text, coords, **kwargs)


def test_nan_coefficients_are_named():
    T = Operator.parse("u_x + 1/x*u", ("x",))
    with pytest.raises(OperatorError, match=r"coefficient 1/x of u is (inf|nan) at point 1"):
        nt.operator_kernel(nt.MLP(1, "erf", 1.0, 1.0), T, [[0.5], [0.0]])
    N = nt.neumann(("x", "y"))
    with pytest.raises(OperatorError, match="not finite at point 0"):
        N.bind(n_x=[float("nan"), 1.0], n_y=[0.0, 0.0])


# ----------------------------------------------------------------------------------------------
# fuzzing: any string → an Operator or OperatorError, quickly, with no side effect
# ----------------------------------------------------------------------------------------------
TOKENS = [
    "u",
    "u_x",
    "u_xx",
    "u_y",
    "u_xy",
    "v",
    "x",
    "y",
    "nu",
    "pi",
    "E",
    "sin",
    "exp",
    "(",
    ")",
    "+",
    "-",
    "*",
    "/",
    "**",
    "2",
    "0.5",
    "1e3",
    "0",
    "__import__",
    "os",
    ".",
    ",",
    "[",
    "]",
    "lambda",
    ":",
    "'",
    '"',
    "=",
    "^",
    "%",
    "@",
    "abs",
    "sqrt",
    " ",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_fuzz_token_soup(text):
    t0 = time.perf_counter()
    try:
        op = Operator.parse(text, ("x", "y"), params={"nu": 0.1} if "nu" in text else None)
    except OperatorError:
        pass
    else:
        assert isinstance(op, Operator) and op.order <= 6
    assert time.perf_counter() - t0 < 2.0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_arbitrary_text(text):
    try:
        Operator.parse(text, ("x",))
    except OperatorError:
        pass
