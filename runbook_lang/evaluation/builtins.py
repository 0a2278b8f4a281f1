"""The builtin functions: one table, read by the checker and by the evaluator.

Each entry names the function, the types of its parameters (`any` for any value; the first
`required` must be given), the type of its result (None when only the run knows it, as for
`json()`), and the implementation the evaluator calls.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable

from ..dataclass import dataclass
from ..errors import EvalError
from ..hints import TYPE_CHECKING
from ..lazy import compile_later
from ..limits import INT_MIN, MAX_NUMBER_CHARS, int_in_range
from .values import to_json, to_text, type_name

if TYPE_CHECKING:
    from typing import Any

NUMERIC = (int, float)
# Numbers as number() reads them: an optional sign, digits, an optional fraction or exponent.
INT_TEXT = compile_later(r"[-+]?[0-9]+")
FLOAT_TEXT = compile_later(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Builtin:
    """A builtin function: its signature, for the checker, and its implementation."""

    name: str
    params: tuple[str, ...]
    required: int
    result: str | None
    apply: Callable[..., Any]

    @property
    def min_args(self) -> int:
        """The fewest arguments a call may give."""
        return self.required

    @property
    def max_args(self) -> int:
        """The most arguments a call may give."""
        return len(self.params)


def _number(value):
    if isinstance(value, bool):
        raise EvalError("number() of a bool")
    if isinstance(value, NUMERIC):
        return value
    if isinstance(value, str):
        text = value.strip()
        # Never handed to int() beyond this: Python refuses ints of thousands of digits
        # with a message about itself.
        if len(text) <= MAX_NUMBER_CHARS:
            if INT_TEXT.fullmatch(text):
                number = int(text)
                if int_in_range(number):
                    return number
                raise EvalError("number(): {0} is beyond the 64-bit range of ints", value)
            if FLOAT_TEXT.fullmatch(text):
                real = float(text)
                if math.isfinite(real):
                    return real
        raise EvalError("number(): {0} is not a number", value)
    raise EvalError(f"number() of {type_name(value)}")


def _int(value):
    if isinstance(value, bool):
        return int(value)
    number = _named("int", value)
    if isinstance(number, float):
        if not math.isfinite(number) or not INT_MIN <= number < 2.0 ** 63:
            raise EvalError("int(): {0} is beyond the 64-bit range of ints", to_text(number))
        return int(number)
    return number


def _float(value):
    if isinstance(value, bool):
        return float(value)
    return float(_named("float", value))


def _named(name: str, value):
    """number()'s conversion, with errors that name the builtin the author called."""
    try:
        return _number(value)
    except EvalError as error:
        raise error.renamed("number()", f"{name}()") from None


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off", ""):
            return False
        raise EvalError("bool(): {0} is not true or false", value)
    if isinstance(value, NUMERIC):
        return value != 0
    if isinstance(value, (list, dict)):
        return bool(value)
    raise EvalError(f"bool() of {type_name(value)}")


def _len(value):
    if isinstance(value, (str, list, dict)):
        return len(value)
    raise EvalError(f"len() of {type_name(value)}")


def _text_fn(name: str, fn):
    def apply(value):
        if not isinstance(value, str):
            raise EvalError(f"{name}() needs text, got {type_name(value)}")
        return fn(value)
    return apply


def _json(value):
    if not isinstance(value, str):
        raise EvalError(f"json() needs text, got {type_name(value)}")
    try:
        return json.loads(value, parse_int=json_int)
    except json.JSONDecodeError as error:
        raise EvalError(f"json(): not valid JSON ({error.msg} at character {error.pos})") \
            from None
    except RecursionError:
        raise EvalError("json(): the JSON nests too deeply") from None


def json_int(text: str) -> int | float:
    """A JSON integer: an int within the 64-bit range, else a float (as JavaScript reads
    it): never handed to int() when it has thousands of digits."""
    if len(text) <= 20:
        number = int(text)
        if int_in_range(number):
            return number
    return float(text)


def _to_json(value) -> str:
    """The JSON text of a value: strings quoted, lists and objects kept structured."""
    try:
        return json.dumps(to_json(value), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise EvalError("to_json(): an infinite number has no JSON form") from None
    except RecursionError:
        raise EvalError("to_json(): the value nests too deeply") from None


def _getenv(name, default=""):
    if not isinstance(name, str):
        raise EvalError("getenv() needs a variable name")
    return os.environ.get(name, default)


def _table(*builtins: Builtin) -> dict[str, Builtin]:
    return {builtin.name: builtin for builtin in builtins}


BUILTINS: dict[str, Builtin] = _table(
    Builtin("number", ("any",), 1, "number", _number),
    Builtin("int", ("any",), 1, "int", _int),
    Builtin("float", ("any",), 1, "float", _float),
    Builtin("str", ("any",), 1, "string", to_text),
    Builtin("bool", ("any",), 1, "bool", _to_bool),
    Builtin("len", ("any",), 1, "int", _len),
    Builtin("lower", ("string",), 1, "string", _text_fn("lower", str.lower)),
    Builtin("upper", ("string",), 1, "string", _text_fn("upper", str.upper)),
    Builtin("trim", ("string",), 1, "string", _text_fn("trim", str.strip)),
    Builtin("json", ("string",), 1, None, _json),
    Builtin("to_json", ("any",), 1, "string", _to_json),
    Builtin("getenv", ("string", "string"), 1, "string", _getenv),
    Builtin("raw", ("any",), 1, "string", to_text),
)
