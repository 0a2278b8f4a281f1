"""Expression evaluation and string rendering, shared by the plan and the interpreter.

Interpolation into a command is shell-quoted for the context it lands in (`quoting`): `{{ x }}`
is one literal shell word whatever `x` holds; only `{{ raw(x) }}` inserts text as it is
(LANGUAGE.md §6.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import EvalError
from ..limits import INT_MAX, INT_MIN, MAX_LIST_ITEMS, MAX_VALUE_CHARS, int_in_range
from ..syntax import nodes as n
from ..syntax.shellwords import contexts_of
from .builtins import BUILTINS
from .quoting import check_no_nul, quote_for
from .regex import PatternError, search
from .values import Duration, Unknown, to_text, type_name

Lookup = Callable[[str], object]
NUMERIC = (int, float)


class Evaluator:
    """Evaluates expressions against a name lookup (which raises EvalError for unset names)."""

    def __init__(self, lookup: Lookup, on_interpolation=None) -> None:
        self.lookup = lookup
        # Told of each interpolated value as it is rendered (the run masks secret-derived
        # ones with it).
        self.on_interpolation = on_interpolation

    def eval(self, expr):
        """The value of an expression."""
        return getattr(self, f"eval_{expr.kind}")(expr)

    # ------------------------------------------------------------------ strings

    def render(self, string: n.String, quote: bool = False) -> str:
        """A string's text; with `quote` (a `run` command), each interpolation is quoted for
        the shell context it lands in, so that it stays one literal word."""
        pieces: list[str | None] = []  # the text for the shell lexer; None: a value's place
        values: list[tuple[int, str, bool]] = []  # (place, text, to be quoted)
        raw_seen = False
        for part in string.parts:
            if part.kind == "text":
                pieces.append(part.value)
                continue
            value = self.eval(part.expr)
            text = to_text(value)
            if self.on_interpolation is not None and not isinstance(value, Unknown):
                self.on_interpolation(part.expr, text)
            known = not isinstance(value, Unknown)
            if quote and known and _is_raw(part.expr):
                # raw() text is shell text: it takes part in deciding the later contexts.
                check_no_nul(text)
                raw_seen = True
                pieces.append(text)
                continue
            # A value known only at run time is shown as it is (in a plan, never run).
            values.append((len(pieces), text, quote and known))
            pieces.append(None)
        contexts = contexts_of(pieces) if quote else (None,) * len(values)
        out = list(pieces)
        for (place, text, to_quote), context in zip(values, contexts, strict=True):
            if to_quote and context is not None:
                if raw_seen and not context.safe:
                    raise EvalError("the text of raw() earlier in the command puts a later "
                                    f"value {context.reason}")
                text = quote_for(context, text)
            out[place] = text
        return "".join(piece or "" for piece in out)

    def eval_string(self, e: n.String) -> str | Unknown:
        values = [self.eval(p.expr) for p in e.parts if p.kind == "interpolation"]
        unknown = next((v for v in values if isinstance(v, Unknown)), None)
        if unknown is not None:
            # The text as it will be, with each run-time part shown by its placeholder.
            return Unknown(f"text with {unknown.source}", template=self.render(e))
        return self.render(e)

    # ------------------------------------------------------------------ atoms

    def eval_literal(self, e: n.Literal_):
        return e.value

    def eval_duration(self, e: n.Duration) -> Duration:
        return Duration(e.ms)

    def eval_list(self, e: n.ListExpr) -> list:
        return [self.eval(item) for item in e.items]

    def eval_name(self, e: n.Name):
        return self.lookup(e.name)

    def eval_field(self, e: n.FieldAccess):
        target = self.eval(e.target)
        if isinstance(target, Unknown):
            return Unknown(f"{target.source}, field {e.name}", expr=f"{target.inner}.{e.name}")
        if isinstance(target, dict):
            if e.name in target:
                return target[e.name]
            fields = ", ".join(map(str, target))
            if not fields:
                raise EvalError(f"no field `{e.name}` (fields: none)")
            # Field names come from data (a JSON answer): shown as values, so masked.
            raise EvalError(f"no field `{e.name}` (fields: {{0}})", fields, width=200,
                            quote=False)
        raise EvalError(f"{type_name(target)} has no fields (reading `.{e.name}`)")

    def eval_index(self, e: n.Index):
        target, index = self.eval(e.target), self.eval(e.index)
        if isinstance(target, Unknown):
            return Unknown(f"{target.source}, item {to_text(index)}",
                           expr=f"{target.inner}[{_shown(index)}]")
        if isinstance(index, Unknown):
            return Unknown(f"an item picked by {index.source}",
                           expr=f"{_shown(target)}[{index.inner}]")
        try:
            if isinstance(target, dict):
                return target[index]
            if isinstance(target, (list, str)) and isinstance(index, int) \
                    and not isinstance(index, bool):
                return target[index]
        except (KeyError, IndexError):
            raise EvalError("index {0} is out of range", to_text(index),
                            quote=isinstance(index, str)) from None
        except TypeError:  # a list or an object used as a key
            pass
        raise EvalError(f"cannot index {type_name(target)} with {type_name(index)}")

    def eval_call(self, e: n.Call):
        args = [self.eval(a) for a in e.args]
        unknown = next((a for a in args if isinstance(a, Unknown)), None)
        if unknown is not None:
            return Unknown(f"{e.func.name}() of {unknown.source}",
                           expr=f"{e.func.name}({', '.join(map(_shown, args))})")
        builtin = BUILTINS.get(e.func.name)
        if builtin is None:
            raise EvalError(f"unknown function `{e.func.name}`")
        return builtin.apply(*args)

    # ------------------------------------------------------------------ operators

    def eval_unary(self, e: n.Unary):
        value = self.eval(e.operand)
        if isinstance(value, Unknown):
            return value
        if e.op == "not":
            return not _bool(value, "not")
        if isinstance(value, Duration):
            return _duration("-", -value.ms)
        if isinstance(value, NUMERIC) and not isinstance(value, bool):
            return _int_result("-", -value)
        raise EvalError(f"cannot negate {type_name(value)}")

    def eval_binary(self, e: n.Binary):
        if e.op in ("and", "or"):
            return self._logic(e)
        left, right = self.eval(e.left), self.eval(e.right)
        # A value computed from a run-time value says where that value comes from.
        unknown = left if isinstance(left, Unknown) else right
        if isinstance(unknown, Unknown):
            source = unknown.source.removeprefix("computed from ")
            return Unknown(f"computed from {source}",
                           expr=f"{_shown(left)} {e.op} {_shown(right)}")
        return binary(e.op, left, right)

    def _logic(self, e: n.Binary):
        left = self.eval(e.left)
        if not isinstance(left, Unknown):
            left = _bool(left, e.op)
            if e.op == "and" and not left:
                return False
            if e.op == "or" and left:
                return True
        right = self.eval(e.right)
        if isinstance(right, Unknown) or isinstance(left, Unknown):
            if not isinstance(right, Unknown):
                right = _bool(right, e.op)
                if (e.op == "and" and not right) or (e.op == "or" and right):
                    return right
            return Unknown("decided at run time")
        return _bool(right, e.op)


def _shown(value) -> str:
    """A value inside a placeholder's expression: an Unknown by its own, others as written."""
    if isinstance(value, Unknown):
        return value.inner
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return to_text(value)


def binary(op: str, left, right):
    """Apply a binary operator to two known values."""
    if op in ("==", "!="):
        _same_kind(op, left, right)
        equal = left == right
        return equal if op == "==" else not equal
    if op in ("<", "<=", ">", ">="):
        _same_kind(op, left, right)
        if isinstance(left, (bool, list, dict)) or left is None:
            raise EvalError(f"`{op}` does not order {type_name(left)} values")
        return {"<": left < right, "<=": left <= right, ">": left > right,
                ">=": left >= right}[op]
    if op in ("in", "not in"):
        found = _contains(right, left, op)
        return found if op == "in" else not found
    if op == "contains":
        return _contains(left, right, op)
    if op == "matches":
        if not isinstance(left, str) or not isinstance(right, str):
            raise EvalError(f"`matches` needs text, got {type_name(left)} and {type_name(right)}")
        try:
            return search(right, left)
        except PatternError as error:
            # The pattern may be built from a secret: it is shown as a value (masked whole),
            # and RE2's reason without the piece of the pattern it quotes after its colon,
            # which the mask could not recognise as part of a secret.
            raise EvalError("invalid regular expression {0}: " + error.general(), right,
                            width=200) from None
    return _arithmetic(op, left, right)


def _arithmetic(op: str, left, right):
    num_l = isinstance(left, NUMERIC) and not isinstance(left, bool)
    num_r = isinstance(right, NUMERIC) and not isinstance(right, bool)
    if num_l and num_r:
        if op == "/":
            if right == 0:
                raise EvalError("division by zero")
            return left / right
        return _int_result(op, {"+": left + right, "-": left - right, "*": left * right}[op])
    if op == "+" and type(left) is type(right) and isinstance(left, (str, list)):
        limit = MAX_VALUE_CHARS if isinstance(left, str) else MAX_LIST_ITEMS
        if len(left) + len(right) > limit:
            what = "characters" if isinstance(left, str) else "items"
            raise EvalError(f"`+` would make {type_name(left)} of {len(left) + len(right):,} "
                            f"{what}, more than the {limit:,} a value may hold")
        return left + right
    if isinstance(left, Duration) and isinstance(right, Duration) and op in "+-":
        return _duration(op, left.ms + right.ms if op == "+" else left.ms - right.ms)
    if isinstance(left, Duration) and num_r and op in "*/":
        if op == "/" and right == 0:
            raise EvalError("division by zero")
        return _duration(op, left.ms * right if op == "*" else left.ms / right)
    if num_l and isinstance(right, Duration) and op == "*":
        return _duration(op, left * right.ms)
    raise EvalError(f"cannot apply `{op}` to {type_name(left)} and {type_name(right)}")


def _int_result(op: str, value):
    """An int result within the language's 64-bit range (a float is left as it is)."""
    if isinstance(value, int) and not int_in_range(value):
        raise EvalError(f"int overflow: `{op}` gives a result beyond the 64-bit range "
                        f"({INT_MIN:,} to {INT_MAX:,})")
    return value


def _duration(op: str, ms: int | float) -> Duration:
    """A duration result, in whole milliseconds within the 64-bit range."""
    if (isinstance(ms, float) and not math.isfinite(ms)) or not INT_MIN <= ms <= INT_MAX:
        raise EvalError(f"duration overflow: `{op}` gives a duration beyond the 64-bit range "
                        "of milliseconds")
    return Duration(int(ms))


def _same_kind(op: str, left, right) -> None:
    kinds = {type_name(left), type_name(right)}
    if len(kinds) == 1 or kinds <= {"int", "float"}:
        return
    raise EvalError(f"cannot compare {type_name(left)} {{0}} with {type_name(right)} {{1}} "
                    f"using `{op}`", to_text(left), to_text(right), width=200)


def _contains(container, item, op: str) -> bool:
    if isinstance(container, list):
        if container and not any(_comparable(item, element) for element in container):
            # `"2" in [1, 2]` is a type mix-up, not a miss (LANGUAGE.md §5).
            raise EvalError(f"`{op}`: a {type_name(item)} is never in a list of "
                            f"{type_name(container[0])} values")
        return item in container
    if isinstance(container, str):
        if not isinstance(item, str):
            raise EvalError(f"`{op}` on text needs text, got {type_name(item)}")
        return item in container
    if isinstance(container, dict):
        return item in container
    raise EvalError(f"`{op}` needs a list or text, got {type_name(container)}")


def _comparable(left, right) -> bool:
    kinds = {type_name(left), type_name(right)}
    return len(kinds) == 1 or kinds <= {"int", "float"}


def _bool(value, op: str) -> bool:
    if isinstance(value, bool):
        return value
    raise EvalError(f"`{op}` needs a bool, got {type_name(value)} {{0}}", to_text(value),
                    width=200)


def _is_raw(expr) -> bool:
    return expr.kind == "call" and expr.func.name == "raw"
