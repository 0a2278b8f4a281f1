"""The cached Lark parser. Lark's errors become our diagnostics here, and nowhere else."""

from __future__ import annotations

import gc
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .. import resources
from .diagnostics import Diagnostic, Location
from .source import Source
from .transform import MAX_DEPTH, AstBuilder

# Deeper nesting than this is almost certainly generated or broken input; refusing it keeps
# every later stage (analysis, planning, JSON output) clear of Python's recursion limit.
MAX_NESTING = 100

FRIENDLY = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "NUMBER": "a number",
    "LBRACE": "`{`", "RBRACE": "`}`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`",
    "RSQB": "`]`", "COMMA": "`,`", "COLON": "`:`", "EQUAL": "`=`", "DOT": "`.`",
    "$END": "the end of the file",
}
OPENERS = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}
CLOSERS = {v: k for k, v in OPENERS.items()}
# Contextual words (LANGUAGE.md §2) that the grammar uses as keywords. LALR merges the states
# that follow a string or an expression, so after `note "x"` the lexer would read `as`, `every`
# or `header` as keywords; and a step body accepts every attribute so that a misplaced one gets
# a clear message. A keyword is never followed straight by `(`, `.` or `=`: a contextual word
# written that way is a name (`message(text: …)`, `within.x`, `env { every = 1 }`).
CONTEXTUAL_WORDS = frozenset("""AS FROM FILE EVERY WITHIN TOLERATE BACKOFF INTO ABORT CONTINUE
APPROVERS REQUIRE MESSAGE SELF_APPROVAL CHOICES PATTERN OWNER TAGS SIGNERS HEADER BODY""".split())
NAME_FOLLOWS = re.compile(r"[(.]|[ \t\r\n]*=(?!=)")
COMPARISON_WORDS = frozenset({"in", "contains", "matches"})
COMPARISON_SIGNS = frozenset({"==", "!=", "<", "<=", ">", ">="})


class ParseFailure(Exception):
    """A parse that cannot produce an AST; carries the diagnostics that say why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "parse failed")
        self.diagnostics = diagnostics


class NestingTooDeep(Exception):
    """Raised from the lexer when brackets nest deeper than MAX_NESTING."""

    def __init__(self, token: Token) -> None:
        super().__init__("nesting too deep")
        self.token = token


class _Brackets:
    """Open brackets of the text being lexed (one frame per nested parse)."""

    def __init__(self) -> None:
        self.frames: list[list[Token]] = []

    def opened(self, token: Token) -> Token:
        frame = self.frames[-1]
        frame.append(token)
        if len(frame) > MAX_NESTING:
            raise NestingTooDeep(token)
        return token

    def closed(self, token: Token) -> Token:
        frame = self.frames[-1]
        if frame and OPENERS[frame[-1].type] == token.type:
            frame.pop()
        return token


class _CallNames:
    """Postlex: a contextual word followed straight by `(`, `.` or `=` is a name, not a keyword.

    Without it a task called `message` could not be called in a step body, nor one called
    `as` on the line after a `note` (see CONTEXTUAL_WORDS).
    """

    always_accept = ()

    def __init__(self) -> None:
        self.texts: list[str] = []

    def process(self, stream):
        for token in stream:
            if token.type in CONTEXTUAL_WORDS and NAME_FOLLOWS.match(self.texts[-1],
                                                                     token.end_pos):
                token = Token.new_borrow_pos("NAME", token.value, token)
            yield token


_brackets = _Brackets()
_call_names = _CallNames()
_builder = AstBuilder()


@lru_cache(maxsize=1)
def _lark() -> Lark:
    callbacks = {name: _brackets.opened for name in OPENERS}
    callbacks.update({name: _brackets.closed for name in CLOSERS})
    return Lark(
        resources.grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=["start", "expr"],
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks=callbacks,
        postlex=_call_names,
        cache=True,
    )


def parse_source(source: Source):
    """Parse a whole file into a `nodes.Runbook`, or raise ParseFailure with diagnostics.

    Problems the transformer finds (bad numbers, misplaced attributes) are returned with
    the AST as diagnostics: the file's shape is known, so analysis can still run.
    """
    lark = _lark()
    _builder.begin(source, _parse_interpolation)
    # The parse allocates ~30 objects a line and frees none of them: the cyclic garbage
    # collector would only rescan the growing tree (it doubled the time of a large file).
    collecting = gc.isenabled()
    gc.disable()
    try:
        tree = _parse(lark, source.text, "start")
    finally:
        if collecting:
            # The AST lives as long as the command: keep later collections from rescanning it.
            gc.freeze()
            gc.enable()
    deep = _builder.too_deep
    if deep is not None:
        raise ParseFailure([Diagnostic(
            "error", "E101", f"nested too deeply: more than {MAX_DEPTH} levels of blocks, "
            "brackets and operators here",
            Location(source.path, deep.line, deep.column, deep.end_line, deep.end_column),
            ("split a long expression with `let`s, and deep blocks into tasks",))])
    return tree, list(_builder.diagnostics)


def parse_file(path: Path, shown_as: str | None = None):
    """Read and parse a file: (Source, Runbook or None, diagnostics)."""
    source = Source.from_path(path, shown_as)
    try:
        tree, diagnostics = parse_source(source)
    except ParseFailure as failure:
        return source, None, failure.diagnostics
    return source, tree, diagnostics


def _parse_interpolation(text: str):
    node = _parse(_lark(), text, "expr")
    return _builder._expr(node)


def _parse(lark: Lark, text: str, start: str):
    _brackets.frames.append([])
    _call_names.texts.append(text)
    try:
        tree = lark.parse(text, start=start)
    except NestingTooDeep as deep:
        raise ParseFailure([_diagnostic(
            "E101", f"brackets nest more than {MAX_NESTING} levels deep here",
            deep.token.start_pos, deep.token.end_pos,
            "split the work into tasks or steps")]) from None
    except UnexpectedInput as error:
        raise ParseFailure([_from_lark(error, text, _brackets.frames[-1],
                                       inside_string=start == "expr")]) from None
    finally:
        _brackets.frames.pop()
        _call_names.texts.pop()
    if isinstance(tree, Token):
        return tree
    return _builder.transform(tree)


def _diagnostic(code: str, message: str, start: int, end: int, *hints: str) -> Diagnostic:
    span = _builder.span(start, max(end, start + 1))
    loc = Location(_builder.source.path, span.line, span.column, span.end_line, span.end_column)
    return Diagnostic("error", code, message, loc, tuple(hints))


def _from_lark(error: UnexpectedInput, text: str, open_brackets: list[Token],
               inside_string: bool = False) -> Diagnostic:
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream
        char = text[pos] if pos < len(text) else ""
        if char == '"':
            if text.startswith('"""', max(0, pos - 2)) and text[max(0, pos - 2):pos + 1] == '"""':
                return _diagnostic("E100", "unterminated string: `\"\"\"` has no closing "
                                   "`\"\"\"`", pos - 2, pos + 1)
            return _diagnostic("E100", "unterminated string: `\"` has no closing `\"` on this "
                               "line", pos, pos + 1,
                               "use `\"\"\"…\"\"\"` for text that spans lines")
        # A backquote inside backquotes would read as markup; show it quoted instead.
        shown = f"`{char}`" if char.isprintable() and char != "`" else repr(char)
        return _diagnostic("E100", f"unexpected character {shown}", pos, pos + 1)
    expected = sorted({FRIENDLY.get(t, _literal(t)) for t in getattr(error, "expected", ())
                       if t != "$END"} | ({"the end of the file"} if "$END" in getattr(
                           error, "expected", ()) else set()))
    hint = ("expected " + _join(expected)) if 0 < len(expected) <= 12 else ""
    if isinstance(error, UnexpectedEOF) or (
            isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        if open_brackets:
            opener = open_brackets[-1]
            where = "the interpolation" if inside_string else "the file"
            return _diagnostic("E100", f"`{opener}` is never closed: {where} ends first",
                               opener.start_pos, opener.end_pos)
        pos = len(text)
        if inside_string:
            # Point at the closing `}}`: the expression stops short of it.
            return _diagnostic("E100", "incomplete expression in `{{ … }}`", pos, pos + 1,
                               *([hint] if hint else []))
        return _diagnostic("E100", "unexpected end of file", max(0, pos - 1), pos,
                           *([hint] if hint else []))
    assert isinstance(error, UnexpectedToken)
    token = error.token
    shown = str(token)
    message = f"unexpected `{shown}`"
    if (shown in COMPARISON_SIGNS or shown in COMPARISON_WORDS or shown == "not") \
            and _after_comparison(error):
        message = f"unexpected `{shown}`: comparisons do not chain"
        hint = "join them with `and`: `a < b and b < c`"
    elif token.type == "EQUAL" and "`==`" in expected:
        hint = "to compare, write `==`; `=` only gives a value (`let`, `set`, arguments)"
    elif token.type == "NAME" and shown in _reserved():
        message = f"unexpected `{shown}`: it is a reserved word"
    else:
        word = _word_as_name(error, text)
        if word is not None:
            hint = (f"`{word}(` is read as a call of a task named `{word}`; for the keyword, "
                    f"put a space after it: `{word} (…)`")
    return _diagnostic("E100", message, token.start_pos, token.end_pos,
                       *([hint] if hint else []))


def _word_as_name(error: UnexpectedToken, text: str) -> str | None:
    """The contextual word just read as a name because `(` follows it (see _CallNames)."""
    stack = getattr(getattr(error, "interactive_parser", None), "parser_state", None)
    candidates = [error.token, *(stack.value_stack[-3:] if stack is not None else [])]
    for value in candidates:
        if isinstance(value, Token) and value.type == "NAME" \
                and value.upper() in CONTEXTUAL_WORDS \
                and text.startswith("(", value.end_pos):
            return str(value)
    return None


def _after_comparison(error: UnexpectedToken) -> bool:
    """True when the parser has just read `a < b` (or `a in b` …) and meets another one."""
    stack = getattr(getattr(error, "interactive_parser", None), "parser_state", None)
    if stack is None or len(stack.value_stack) < 2:
        return False
    operator = stack.value_stack[-2]
    if isinstance(operator, Tree):
        return operator.data == "comp_op"
    return isinstance(operator, Token) and str(operator) in COMPARISON_WORDS


def _literal(terminal: str) -> str:
    pattern = _lark().get_terminal(terminal).pattern if terminal in _terminal_names() else None
    if pattern is not None and pattern.type == "str":
        return f"`{pattern.value}`"
    return terminal.lower()


@lru_cache(maxsize=1)
def _terminal_names() -> frozenset[str]:
    return frozenset(t.name for t in _lark().terminals)


@lru_cache(maxsize=1)
def _reserved() -> frozenset[str]:
    from ..analysis.typecheck import RESERVED

    return frozenset(RESERVED)


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
