"""Params from the command line and from a YAML file, checked before anything runs.

`--param NAME=VALUE` is parsed by the param's declared type (LANGUAGE.md §8); a params file
is a YAML mapping loaded safely; the command line wins. Unknown names, type errors and
`choices`/`pattern` misses are usage errors (exit 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import EvalError, ParamError
from ..lazy import compile_later
from ..limits import (
    MAX_NUMBER_CHARS,
    MAX_PARAMS_BYTES,
    TooLarge,
    int_in_range,
    read_bounded,
    size_text,
)
from ..syntax import nodes as n
from ..syntax.lexicon import duration_ms
from .builtins import json_int
from .evaluate import Evaluator
from .regex import search
from .values import Duration, to_text, type_name

INT_TEXT = compile_later(r"-?[0-9]+")
FLOAT_TEXT = compile_later(r"-?[0-9]+(\.[0-9]+)?")


def declared_type(param: n.Param) -> str:
    """A param's type: declared, else its default's, else string."""
    if param.type is not None:
        return param.type.name
    if param.default is not None:
        return {"literal": None, "duration": "duration", "list": "list",
                "string": "string"}.get(param.default.kind) or (
            param.default.type if param.default.kind == "literal" else "string")
    return "string"


def parse_cli_value(text: str, ptype: str, name: str):
    """Parse `--param NAME=TEXT` by the param's type."""
    try:
        # Numbers as the language writes them: no `1_000`, `0x10`, `nan` or `inf`.
        if ptype == "int":
            # Checked before int(): Python refuses thousands of digits with its own message.
            if not INT_TEXT.fullmatch(text.strip()) or len(text.strip()) > 20 or \
                    not int_in_range(int(text.strip())):
                raise ValueError(text)
            return int(text.strip())
        if ptype == "float":
            if not FLOAT_TEXT.fullmatch(text.strip()) or len(text.strip()) > MAX_NUMBER_CHARS \
                    or not math.isfinite(float(text.strip())):
                raise ValueError(text)
            return float(text.strip())
        if ptype == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "1"):
                return True
            if lowered in ("false", "no", "0"):
                return False
            raise ValueError
        if ptype == "duration":
            return parse_duration(text.strip())
        if ptype == "list":
            return _parse_list(text)
    except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
        raise ParamError(f"param `{name}` is {ptype}: cannot read {_quoted(text)} as {ptype}"
                         + _hint(ptype)) from None
    return text


def _quoted(text: str) -> str:
    """A value quoted for a message, cut to a readable length."""
    return repr(text) if len(text) <= 80 else f"{text[:80]!r}… ({len(text):,} characters)"


def _cut(text: str) -> str:
    """A value's text for a message, cut to a readable length."""
    return text if len(text) <= 80 else f"{text[:80]}… ({len(text):,} characters)"


def _hint(ptype: str) -> str:
    return {"int": " (ints are 64-bit: up to 9223372036854775807)",
            "bool": " (use true/false, yes/no or 1/0)",
            "duration": " (use the language's syntax: 90s, 5m, 1h30m)",
            "list": ' (use JSON, ["a","b"], or comma-separated text)'}.get(ptype, "")


def parse_duration(text: str) -> Duration:
    """`90s`, `1h30m` -> Duration; ValueError otherwise."""
    ms = duration_ms(text)
    if ms is None:
        raise ValueError(text)
    return Duration(ms)


def _parse_list(text: str) -> list:
    stripped = text.strip()
    if stripped.startswith("["):
        value = json.loads(stripped, parse_int=json_int)
        if not isinstance(value, list):
            raise ValueError
        return value
    if not stripped:
        return []
    return [item.strip() for item in stripped.split(",")]


class ParamsFile(dict):
    """The values of a params file; `written` holds each top-level scalar as it was written."""

    def __init__(self, values: dict, written: dict) -> None:
        super().__init__(values)
        self.written = written


def coerce_file_value(value, ptype: str, name: str, written=None):
    """A value from the YAML params file, checked against the param's type.

    `written` is the scalar's text as written: YAML reads `1.10` as the float 1.1 and `0123`
    as the octal 83, and a string param must get what the file says, not that.
    """
    if ptype == "string" and isinstance(value, str):
        return value
    if ptype == "string" and value is not None and not isinstance(value, (list, dict)):
        if isinstance(written, str):
            return written
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    if ptype == "int" and isinstance(value, int) and not isinstance(value, bool) \
            and int_in_range(value):
        return value
    if ptype == "float" and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value):
        return float(value)
    if ptype == "bool" and isinstance(value, bool):
        return value
    if ptype == "bool" and value in (0, 1) and isinstance(value, int):
        return bool(value)  # as on the command line, where 1 and 0 are accepted
    if ptype == "list" and isinstance(value, list):
        return value
    if ptype == "duration" and isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    if isinstance(value, str) and ptype in ("int", "float", "bool", "list"):
        return parse_cli_value(value, ptype, name)
    shown = _quoted(value) if isinstance(value, str) else _cut(to_text(value))
    hint = _hint(ptype) if ptype == "int" and isinstance(value, int) else ""
    raise ParamError(f"param `{name}` is {ptype}, but the params file gives "
                     f"{type_name(value)} {shown}{hint}")


def load_params_file(path: Path) -> ParamsFile:
    """A YAML mapping of param names to values, read within bounds (LANGUAGE.md §6.7).

    The file is at most MAX_PARAMS_BYTES; it is composed into nodes (aliases stay shared
    nodes) and the values are built under a budget, so an alias bomb is refused after a
    bounded amount of work instead of expanding to gigabytes.
    """
    from ..targets.yamlnodes import NodeReader, Problem, read_yaml

    where = f"params file {path}"
    try:
        text = read_bounded(path, MAX_PARAMS_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ParamError(f"{where}: no such file") from None
    except TooLarge:
        raise ParamError(f"{where}: too large: a params file is at most "
                         f"{size_text(MAX_PARAMS_BYTES)}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ParamError(f"{where}: cannot read: {error}") from None
    reader = NodeReader(str(path), kind="params file")
    values: dict = {}
    written: dict = {}
    try:
        root = read_yaml(text, kind="params file")
        if reader.is_null(root):
            return ParamsFile({}, {})
        if not reader.is_mapping(root):
            raise ParamError(f"{where}: expected a mapping of names to values, found "
                             f"{_yaml_kind(root)}")
        for key, node in reader.pairs(root, what="the params file", merge=True):
            name = reader.key_text(key)
            values[name] = reader.value(node, depth=1)
            if node.id == "scalar":
                # As written: YAML reads `1.10` as 1.1 and `0123` as 83; a string param
                # gets what the file says.
                written[name] = node.value
    except Problem as problem:
        place = f" (line {problem.node.start_mark.line + 1})" if problem.node is not None \
            else f" (line {problem.mark.line + 1})" if problem.mark is not None else ""
        raise ParamError(f"{where}: {problem.message}{place}") from None
    return ParamsFile(values, written)


def _yaml_kind(node) -> str:
    return {"sequence": "a list", "scalar": "a single value"}.get(node.id, node.id)


def split_assignments(items: list[str]) -> dict[str, str]:
    """`["a=1", "b=x=y"]` -> {"a": "1", "b": "x=y"}."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParamError(f"--param {item!r}: expected NAME=VALUE")
        out[name.strip()] = value
    return out


def resolve_params(params: list[n.Param], cli: dict[str, str], file_values: dict,
                   evaluator_for) -> dict:
    """Every param's value: command line, else file, else default; all problems at once."""
    problems: list[str] = []
    by_name = {p.name.name: p for p in params}
    for name in [*cli, *file_values]:
        if name not in by_name:
            close = _close(name, by_name)
            problems.append(f"unknown param `{name}`" + (f" (did you mean `{close}`?)"
                                                         if close else ""))
    values: dict = {}
    for param in params:
        name = param.name.name
        ptype = declared_type(param)
        try:
            if name in cli:
                value = parse_cli_value(cli[name], ptype, name)
            elif name in file_values:
                value = coerce_file_value(file_values[name], ptype, name,
                                          getattr(file_values, "written", {}).get(name))
            elif param.default is not None:
                value = evaluator_for(values).eval(param.default)
                if ptype == "float" and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
            else:
                problems.append(f"param `{name}` is required: pass --param {name}=VALUE")
                continue
            check_constraints(param, value, evaluator_for(values))
        except (ParamError, EvalError) as error:
            problems.append(str(error))
            continue
        values[name] = value
    if problems:
        raise ParamError("\n".join(problems))
    return values


def check_constraints(param: n.Param, value, evaluator: Evaluator) -> None:
    """`choices` and `pattern` of a param."""
    name = param.name.name
    if param.choices is not None:
        choices = evaluator.eval(param.choices)
        if value not in choices:
            raise ParamError(f"param `{name}`: {to_text(value)!r} is not one of "
                             + ", ".join(repr(to_text(c)) for c in choices))
    if param.pattern is not None:
        pattern = "".join(p.value for p in param.pattern.parts if p.kind == "text")
        if not pattern_matches(pattern, to_text(value)):
            raise ParamError(f"param `{name}`: {to_text(value)!r} does not match the pattern "
                             f"`{pattern}`")


def pattern_matches(pattern: str, text: str) -> bool:
    """`pattern` searched in `text` by RE2 (`regex.py`), where `$` is the very end of the
    value: Python's `$` would also accept a value that ends in a newline (`1.0.0\\n`)."""
    return search(pattern, text)


def _close(name: str, names) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, list(names), n=1)
    return found[0] if found else None
