r"""Quoting an interpolated value for the shell context it lands in (LANGUAGE.md §6.1).

`syntax.shellwords` decides the context of each `{{ … }}` of a `run` command from the
command's static text; here a value is written so that the shell reads back exactly its
text, as one word, in that context — under dash and under bash alike:

- a plain word: as `shlex.quote` does (`'…'` unless the value is plain letters and
  punctuation), always quoted where a bare word could be a keyword, an assignment or part
  of a `$NAME` before it;
- inside `'…'`: close, a quote in double quotes, reopen (`'"'"'`);
- inside `"…"`: a backslash before `\ $ " \``; right after `$NAME`, an empty `""` first so
  the value cannot extend the name; where bash reads the text before undoing the
  backslashes of enclosing backquotes, close the quotes and write `'…'` instead;
- the word of an unquoted `${X:-…}`: `'…'`; within `"${X:-…}"`: a nested `"…"`;
- wherever bash scans a `"…"` ahead (within `${…}` or backquotes), an empty `""` before
  each `(`: bash may read `<(` and `>(` there as a process substitution;
- inside backquotes: the inner context's form, then each backslash, backquote and `$`
  (and `"` where the backquotes are within double quotes) escaped once more per level.
"""

from __future__ import annotations

import itertools

from ..errors import EvalError
from ..lazy import compile_later
from ..syntax.shellwords import DOUBLE, PARAM, PARAM_DOUBLE, SINGLE, WORD, Context

# What shlex.quote leaves bare: ASCII letters, digits and `_@%+=:,./-`.
_BARE = compile_later(r"[A-Za-z0-9_@%+=:,./-]+\Z")
_DOUBLE_SPECIAL = compile_later(r'([\\"$`])')
# Deepest backquote nesting whose forms `quoted_forms` lists.
MAX_LAYERS = 3


def quote_for(context: Context, text: str) -> str:
    """`text` written for `context`, so that the shell reads back exactly `text`.

    Raises EvalError for a NUL byte (no command line can carry one) and for an unsafe
    context (the static check reports those before a run; raw() text can still move a
    later interpolation into one).
    """
    check_no_nul(text)
    if context.kind == WORD:
        quoted = _word(text, context.bare)
    elif context.kind == SINGLE:
        quoted = _inside_single(text)
    elif context.kind == DOUBLE and context.no_backslash:
        quoted = f'"{_single(text)}"'  # close the double quotes, a quoted word, reopen
    elif context.kind == DOUBLE:
        scanned = context.in_param or bool(context.layers)
        quoted = ('""' if context.after_name else "") + \
            (_inside_double_scanned(text) if scanned else _inside_double(text))
    elif context.kind == PARAM:
        quoted = _single(text)
    elif context.kind == PARAM_DOUBLE:
        quoted = f'"{_inside_double_scanned(text)}"'
    else:
        raise EvalError(f"an interpolated value cannot be quoted {context.reason}; pass it "
                        "through `env { NAME = … }` and write \"$NAME\"")
    return _in_backquotes(quoted, context.layers)


def check_no_nul(text: str) -> None:
    """Refuse a value holding a NUL byte: no command line can carry one."""
    if "\0" in text:
        raise EvalError("an interpolated value holds a NUL byte, which a shell command "
                        "cannot carry")


def quoted_forms(value: str) -> set[str]:
    """Every form `value` can take in a command once quoted for any context, the value as
    it is included: what secret masking must hide in a printed command."""
    forms = {value, _word(value, True), _single(value), _inside_single(value),
             _inside_double(value), f'"{_single(value)}"', _inside_double_scanned(value),
             f'"{_inside_double_scanned(value)}"'}
    layered = set(forms)
    for depth in range(1, MAX_LAYERS + 1):
        for layers in itertools.product((False, True), repeat=depth):
            layered |= {_in_backquotes(form, layers) for form in forms}
    return layered


def _word(text: str, bare: bool) -> str:
    if bare and _BARE.match(text):
        return text
    return _single(text)


def _single(text: str) -> str:
    return f"'{_inside_single(text)}'"


def _inside_single(text: str) -> str:
    # Inside single quotes everything is literal but the quote itself: end the quoted text,
    # add a quote in double quotes, start again (as shlex.quote does; no backslash, which
    # bash would read twice inside backquotes).
    return text.replace("'", "'\"'\"'")


def _inside_double(text: str) -> str:
    # Inside double quotes only these four characters keep a meaning.
    return _DOUBLE_SPECIAL.sub(r"\\\1", text)


def _inside_double_scanned(text: str) -> str:
    # Bash scans a `"…"` within `${…}` or within backquotes before parsing it, and there it
    # may take `<(` or `>(` for a process substitution and look for its `)`: an empty `""`
    # before each `(` (and after a final `<` or `>`) keeps them apart, the word unchanged.
    quoted = _inside_double(text).replace("(", '""(')
    return quoted + '""' if quoted.endswith(("<", ">")) else quoted


def _in_backquotes(text: str, layers: tuple[bool, ...]) -> str:
    # Inside `…` the shell first removes one backslash before `\`, `` ` `` and `$`, and
    # before `"` where the backquotes are within double quotes. Escaping `$` and `"` as well
    # keeps bash's brace expansion, which reads the text before that, from seeing a `$(` or
    # a quote of the value.
    for within_double in layers:
        text = text.replace("\\", "\\\\").replace("`", "\\`").replace("$", "\\$")
        if within_double:
            text = text.replace('"', '\\"')
    return text
