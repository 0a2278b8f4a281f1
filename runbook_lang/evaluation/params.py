"""Params from the command line and from a YAML file, checked before anything runs.

`--param NAME=VALUE` is parsed by the param's declared type (LANGUAGE.md §8); a params file
is a YAML mapping loaded safely; the command line wins. Unknown names, type errors and
`choices`/`pattern` misses are usage errors (exit 2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import EvalError, ParamError
from ..syntax import nodes as n
from ..syntax.lexicon import duration_ms
from .evaluate import Evaluator
from .values import Duration, to_text, type_name

INT_TEXT = re.compile(r"-?[0-9]+")
FLOAT_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


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
            if not INT_TEXT.fullmatch(text.strip()):
                raise ValueError(text)
            return int(text.strip())
        if ptype == "float":
            if not FLOAT_TEXT.fullmatch(text.strip()):
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
    except (ValueError, json.JSONDecodeError):
        raise ParamError(f"param `{name}` is {ptype}: cannot read {text!r} as {ptype}"
                         + _hint(ptype)) from None
    return text


def _hint(ptype: str) -> str:
    return {"bool": " (use true/false, yes/no or 1/0)",
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
        value = json.loads(stripped)
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
    if ptype == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if ptype == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
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
    raise ParamError(f"param `{name}` is {ptype}, but the params file gives "
                     f"{type_name(value)} {value!r}")


def load_params_file(path: Path) -> ParamsFile:
    """A YAML mapping of param names to values."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        # The same document with every scalar left as text (BaseLoader constructs nothing).
        written = yaml.load(text, Loader=yaml.BaseLoader)
    except FileNotFoundError:
        raise ParamError(f"params file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ParamError(f"params file {path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise ParamError(f"params file {path}: not valid YAML: {error}") from None
    if data is None:
        return ParamsFile({}, {})
    if not isinstance(data, dict) or not isinstance(written, dict):
        raise ParamError(f"params file {path}: expected a mapping of names to values, "
                         f"found {type(data).__name__}")
    return ParamsFile({str(k): v for k, v in data.items()}, written)


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
    """`pattern` searched in `text`, where a final `$` means the very end of the value:
    Python's `$` would also accept a value that ends in a newline (`1.0.0\\n`)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, text) is not None


def _close(name: str, names) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, list(names), n=1)
    return found[0] if found else None
