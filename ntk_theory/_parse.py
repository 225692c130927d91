"""Text → sympy, by a whitelist: nothing in a user's string is ever evaluated as code.

Operator strings, reference functions (``about=``) and string parameter values come from
notebooks, config files and command lines. ``sympy.parse_expr`` (like ``eval``) runs arbitrary
Python -- ``"u + __import__('os').system('…')*0"`` executes the command. Here the text is parsed
by Python's own *parser* (``ast.parse``, which builds a syntax tree and executes nothing), and the
tree is walked with a whitelist:

* numbers (integers and decimals, at most :data:`MAX_DIGITS` digits),
* names the caller declares (coordinates, parameters, fields, the unknowns and their
  derivatives ``u_xx``), ``pi`` and ``E``,
* ``+  -  *  /  **`` and unary ``±``, parentheses,
* calls of the elementary functions in :data:`FUNCTIONS`, one argument each.

Everything else (attributes, subscripts, keywords, comparisons, lambdas, strings, ``^``...) is
an :class:`ExpressionError` that says what was found and what is allowed. Sizes are bounded --
:data:`MAX_LENGTH` characters, :data:`MAX_NODES` syntax nodes, nesting depth :data:`MAX_DEPTH`,
exponents numeric with ``|p| ≤`` :data:`MAX_EXPONENT` -- so ``9**9**9`` is refused at once instead
of computing a 370-million-digit integer.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

import sympy as sp

__all__ = ["FUNCTIONS", "ExpressionError", "parse_expression"]

MAX_LENGTH = 4000
MAX_NODES = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 12
MAX_DIGITS = 40

#: The functions an expression may call (sympy's, so the result stays symbolic).
FUNCTIONS: dict[str, Callable] = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "atan": sp.atan,
    "asin": sp.asin,
    "acos": sp.acos,
    "erf": sp.erf,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "sign": sp.sign,
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}


class ExpressionError(ValueError):
    """A string could not be read as an expression (or was refused for safety)."""


def parse_expression(
    text: str,
    names: Callable[[str], sp.Expr | None] | Mapping[str, sp.Expr],
    *,
    what: str = "expression",
) -> sp.Expr:
    """Parse ``text`` into a sympy expression, resolving names with ``names``.

    Args:
        text: the expression, e.g. ``"u_xx + sin(pi*x)*u"``.
        names: a mapping (or a function returning ``None`` for unknown names) from the names the
            text may use to sympy objects; ``pi``, ``E`` and :data:`FUNCTIONS` are always known.
        what: how to call the text in error messages (``"operator"``, ``"about="`` ...).

    Raises:
        ExpressionError: not a string, too long, a syntax error, anything outside the whitelist,
            an unknown name, a non-numeric or too large exponent.

    Example:
        >>> x = sympy.Symbol("x")
        >>> parse_expression("2*x**2 + sin(pi*x)", {"x": x})
        2*x**2 + sin(pi*x)
    """
    if not isinstance(text, str):
        raise ExpressionError(
            f"The {what} must be a string such as 'u_xx + u', got {type(text).__name__} {text!r}."
        )
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"The {what} is {len(text)} characters long; at most {MAX_LENGTH} are accepted."
        )
    if not text.strip():
        raise ExpressionError(f"The {what} is empty.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        hint = ""
        if "." in text:
            hint = " ('.' is only allowed in decimal numbers: write u_xx, not u.xx)"
        raise ExpressionError(f"Cannot parse the {what} {text!r}: {err.msg}{hint}.") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"The {what} {text[:60]!r}... is nested too deeply.") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(
            f"The {what} has {count} syntax nodes; at most {MAX_NODES} are accepted."
        )
    lookup = names if callable(names) else names.get
    return _Builder(text, lookup, what).build(tree.body, 0)


class _Builder:
    def __init__(self, text: str, lookup: Callable[[str], sp.Expr | None], what: str):
        self.text, self.lookup, self.what = text, lookup, what

    def fail(self, message: str):
        raise ExpressionError(f"In the {self.what} {self.text!r}: {message}")

    def build(self, node: ast.AST, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH} levels is not accepted.")
        if isinstance(node, ast.Constant):
            return self.number(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand, depth + 1)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            self.fail(f"the operator {type(node.op).__name__} is not allowed (only + and -).")
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        kind = type(node).__name__
        hints = {
            "Attribute": "attributes (a.b) are not allowed (derivatives are written u_xx, not u.xx)",
            "Subscript": "indexing (a[...]) is not allowed",
            "Compare": "comparisons are not allowed",
            "BoolOp": "and/or are not allowed",
            "Lambda": "lambdas are not allowed",
            "IfExp": "conditional expressions are not allowed",
            "Tuple": "tuples are not allowed (one expression only)",
            "List": "lists are not allowed",
            "JoinedStr": "strings are not allowed",
        }
        self.fail(f"{hints.get(kind, f'{kind} is not allowed')}. {_ALLOWED}")

    def number(self, value) -> sp.Expr:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{value!r} is not a number. {_ALLOWED}")
        if isinstance(value, int):
            if len(str(abs(value))) > MAX_DIGITS:
                self.fail(f"integers have at most {MAX_DIGITS} digits.")
            return sp.Integer(value)
        if value != value or value in (float("inf"), float("-inf")):
            self.fail("numbers must be finite.")
        return sp.Float(value)

    def name(self, ident: str) -> sp.Expr:
        if ident in CONSTANTS:
            return CONSTANTS[ident]
        found = self.lookup(ident)
        if found is None:
            if ident in FUNCTIONS:
                self.fail(f"'{ident}' is a function: call it, e.g. {ident}(x).")
            self.fail(f"unknown name {ident!r}.")
        return found

    def binop(self, node: ast.BinOp, depth: int) -> sp.Expr:
        op = node.op
        if isinstance(op, ast.BitXor):
            self.fail(
                "'^' is not a power here (Python reads it as XOR, with other precedence): write x**2."
            )
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            if right == 0:
                self.fail("division by zero.")
            return left / right
        if isinstance(op, ast.Pow):
            if not right.is_number or not right.is_real:
                self.fail(
                    f"exponents must be numbers (got {right}); write exp(...) for exponentials."
                )
            if abs(float(right)) > MAX_EXPONENT:
                self.fail(f"exponents are limited to |p| ≤ {MAX_EXPONENT} (got {right}).")
            if left == 0 and float(right) < 0:
                self.fail("0 to a negative power.")
            return left**right
        self.fail(f"the operator {type(op).__name__} is not allowed (only + - * / **).")

    def call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            self.fail(
                f"unknown function {shown!r}. Known functions: {', '.join(sorted(FUNCTIONS))}."
            )
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            self.fail(f"{node.func.id}() takes exactly one argument.")
        arg = self.build(node.args[0], depth + 1)
        return FUNCTIONS[node.func.id](arg)


_ALLOWED = (
    "Allowed: numbers, declared names, + - * / ** and calls of "
    + ", ".join(sorted(FUNCTIONS))
    + "."
)
