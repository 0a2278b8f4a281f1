"""Parsing: source text -> AST. Syntax errors become our diagnostics here, and nowhere else.

`parse_source` runs the grammar's LALR tables (`lalr.py`) over a file and builds the AST as
it reads (`transform.AstBuilder`), string interpolations included. Every call has its own
state; nothing is shared between parses but the compiled grammar.

Two results are defined by a parse tree walked bottom-up, the way the transformer used to
build the AST: which node is reported when the tree is too deep, and the order of several
diagnostics (`runbook fmt` reports the first). A file that is too deep, or that yields more
than one diagnostic, is parsed again that way; the others, nearly all files, are not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import ParseFailure
from .diagnostics import Diagnostic, Location
from .lalr import (
    MAX_NESTING,
    NestingTooDeep,
    Parse,
    Token,
    TooDeep,
    UnexpectedCharacter,
    UnexpectedToken,
    grammar,
)
from .lexicon import RESERVED
from .nodes import Runbook
from .source import Source
from .transform import MAX_DEPTH, AstBuilder
from .trees import build, tree_callbacks

__all__ = ["MAX_NESTING", "ParseFailure", "parse_file", "parse_source", "parse_text",
           "parse_tree"]

FRIENDLY = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "NUMBER": "a number",
    "LBRACE": "`{`", "RBRACE": "`}`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`",
    "RSQB": "`]`", "COMMA": "`,`", "COLON": "`:`", "EQUAL": "`=`", "DOT": "`.`",
    "$END": "the end of the file",
}
COMPARISON_WORDS = frozenset({"in", "contains", "matches"})
COMPARISON_SIGNS = frozenset({"==", "!=", "<", "<=", ">", ">="})
# Rules whose callbacks parse text of their own: a string's interpolations.
_NESTED = frozenset({"string"})


class _Again(Exception):
    """The file must be parsed again through a parse tree (see the module's docstring)."""


def parse_source(source: Source) -> tuple[Runbook, list[Diagnostic]]:
    """Parse a whole file into a `nodes.Runbook`, or raise ParseFailure with diagnostics.

    Problems the transformer finds (bad numbers, misplaced attributes) are returned with
    the AST as diagnostics: the file's shape is known, so analysis can still run.
    """
    try:
        return _FileParse(source, through_tree=False).run()
    except _Again:
        return _FileParse(source, through_tree=True).run()


def parse_tree(source: Source):
    """The parse tree of a whole file, before the AST is built: `trees.Tree` nodes whose
    `meta` is (first token, last token), or None for an empty reduction.

    For tools that need the places of grammar constructs the AST does not keep, such as
    where each attribute starts (`runbook fmt`). Raises ParseFailure like `parse_source`.
    """
    return _FileParse(source, through_tree=True).parse(source.text, "start", keep_tree=True)


def parse_file(path: Path, shown_as: str | None = None):
    """Read and parse a file: (Source, Runbook or None, diagnostics)."""
    return _parse_whole(Source.from_path(path, shown_as))


def parse_text(text: str, shown_as: str):
    """Parse text that stands for the file `shown_as`: (Source, Runbook or None, diagnostics).

    A byte-order mark and Windows line ends are dropped, as when the file is read from disk.
    """
    text = text.removeprefix("\ufeff")
    return _parse_whole(Source(shown_as, text.replace("\r\n", "\n") if "\r" in text else text))


def _parse_whole(source: Source):
    try:
        tree, diagnostics = parse_source(source)
    except ParseFailure as failure:
        return source, None, failure.diagnostics
    return source, tree, diagnostics


@lru_cache(maxsize=1)
def _tree_callbacks():
    return tree_callbacks()


class _FileParse:
    """The parse of one file: its AST builder, and the parses of its interpolations."""

    def __init__(self, source: Source, through_tree: bool) -> None:
        self.source = source
        self.through_tree = through_tree
        self.builder = AstBuilder(source, self.parse_interpolation)

    def run(self) -> tuple[Runbook, list[Diagnostic]]:
        """Parse the file; its AST and the diagnostics the transformer found."""
        tree = self.parse(self.source.text, "start")
        builder = self.builder
        if not self.through_tree and len(builder.diagnostics) > 1:
            raise _Again()
        deep = builder.too_deep
        if deep is not None:
            raise ParseFailure([Diagnostic(
                "error", "E101", f"nested too deeply: more than {MAX_DEPTH} levels of blocks, "
                "brackets and operators here",
                Location(self.source.path, deep.line, deep.column, deep.end_line,
                         deep.end_column),
                ("split a long expression with `let`s, and deep blocks into tasks",))])
        return tree, list(builder.diagnostics)

    def parse_interpolation(self, text: str):
        """The expression of a `{{ … }}` (its offsets are mapped by the builder)."""
        return self.builder._expr(self.parse(text, "expr"))

    def parse(self, text: str, start: str, keep_tree: bool = False):
        """Parse `text` from `start`; syntax errors raise ParseFailure. With `keep_tree`
        (through a tree only), the tree itself instead of its AST."""
        builder = self.builder
        if self.through_tree:
            parse = Parse(text, start, _tree_callbacks())
        else:
            parse = Parse(text, start, builder.callbacks, limit=MAX_DEPTH, nested=_NESTED,
                          nested_depth=builder.take_inner_depth)
        try:
            result = parse.run()
        except TooDeep:
            raise _Again() from None
        except NestingTooDeep as deep:
            raise ParseFailure([self._diagnostic(
                "E101", f"brackets nest more than {MAX_NESTING} levels deep here",
                deep.token.start_pos, deep.token.end_pos,
                "split the work into tasks or steps")]) from None
        except (UnexpectedCharacter, UnexpectedToken) as error:
            raise ParseFailure([self._syntax_error(error, text, parse.open_brackets,
                                                   inside_string=start == "expr")]) from None
        if result.__class__ is Token:
            return result
        if self.through_tree:
            return result if keep_tree else build(builder, result)
        builder.last_depth = parse.depth
        return result

    def _diagnostic(self, code: str, message: str, start: int, end: int, *hints: str
                    ) -> Diagnostic:
        span = self.builder.span(start, max(end, start + 1))
        loc = Location(self.source.path, span.line, span.column, span.end_line,
                       span.end_column)
        return Diagnostic("error", code, message, loc, tuple(hints))

    def _syntax_error(self, error: UnexpectedCharacter | UnexpectedToken, text: str,
                      open_brackets: list[Token], inside_string: bool = False) -> Diagnostic:
        """The diagnostic for a syntax error, with what was expected and the likely mistake."""
        report = self._diagnostic
        if isinstance(error, UnexpectedCharacter):
            pos = error.pos
            char = text[pos] if pos < len(text) else ""
            if char == '"':
                if text[max(0, pos - 2):pos + 1] == '"""':
                    return report("E100", "unterminated string: `\"\"\"` has no closing "
                                  "`\"\"\"`", pos - 2, pos + 1)
                return report("E100", "unterminated string: `\"` has no closing `\"` on this "
                              "line", pos, pos + 1, "use `\"\"\"…\"\"\"` for text that spans lines")
            # A backquote inside backquotes would read as markup; show it quoted instead.
            shown = f"`{char}`" if char.isprintable() and char != "`" else repr(char)
            return report("E100", f"unexpected character {shown}", pos, pos + 1)
        expected = sorted({FRIENDLY.get(t, _literal(t)) for t in error.expected if t != "$END"}
                          | ({"the end of the file"} if "$END" in error.expected else set()))
        hint = ("expected " + _join(expected)) if 0 < len(expected) <= 12 else ""
        hints = [hint] if hint else []
        if error.token.type == "$END":
            if open_brackets:
                opener = open_brackets[-1]
                where = "the interpolation" if inside_string else "the file"
                return report("E100", f"`{opener.value}` is never closed: {where} ends first",
                              opener.start_pos, opener.end_pos)
            pos = len(text)
            if inside_string:
                # Point at the closing `}}`: the expression stops short of it.
                return report("E100", "incomplete expression in `{{ … }}`", pos, pos + 1, *hints)
            return report("E100", "unexpected end of file", max(0, pos - 1), pos, *hints)
        token = error.token
        shown = token.value
        message = f"unexpected `{shown}`"
        if (shown in COMPARISON_SIGNS or shown in COMPARISON_WORDS or shown == "not") \
                and _after_comparison(error):
            message = f"unexpected `{shown}`: comparisons do not chain"
            hint = "join them with `and`: `a < b and b < c`"
        elif token.type == "EQUAL" and "`==`" in expected:
            hint = "to compare, write `==`; `=` only gives a value (`let`, `set`, arguments)"
        elif token.type == "NAME" and shown in RESERVED:
            message = f"unexpected `{shown}`: it is a reserved word"
        else:
            word = _word_as_name(error, text)
            if word is not None:
                hint = (f"`{word}(` is read as a call of a task named `{word}`; for the "
                        f"keyword, put a space after it: `{word} (…)`")
        return report("E100", message, token.start_pos, token.end_pos,
                      *([hint] if hint else []))


def _word_as_name(error: UnexpectedToken, text: str) -> str | None:
    """The contextual word just read as a name because `(` follows it (see lalr.NAME_FOLLOWS)."""
    contextual = grammar().contextual
    for value in [error.token, *error.values[-3:]]:
        if value.__class__ is Token and value.type == "NAME" \
                and value.value.upper() in contextual \
                and text.startswith("(", value.end_pos):
            return value.value
    return None


def _after_comparison(error: UnexpectedToken) -> bool:
    """True when the parser has just read `a < b` (or `a in b` …) and meets another one."""
    if len(error.values) < 2:
        return False
    operator = error.values[-2]
    if operator.__class__ is Token:
        return operator.value in COMPARISON_WORDS
    return grammar().accessing.get(error.states[-2]) == "comp_op"


def _literal(terminal: str) -> str:
    text = grammar().literal(terminal)
    return f"`{text}`" if text is not None else terminal.lower()


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
