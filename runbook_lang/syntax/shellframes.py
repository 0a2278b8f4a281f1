"""The data of the shell lexer (`shellwords`): contexts, the reasons a place is unsafe, and
the frames of its stack (plain text, quotes, `${…}`, arithmetic) with the word and the
simple command being read.
"""

from __future__ import annotations

from ..dataclass import dataclass
from ..lazy import compile_later
from .shellcommands import CommandWords

WORD, SINGLE, DOUBLE, PARAM, PARAM_DOUBLE, UNSAFE = (
    "word", "single", "double", "param", "param_double", "unsafe")


@dataclass(frozen=True)
class Context:
    """Where a hole lands: the kind of quoting it needs, or why none is safe.

    kind: WORD (a plain word), SINGLE (`'…'`), DOUBLE (`"…"`), PARAM (the word of an
    unquoted `${X:-…}`), PARAM_DOUBLE (the same within `"…"`), or UNSAFE with a `reason`.
    layers: the backquotes around it, innermost first: True for one within `"…"` (where
    `\"` is undone as well). bare: whether a plain word may stay unquoted.
    after_name: right after `$NAME`, whose name the value must not extend.
    no_backslash: inside `$(…)` or `${…}` within backquotes, which bash reads once before
    undoing the backquotes' backslashes: the quoting must not rely on backslashes.
    in_param: a DOUBLE inside the word of `"${X:-"…"}"`.
    """

    kind: str
    layers: tuple[bool, ...] = ()
    bare: bool = True
    after_name: bool = False
    no_backslash: bool = False
    in_param: bool = False
    reason: str = ""

    @property
    def safe(self) -> bool:
        """Whether some quoting keeps a value one literal word here."""
        return self.kind != UNSAFE


def unsafe(reason: str) -> Context:
    """A context where no quoting is safe, and why."""
    return Context(UNSAFE, reason=reason)


def settle(context: Context) -> Context:
    """`context`, or unsafe where it needs backslashes and cannot have them."""
    # Within `"${X:-…}"` only backslashes can quote (bash misreads `'` there).
    if context.no_backslash and (context.kind == PARAM_DOUBLE or context.in_param):
        return unsafe(BACKQUOTED_PARAM)
    return context


# ---------------------------------------------------------------------- reasons

COMMENT = ("in a comment: a line break in the value would end the comment and run the "
           "rest")
HEREDOC = "in a here-document: a line in the value could end it and run what follows"
ARITHMETIC = "in arithmetic `$((…))`, which runs code found in the value (`a[$(…)]`)"
BASH_ARITHMETIC = "in bash arithmetic, which runs code found in the value (`a[$(…)]`)"
SUBSCRIPT = "in an array subscript, which bash evaluates as arithmetic"
DBRACKET = ("in a bash `[[ … ]]` test with an arithmetic or variable-name operator, which "
            "runs code found in the value")
AFTER_BACKSLASH = "right after a backslash, which would escape the value's first character"
AFTER_DOLLAR = "right after a `$`, where the value would become part of an expansion"
PARAM_NAME = "in the name of a parameter expansion `${…}`"
PARAM_AFTER_NAME = "right after `$NAME` inside `\"${…}\"`, which bash misreads there"
ANSI_C = "in `$'…'` quoting, which bash decodes and dash does not"
LOCALE = "in `$\"…\"`, which bash translates and dash does not"
ARRAY = "in a bash array assignment `NAME=(…)`"
BACKQUOTE_QUOTE = ("in backquotes within `\"…\"` that hold an unescaped `\"` (POSIX leaves "
                   "it undefined; bash's brace expansion then reads values as unquoted): "
                   "write `\\\"`, or `$(…)` instead of backquotes")
BACKQUOTED_RAW = ("in `$(…)` or `${…}` inside backquotes within `\"…\"`, which bash parses "
                  "once more with the backquotes' backslashes still in: use `$(…)` instead of "
                  "the backquotes")
BACKQUOTED_PARAM = ("in `\"${…}\"` inside backquotes, which bash reads before undoing their "
                    "backslashes")

SUBSCRIPTED = compile_later(r"[A-Za-z_][A-Za-z0-9_]*\[")
PARAM_HEAD = compile_later(r"(?:[#!](?=[A-Za-z_0-9@*#?$!-]))?"
                        r"(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])")
SPECIAL_PARAMS = "@*#?-$!0123456789"
# Marks an interpolation in the text the lexer reads (no command can hold a NUL byte).
HOLE = "\0"


# ---------------------------------------------------------------------- frames

# The frames are the lexer's own mutable state, written as plain classes with slots: a
# dataclass generates its methods when the module is imported, and every `runbook run`
# and `check` imports this module.


class Word:
    """The word being read in a plain context, with its role in the simple command."""

    __slots__ = ("role", "text", "dynamic", "quoted", "assigns_to", "equals", "head")

    def __init__(self, role: str) -> None:
        self.role = role  # command, arg, redirect, delim, delim-, subject, case_in, pattern, fname
        self.text: list[str] = []
        self.dynamic = False  # holds an expansion or a hole: no static text
        self.quoted = False
        self.assigns_to: str | None = None  # NAME, once the `=` of `NAME=…` is read
        self.equals = False  # an unquoted `=` was read
        self.head = ""  # the first characters of `text`

    def add(self, chars: str, quoted: bool = False) -> None:
        self.text.append(chars)
        self.quoted = self.quoted or quoted
        if len(self.head) < 256:
            self.head += chars[:256]

    def start(self) -> str:
        """The beginning of the word's text: enough to tell `~user` or `NAME[`."""
        return self.head

    def static(self) -> str | None:
        return None if self.dynamic else "".join(self.text)


class Command:
    """The finished words of the simple command being read."""

    __slots__ = ("words", "dbracket", "dbracket_code", "dbracket_holes")

    def __init__(self) -> None:
        self.words = CommandWords()
        self.dbracket = False  # inside `[[ … ]]`
        self.dbracket_code = False  # … with an operator that evaluates its operands
        self.dbracket_holes: list[int] = []


class PlainFrame:
    """Plain shell text: the whole command, or the inside of `$(…)`, `<(…)`, `NAME=(…)`."""

    __slots__ = ("closer", "taint", "kind", "depth", "word", "cmd", "redirect", "fname", "mode",
                 "heredocs", "line", "line_hole", "case")

    def __init__(self, closer: str | None = None, taint: str | None = None) -> None:
        self.closer = closer
        self.taint = taint
        self.kind = "plain"
        self.depth = 0  # open `(` of subshells inside a `$(…)`
        self.word: Word | None = None
        self.cmd = Command()
        self.redirect: str | None = None  # the role of the next word after a redirection
        self.fname = False  # after `function`: the next word is a name
        self.mode = "normal"  # normal, comment, body (of a here-document)
        self.heredocs: list[tuple[str, bool, bool]] = []  # delimiter, strip, quoted
        self.line: list[str] = []
        self.line_hole = False
        self.case: list[str] = []  # subject, in, pattern_start, pattern, body


class QuoteFrame:
    """Inside `'…'` (kind single) or `"…"` (kind double); `taint` for `$'…'` and `$"…"`."""

    __slots__ = ("kind", "taint")

    def __init__(self, kind: str, taint: str | None = None) -> None:
        self.kind = kind
        self.taint = taint


class ParamFrame:
    """Inside `${…}`: its head (name), then the word after an operator."""

    __slots__ = ("in_double", "kind", "state", "taint")

    def __init__(self, in_double: bool) -> None:
        self.in_double = in_double
        self.kind = "param"
        self.state = "head"  # head, after, word
        self.taint: str | None = None


class ArithFrame:
    """Inside `$((…))`, `((…))`, `$[…]` or a subscript `[…]`: every hole is unsafe."""

    __slots__ = ("closer", "reason", "kind", "depth")

    def __init__(self, closer: str, reason: str) -> None:
        self.closer = closer
        self.reason = reason
        self.kind = "arith"
        self.depth = 0


Frame = PlainFrame | QuoteFrame | ParamFrame | ArithFrame
