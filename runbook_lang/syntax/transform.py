"""The grammar's reductions -> AST nodes.

`AstBuilder` has one callback per grammar rule, called with what the rule covers (its first
and last token) and its children. The parser calls them as it reduces; for a file it must
report exactly as a parse tree would (the depth limit, the order of several diagnostics) it
keeps the reductions as a tree first (`trees.py`).

Problems found here (bad numbers, misplaced or repeated attributes, strings) are collected
as diagnostics and a placeholder is returned, so one parse reports all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from ..errors import ParseFailure
from ..hints import TYPE_CHECKING
from ..lazy import compile_later
from ..limits import INT_MAX, MAX_NUMBER_CHARS, MAX_STRING_CHARS
from . import nodes as n
from .diagnostics import Diagnostic, Location
from .lalr import Meta, Token
from .lexicon import HTTP_METHODS, duration_ms
from .source import Source, Span
from .strings import split_string

if TYPE_CHECKING:
    from typing import Any

# The deepest parse tree accepted. Python recursion stops at 1,000 frames: this keeps `--ast`
# (`nodes.to_data`, under ~450 frames at this depth), the analyser and the interpreter clear
# of it, while 98 nested `if`s, or a sum of 200 terms, still fit.
MAX_DEPTH = 220
SIMPLE_NAME = compile_later(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_FLOAT = compile_later(r"[0-9]+\.[0-9]+")
# What reads as an int, a float or a duration (the units in any order: too long is too long).
_NUMERIC_TEXT = compile_later(r"[0-9]+(\.[0-9]+)?|([0-9]+(ms|s|m|h|d))+")

# Which attributes each kind of block accepts (the rest is reported where it stands).
STEP_ATTRS = {"when", "timeout", "retry", "env", "dir", "description", "rollback", "on_failure"}
# What only a step that runs `on` hosts takes (LANGUAGE.md §11).
ON_STEP_ATTRS = STEP_ATTRS | {"batch", "max_failures"}
CHECK_STEP_ATTRS = {"when", "timeout", "description", "on_failure", "within", "retry", "env",
                    "dir"}
GATE_ATTRS = {"when", "approvers", "require", "timeout", "message", "self_approval",
              "description"}
CHECK_STMT_ATTRS = {"within"}
PROBES = ("run", "http")


class Attr:
    """An attribute as parsed: its keyword, value and place (sorted out by the enclosing item).

    The place is a span when the value's node has one; else what the reduction covered,
    made a span by `AstBuilder.attr_span` only for a message (nearly every attribute is
    fine where it is).
    """

    __slots__ = ("name", "value", "span", "meta")

    def __init__(self, name: str, value, span: Span | None, meta: Meta = None) -> None:
        self.name, self.value, self.span, self.meta = name, value, span, meta


class Body:
    """The mixed statements and attributes of a `{ … }` body, before sorting."""

    __slots__ = ("statements", "attrs")

    def __init__(self, statements: list, attrs: list[Attr]) -> None:
        self.statements, self.attrs = statements, attrs


def _classify_number(text: str) -> tuple[str | None, int | float | None]:
    """("int", 3), ("float", 1.5), ("duration", ms), ("too large", None) for a number out
    of range (limits.py), or (None, None) for neither."""
    if len(text) > MAX_NUMBER_CHARS:
        # Never converted: Python refuses ints of thousands of digits with its own message.
        return ("too large", None) if _NUMERIC_TEXT.fullmatch(text) else (None, None)
    if text.isdigit():
        value = int(text)
        return ("int", value) if value <= INT_MAX else ("too large", None)
    if _FLOAT.fullmatch(text):
        number = float(text)
        return ("float", number) if math.isfinite(number) else ("too large", None)
    ms = duration_ms(text)
    if ms is not None:
        return ("duration", ms) if ms <= INT_MAX else ("too large", None)
    return None, None


def _cut(text: str) -> str:
    """A long literal as shown in a message: its start and its length."""
    return f"`{text}`" if len(text) <= 40 else f"`{text[:20]}…` ({len(text):,} characters)"


def _meta(fn):
    """Marks a method as the callback of the grammar rule of the same name."""
    fn.is_rule = True
    return fn


def _binary(op: str):
    """The callback of a binary operator's rule."""
    @_meta
    def build(self: AstBuilder, meta: Meta, children: list) -> n.Binary:
        left, right = self._expr(children[0]), self._expr(children[-1])
        return n.Binary.make(span=self.meta_span(meta), op=op, left=left, right=right,
                             kind="binary")
    return build


def _attr(name: str, arity: int = 1):
    """The callback of an attribute with `arity` expressions (`within D every D` has two)."""
    @_meta
    def build(self: AstBuilder, meta: Meta, children: list) -> Attr:
        values = [self._expr(c) if c is not None else None for c in children]
        value = values[0] if arity == 1 else tuple(values)
        return Attr(name, value, None, meta)
    return build


class AstBuilder:
    """Builds `nodes` objects for one parse of `source`, from the grammar's reductions.

    `parse_expr` parses the text of an interpolation (the parser supplies it).
    """

    def __init__(self, source: Source, parse_expr: Callable[[str], Any]) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.parse_expr = parse_expr
        # Maps an offset of the text being parsed to an offset in `source`: identity for a
        # file, a table for an interpolation parsed out of a string.
        self._maps: list[Any] = [None]
        # How deep the interpolations of the string just built go (for the depth limit).
        self.inner_depth = 0
        # How deep the last interpolation parsed goes.
        self.last_depth = 0
        # The first node deeper than MAX_DEPTH, when built from a tree (see trees.build).
        self.too_deep: Span | None = None
        self._callbacks: dict[str, Callable[[Meta, list], Any]] | None = None
        # What each number-like text is: files repeat the same few (`30s`, `1`).
        self._numbers: dict[str, tuple[str | None, int | float | None]] = {}

    # ------------------------------------------------------------ plumbing

    @property
    def callbacks(self) -> dict[str, Callable[[Meta, list], Any]]:
        """The reduction callbacks, by rule name, bound to this builder."""
        if self._callbacks is None:
            self._callbacks = {name: fn.__get__(self) for name, fn in _RULES.items()}
        return self._callbacks

    def take_inner_depth(self) -> int:
        """The depth of the interpolations of the string just built (and forget it)."""
        depth, self.inner_depth = self.inner_depth, 0
        return depth

    def _abs(self, offset: int) -> int:
        table = self._maps[-1]
        if table is None:
            return offset
        return table[min(offset, len(table) - 1)]

    def span(self, start: int, end: int) -> Span:
        """A Span for offsets of the text currently parsed."""
        if self._maps[-1] is None:
            return self.source.span(start, end)
        first = self._abs(start)
        last = self._abs(end - 1) + 1 if end > start else first
        return self.source.span(first, last)

    def meta_span(self, meta: Meta) -> Span:
        """The Span of what a reduction covers."""
        if meta is None:
            return self.span(0, 0)
        first, last = meta
        if self._maps[-1] is None:
            # The lexer already counted lines and columns: no need to look them up again.
            return Span.make(line=first.line, column=first.column, end_line=last.end_line,
                             end_column=last.end_column, start=first.start_pos,
                             end=last.end_pos)
        return self.span(first.start_pos, last.end_pos)

    def tok_span(self, tok: Token) -> Span:
        """The Span of a token."""
        if self._maps[-1] is None:
            return Span.make(line=tok.line, column=tok.column, end_line=tok.end_line,
                             end_column=tok.end_column, start=tok.start_pos, end=tok.end_pos)
        return self.span(tok.start_pos, tok.end_pos)

    def attr_span(self, attr: Attr) -> Span:
        """Where an attribute stands. Attributes are read in files only, never inside an
        interpolation, so what the reduction covered is a place in the file."""
        return attr.span if attr.span is not None else self.meta_span(attr.meta)

    def error(self, code: str, message: str, span: Span, *hints: str) -> None:
        """Record a diagnostic at a span of the current source."""
        loc = Location(self.source.path, span.line, span.column, span.end_line, span.end_column)
        self.diagnostics.append(Diagnostic("error", code, message, loc, tuple(hints)))

    def ident(self, tok: Token) -> n.Ident:
        """An Ident node for a NAME token."""
        return n.Ident.make(span=self.tok_span(tok), name=tok.value, kind="ident")

    # ------------------------------------------------------------ strings and atoms

    @_meta
    def string(self, meta, children):
        tok = children[0]
        if len(tok.value) - 2 * _quotes(tok.value) > MAX_STRING_CHARS:
            return self._string_too_long(tok)
        if self._maps[-1] is None and tok.line == tok.end_line and "\\" not in tok.value:
            plain = self._plain_string(tok)
            if plain is not None:
                return plain
        start = self._abs(tok.start_pos)
        pieces, errors = split_string(tok.value, start) if self._maps[-1] is None else \
            self._split_nested(tok)
        at = self._spans_in(tok)
        for err in errors:
            self.error("E103", err.message, at(err.start, err.end))
        parts: list = []
        deepest = 0
        for piece in pieces:
            if not piece.is_expr:
                span = at(piece.offsets[0], piece.offsets[-1])
                parts.append(n.Text.make(span=span, value=piece.text, kind="text"))
                continue
            self.last_depth = 1
            expr = self._parse_interpolation(piece.text, piece.offsets, at)
            # String and Interpolation nodes sit between the string's owner and the expression.
            deepest = max(deepest, self.last_depth + 1)
            span = at(piece.offsets[0] - 2, piece.offsets[-1] + 2)
            parts.append(n.Interpolation.make(span=span, expr=expr, kind="interpolation"))
        self.inner_depth = deepest
        return n.String.make(span=self.tok_span(tok), parts=parts, kind="string")

    def _plain_string(self, tok: Token):
        """The String of a one-line literal in the file, without escapes, whose
        interpolations are names (`"deploy {{ app }}"`: most strings); None for any other,
        which the general reading below handles (and reports on).

        It builds what `split_string` and the reading of each interpolation would, with
        the spans of a one-line token made straight from its line and columns.
        """
        value = tok.value
        if value.startswith('"""'):
            return None
        text = value[1:-1]
        line, first = tok.line, tok.start_pos + 1  # the source offset of text[0]
        column = tok.column + 1 - first  # the column of source offset 0 on this line
        make_span = Span.make
        parts: list = []
        depth = 0
        i, n_text = 0, len(text)
        while i < n_text:
            opening = text.find("{{", i)
            stop = opening if opening >= 0 else n_text
            if stop > i:
                start, end = first + i, first + stop
                parts.append(n.Text.make(
                    span=make_span(line=line, column=column + start, end_line=line,
                                   end_column=column + end, start=start, end=end),
                    value=text[i:stop], kind="text"))
            if opening < 0:
                break
            closing = text.find("}}", opening + 2)
            if closing < 0:
                return None
            simple = SIMPLE_NAME.fullmatch(text, opening + 2, closing)
            if simple is None:
                return None
            name = simple.group(1)
            if name in ("true", "false"):
                return None
            start, end = first + simple.start(1), first + simple.end(1)
            expr = n.Name.make(span=make_span(line=line, column=column + start, end_line=line,
                                              end_column=column + end, start=start, end=end),
                               name=name, kind="name")
            start, end = first + opening, first + closing + 2
            parts.append(n.Interpolation.make(
                span=make_span(line=line, column=column + start, end_line=line,
                               end_column=column + end, start=start, end=end),
                expr=expr, kind="interpolation"))
            depth = 2  # a name, and the Interpolation above it
            i = closing + 2
        self.inner_depth = depth
        return n.String.make(span=self.tok_span(tok), parts=parts, kind="string")

    def _string_too_long(self, tok: Token):
        # Reported at the opening quotes: the rest may be megabytes. An empty string stands
        # in for it, so that nothing else is said about its text.
        quotes = _quotes(tok.value)
        self.error("E105", f"string literal too long: {len(tok.value) - 2 * quotes:,} "
                   "characters, more "
                   f"than the {MAX_STRING_CHARS:,} a literal may hold",
                   self.span(tok.start_pos, tok.start_pos + quotes),
                   "read large text at run time instead, e.g. `run \"cat FILE\" into text`")
        return n.String.make(span=self.tok_span(tok), parts=[], kind="string")

    def _spans_in(self, tok: Token) -> Callable[[int, int], Span]:
        """Spans for source offsets inside a token: on a token of one line of the file, its
        line and columns are known without looking them up."""
        if self._maps[-1] is not None or tok.line != tok.end_line:
            return self.source.span
        line, base = tok.line, tok.column - tok.start_pos

        def at(start: int, end: int) -> Span:
            return Span.make(line=line, column=base + start, end_line=line,
                             end_column=base + end, start=start, end=end)

        return at

    def _split_nested(self, tok: Token):
        # A string literal inside an interpolation: decode it with offsets mapped through
        # the enclosing table so spans still land in the file.
        pieces, errors = split_string(tok.value, 0)
        table = self._maps[-1]
        assert table is not None
        shift = tok.start_pos
        for piece in pieces:
            piece.offsets = [table[min(shift + o, len(table) - 1)] for o in piece.offsets]
        for err in errors:
            err.start = table[min(shift + err.start, len(table) - 1)]
            err.end = table[min(shift + err.end, len(table) - 1)]
        return pieces, errors

    def _parse_interpolation(self, text: str, offsets: Sequence[int],
                             at: Callable[[int, int], Span]):
        simple = SIMPLE_NAME.fullmatch(text)
        if simple and simple.group(1) not in ("true", "false"):
            # Most interpolations are a bare name: skip a parser round trip for them.
            span = at(offsets[simple.start(1)], offsets[simple.end(1) - 1] + 1)
            return n.Name.make(span=span, name=simple.group(1), kind="name")
        self._maps.append(offsets)
        found = len(self.diagnostics)
        try:
            return self.parse_expr(text)
        except ParseFailure as failure:
            # Only the error counts: what the parse had found before it stopped goes.
            del self.diagnostics[found:]
            self.diagnostics.extend(failure.diagnostics)
            return self._placeholder(self.source.span(offsets[0], offsets[-1]))
        finally:
            self._maps.pop()

    def _placeholder(self, span: Span):
        # Stands where an erroneous expression was; the analyser gives it no type, so the
        # error already reported is not followed by confusing type errors.
        return n.Name.make(span=span, name=n.ERROR_NAME, kind="name")

    @_meta
    def name(self, meta, children):
        tok = children[0]
        return n.Name.make(span=self.tok_span(tok), name=tok.value, kind="name")

    @_meta
    def true(self, meta, children):
        return n.Literal_.make(span=self.meta_span(meta), value=True, type="bool", kind="literal")

    @_meta
    def false(self, meta, children):
        return n.Literal_.make(span=self.meta_span(meta), value=False, type="bool", kind="literal")

    def number(self, tok: Token):
        """Classify a number-like token: int, float, duration, or an error where it stands."""
        text = tok.value
        span = self.tok_span(tok)
        known = self._numbers.get(text)
        if known is None:
            known = self._numbers[text] = _classify_number(text)
        kind, value = known
        if kind == "duration":
            return n.Duration.make(span=span, ms=value, text=text, kind="duration")
        if kind == "too large":
            self.error("E105", f"number too large: {_cut(text)}", span,
                       f"ints go up to {INT_MAX:,} (64 bits); durations up to as many "
                       "milliseconds; floats are finite")
            return self._placeholder(span)
        if kind is not None:
            return n.Literal_.make(span=span, value=value, type=kind, kind="literal")
        self._number_error(text, span)
        return self._placeholder(span)

    def _number_error(self, text: str, span: Span) -> None:
        digits = re.match(r"[0-9.]+", text)
        assert digits is not None
        suffix = text[digits.end():]
        if "." in digits.group() and re.fullmatch(r"((ms|s|m|h|d)[0-9]*)+", suffix):
            self.error("E102", f"{_cut(text)}: a duration takes whole numbers", span,
                       "write it as a sum of units, e.g. `1h30m` for an hour and a half")
        elif re.fullmatch(r"[0-9]+((ms|s|m|h|d)[0-9]+)*(ms|s|m|h|d)", text):
            self.error("E102", f"{_cut(text)}: duration units must be in descending order, each "
                       "used once", span, "e.g. `1h30m`, `2m30s`, `1s500ms`")
        else:
            self.error("E102", f"{_cut(text)} is not a number or a duration: a number cannot run "
                       "into a name", span, "durations use the units ms, s, m, h and d "
                       "(`250ms`, `30s`, `5m`, `2h`, `1d`); put a space or an operator between "
                       "a number and a name")

    @_meta
    def list_lit(self, meta, children):
        items = [self._expr(c) for c in children if c is not None]
        return n.ListExpr.make(span=self.meta_span(meta), items=items, kind="list")

    def _expr(self, value):
        """Expressions arrive as nodes, except bare NUMBER tokens (kept for classification)."""
        if value.__class__ is Token:
            return self.number(value)
        return value

    # ------------------------------------------------------------ expressions

    or_op = _binary("or")
    and_op = _binary("and")
    in_op = _binary("in")
    not_in = _binary("not in")
    contains_op = _binary("contains")
    matches_op = _binary("matches")
    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")

    @_meta
    def compare(self, meta, children):
        left, op, right = children
        return n.Binary.make(span=self.meta_span(meta), op=op,
                             left=self._expr(left), right=self._expr(right),
                                        kind="binary")

    @_meta
    def comp_op(self, meta, children):
        return children[0].value

    @_meta
    def not_op(self, meta, children):
        return n.Unary.make(span=self.meta_span(meta), op="not",
                            operand=self._expr(children[0]), kind="unary")

    @_meta
    def neg(self, meta, children):
        return n.Unary.make(span=self.meta_span(meta), op="-",
                            operand=self._expr(children[0]), kind="unary")

    @_meta
    def field(self, meta, children):
        target, name = children
        return n.FieldAccess.make(span=self.meta_span(meta), target=self._expr(target),
                                  name=name.value, kind="field")

    @_meta
    def index(self, meta, children):
        target, idx = children
        return n.Index.make(span=self.meta_span(meta), target=self._expr(target),
                            index=self._expr(idx), kind="index")

    @_meta
    def func_call(self, meta, children):
        func, *args = children
        args = [self._expr(a) for a in args if a is not None]
        return n.Call.make(span=self.meta_span(meta), func=self.ident(func), args=args, kind="call")

    # ------------------------------------------------------------ statements

    @_meta
    def into(self, meta, children):
        return self.ident(children[0])

    @_meta
    def run(self, meta, children):
        command, into = children
        return n.Run.make(span=self.meta_span(meta), command=command, into=into, kind="run")

    @_meta
    def http_header(self, meta, children):
        return n.Header.make(span=self.meta_span(meta), name=children[0],
                             value=self._expr(children[1]), kind="header")

    @_meta
    def http_body(self, meta, children):
        return Attr("body", self._expr(children[0]), None, meta)

    @_meta
    def http_options(self, meta, children):
        return children

    @_meta
    def http(self, meta, children):
        method, url, options, into = children
        span = self.meta_span(meta)
        method_id = self.ident(method)
        if method_id.name not in HTTP_METHODS:
            self.error("E104", f"unknown HTTP method `{method_id.name}`", method_id.span,
                       "use one of: " + ", ".join(HTTP_METHODS))
        headers, body = [], None
        for option in options or []:
            if isinstance(option, Attr):
                if body is not None:
                    self.error("E110", "duplicate `body` in http request",
                               self.attr_span(option))
                body = option.value
            else:
                headers.append(option)
        return n.Http.make(span=span, method=method_id, url=url, headers=headers,
                           body=body, into=into, kind="http")

    @_meta
    def expect(self, meta, children):
        return n.Expect.make(span=self.meta_span(meta), expr=self._expr(children[0]), kind="expect")

    @_meta
    def check_stmt(self, meta, children):
        title, body = children
        span = self.meta_span(meta)
        attrs = self._sort_attrs(body, CHECK_STMT_ATTRS, "a check")
        probe, expects = self._probe_and_expects(body.statements, span, "check")
        within = attrs.get("within")
        return n.CheckStatement.make(
            span=span, title=title, probe=probe, expects=expects,
            within=within[0] if within else None, every=within[1] if within else None, kind="check")

    @_meta
    def watch(self, meta, children):
        title, duration, every, tolerate, block = children
        span = self.meta_span(meta)
        probe, expects = self._probe_and_expects(block, span, "watch")
        return n.Watch.make(
            span=span, title=title, duration=self._expr(duration), every=self._expr(every),
            tolerate=self._expr(tolerate) if tolerate is not None else None, probe=probe,
            expects=expects, kind="watch")

    def _probe_and_expects(self, statements: list, span: Span, what: str):
        probes = [s for s in statements if s.kind in PROBES]
        expects = [s for s in statements if s.kind == "expect"]
        for other in statements:
            if other.kind not in PROBES and other.kind != "expect":
                self.error("E111", f"a {what} holds one probe (`run` or `http`) and `expect`s; "
                           f"`{_keyword(other)}` is not allowed here", other.span)
        if not probes:
            self.error("E112", f"this {what} has no probe: add one `run` or `http`", span)
        for extra in probes[1:]:
            self.error("E112", f"a {what} holds exactly one probe; this is a second one",
                       extra.span)
        return (probes[0] if probes else None), expects

    @_meta
    def confirm(self, meta, children):
        return n.Confirm.make(span=self.meta_span(meta), question=children[0], kind="confirm")

    @_meta
    def note(self, meta, children):
        return n.Note.make(span=self.meta_span(meta), text=children[0], kind="note")

    @_meta
    def wait(self, meta, children):
        return n.Wait.make(span=self.meta_span(meta), duration=self._expr(children[0]), kind="wait")

    @_meta
    def set_(self, meta, children):
        return n.Set.make(span=self.meta_span(meta), name=self.ident(children[0]),
                          value=self._expr(children[1]), kind="set")

    @_meta
    def fail(self, meta, children):
        return n.Fail.make(span=self.meta_span(meta), message=children[0], kind="fail")

    @_meta
    def elif_(self, meta, children):
        return n.Branch.make(span=self.meta_span(meta),
                             condition=self._expr(children[0]), body=children[1],
                                        kind="branch")

    @_meta
    def else_(self, meta, children):
        return children[0]

    @_meta
    def if_(self, meta, children):
        condition, block, *rest = children
        span = self.meta_span(meta)
        otherwise = rest.pop() if rest and (rest[-1] is None or isinstance(rest[-1], list)) \
            else None
        first = n.Branch.make(span=span, condition=self._expr(condition), body=block, kind="branch")
        return n.If.make(span=span, branches=[first, *rest], otherwise=otherwise, kind="if")

    @_meta
    def for_(self, meta, children):
        var, iterable, block = children
        return n.For.make(span=self.meta_span(meta), var=self.ident(var),
                          iterable=self._expr(iterable), body=block, kind="for")

    @_meta
    def named_arg(self, meta, children):
        return n.Argument.make(span=self.meta_span(meta), name=self.ident(children[0]),
                               value=self._expr(children[1]), kind="argument")

    @_meta
    def call(self, meta, children):
        first, second, *args = children
        args = [a for a in args if a is not None]
        if second is None:
            namespace, name = None, self.ident(first)
        else:
            namespace, name = self.ident(first), self.ident(second)
        seen: dict[str, n.Argument] = {}
        for arg in args:
            if arg.name.name in seen:
                self.error("E110", f"argument `{arg.name.name}` is given twice", arg.name.span)
            seen[arg.name.name] = arg
        return n.TaskCall.make(span=self.meta_span(meta), namespace=namespace,
                               name=name, args=args, kind="task_call")

    @_meta
    def block(self, meta, children):
        return list(children)

    # ------------------------------------------------------------ attributes

    a_when = _attr("when")
    a_timeout = _attr("timeout")
    a_dir = _attr("dir")
    a_description = _attr("description")
    a_rollback = _attr("rollback")
    a_approvers = _attr("approvers")
    a_require = _attr("require")
    a_message = _attr("message")
    a_self_approval = _attr("self_approval")
    a_within = _attr("within", 2)
    a_batch = _attr("batch")
    a_max_failures = _attr("max_failures")

    @_meta
    def a_retry(self, meta, children):
        count, every, backoff = (self._expr(c) if c is not None else None for c in children)
        retry = n.Retry.make(span=self.meta_span(meta), count=count, every=every,
                             backoff=backoff, kind="retry")
        return Attr("retry", retry, retry.span)

    @_meta
    def env_entry(self, meta, children):
        return n.EnvVar.make(span=self.meta_span(meta), name=self.ident(children[0]),
                             value=self._expr(children[1]), kind="env_var")

    @_meta
    def a_env(self, meta, children):
        seen: set[str] = set()
        for entry in children:
            if entry.name.name in seen:
                self.error("E110", f"`{entry.name.name}` is set twice in `env`", entry.name.span)
            seen.add(entry.name.name)
        return Attr("env", list(children), None, meta)

    @_meta
    def policy(self, meta, children):
        return children[0].value

    @_meta
    def a_on_failure(self, meta, children):
        policy, block = children
        span = self.meta_span(meta)
        if block is not None and policy != "rollback":
            self.error("E113", f"`on_failure {policy}` takes no block; only `on_failure "
                       "rollback { … }` names an undo block", span)
        value = n.OnFailure.make(span=span, policy=policy, body=block, kind="on_failure")
        return Attr("on_failure", value, span)

    @_meta
    def body(self, meta, children):
        statements: list = []
        attrs: list[Attr] = []
        for child in children:
            (attrs if child.__class__ is Attr else statements).append(child)
        return Body(statements, attrs)

    def _sort_attrs(self, body: Body, allowed: set[str], what: str) -> dict:
        found: dict = {}
        first_at: dict[str, Attr] = {}
        for attr in body.attrs:
            if attr.name not in allowed:
                hint = "allowed here: " + ", ".join(sorted(allowed))
                if attr.name in ON_STEP_ATTRS - STEP_ATTRS:
                    hint = (f"`{attr.name}` belongs to a step that runs on hosts: "
                            "`step NAME \"Title\" on HOSTS { … }`")
                self.error("E114", f"`{attr.name}` is not an attribute of {what}",
                           self.attr_span(attr), hint)
                continue
            if attr.name in found:
                first = self.attr_span(first_at[attr.name])
                self.error("E110", f"duplicate attribute `{attr.name}` in {what} (first set at "
                           f"line {first.line})", self.attr_span(attr))
                continue
            found[attr.name] = attr.value
            first_at[attr.name] = attr
        return found

    # ------------------------------------------------------------ items

    @_meta
    def step(self, meta, children):
        name, title, loop, on, body = children
        what = f"step `{name.value}`"
        attrs = self._sort_attrs(body, ON_STEP_ATTRS if on is not None else STEP_ATTRS, what)
        span = self.meta_span(meta)
        self._check_undo(attrs, body, what)
        loop_var, loop_over = loop if loop is not None else (None, None)
        if loop is not None and on is not None:
            self.error("E117", f"{what} has both `for` and `on`: a step runs once per item "
                       "or once per host, not both", self.meta_span(on[1]),
                       "name every host in `on` (a list works: `on [\"web1\", \"web2\"]`), "
                       "or loop inside the step with `for X in … { … }`")
        get = attrs.get
        return n.Step.make(span=span, name=self.ident(name), title=title,
                           loop_var=loop_var, loop_over=loop_over,
                           on=on[0] if on is not None else None,
                           batch=get("batch"), max_failures=get("max_failures"),
                           body=body.statements, when=get("when"), timeout=get("timeout"),
                           retry=get("retry"), env=get("env"), dir=get("dir"),
                           description=get("description"), rollback=get("rollback"),
                           on_failure=get("on_failure"), kind="step")

    @_meta
    def step_loop(self, meta, children):
        return self.ident(children[0]), self._expr(children[1])

    @_meta
    def step_on(self, meta, children):
        # What `on HOSTS` covers, for a message about the clause as a whole.
        return self._expr(children[0]), meta

    @_meta
    def check_step(self, meta, children):
        name, title, body = children
        what = f"check `{name.value}`"
        attrs = self._sort_attrs(body, CHECK_STEP_ATTRS, what)
        span = self.meta_span(meta)
        self._check_undo(attrs, body, what)
        probe, expects = self._probe_and_expects(body.statements, span, "check")
        within = attrs.pop("within", None)
        return n.Step.make(
            span=span, name=self.ident(name), title=title, body=[], probe=probe, expects=expects,
            within=within[0] if within else None, every=within[1] if within else None,
            **self._step_fields(attrs), kind="check_step")

    def _check_undo(self, attrs: dict, body: Body, what: str) -> None:
        on_failure = attrs.get("on_failure")
        if "rollback" in attrs and on_failure is not None and on_failure.body is not None:
            self.error("E115", f"{what} has two undo blocks: `rollback {{ … }}` and "
                       "`on_failure rollback { … }`", on_failure.span,
                       "keep one; `on_failure rollback` without a block uses `rollback { … }`")

    @staticmethod
    def _step_fields(attrs: dict) -> dict:
        retry = attrs.get("retry")
        return {
            "when": attrs.get("when"), "timeout": attrs.get("timeout"), "retry": retry,
            "env": attrs.get("env"), "dir": attrs.get("dir"),
            "description": attrs.get("description"), "rollback": attrs.get("rollback"),
            "on_failure": attrs.get("on_failure"),
        }

    @_meta
    def gate(self, meta, children):
        name, title, body = children
        what = f"gate `{name.value}`"
        attrs = self._sort_attrs(body, GATE_ATTRS, what)
        for statement in body.statements:
            self.error("E111", f"a gate holds attributes only; `{_keyword(statement)}` is not "
                       "allowed here", statement.span, "put the work in a step before or after "
                       "the gate")
        return n.Gate.make(span=self.meta_span(meta), name=self.ident(name),
                           title=title, **attrs, kind="gate")

    @_meta
    def header(self, meta, children):
        title, *attrs = children
        fields: dict = {}
        for key, value, span in attrs:
            if key in fields:
                # The first one counts, as for step attributes.
                self.error("E110", f"duplicate `{key}` in the runbook header", span)
                continue
            fields[key] = value
        for key in ("signers", "id"):
            if key in fields:
                fields[key], fields[f"{key}_span"] = fields[key]
        return n.RunbookHeader.make(span=self.meta_span(meta), title=title, **fields,
                                    kind="runbook")

    @_meta
    def h_description(self, meta, children):
        return ("description", children[0], self.meta_span(meta))

    @_meta
    def h_owner(self, meta, children):
        return ("owner", children[0], self.meta_span(meta))

    @_meta
    def h_tags(self, meta, children):
        return ("tags", children[0], self.meta_span(meta))

    @_meta
    def h_signers(self, meta, children):
        path = children[0]
        text = path.constant()
        if text is None:
            self.error("E116", "the signers file's path cannot be interpolated", path.span,
                       "write the path out, relative to this file")
            text = ""
        elif not text:
            self.error("E116", "`signers` needs the path of an allowed-signers file",
                       path.span)
        return ("signers", (text, path.span), self.meta_span(meta))

    @_meta
    def h_id(self, meta, children):
        value = children[0]
        text = value.constant()
        if text is None or not text.strip() or text != text.strip():
            self.error("E116", "the runbook's `id` must be written out, not empty, without "
                       "leading or trailing spaces", value.span,
                       'for example `id "payments/deploy"`: the same on every machine')
            text = None
        return ("id", (text, value.span), self.meta_span(meta))

    @_meta
    def import_(self, meta, children):
        path, alias = children
        text = path.constant()
        if text is None:
            self.error("E116", "an import path cannot be interpolated", path.span,
                       "write the path out: `std/NAME`, or relative to this file")
            text = ""  # the loader leaves an empty path alone: it is reported here
        elif not text:
            self.error("E116", "an import needs a path", path.span,
                       "`std/NAME`, or a path relative to this file")
        return n.Import.make(span=self.meta_span(meta), path=text,
                             path_span=path.span, alias=self.ident(alias), kind="import")

    @_meta
    def targets(self, meta, children):
        path = children[0]
        text = path.constant()
        if text is None:
            self.error("E116", "the path of `targets` cannot be interpolated", path.span,
                       "write the inventory's path out, relative to this file")
            text = ""
        elif not text:
            self.error("E116", "`targets` needs the path of an inventory file", path.span,
                       "an Ansible-style YAML inventory, relative to this file")
        return n.Targets.make(span=self.meta_span(meta), path=text, path_span=path.span,
                              kind="targets")

    @_meta
    def param(self, meta, children):
        name, type_, default, body = children
        fields: dict = {}
        for key, value, span in body or []:
            if key in fields:
                self.error("E110", f"duplicate `{key}` in param `{name.value}`", span)
                continue
            fields[key] = value
        return n.Param.make(
            span=self.meta_span(meta), name=self.ident(name),
            type=self.ident(type_) if type_ is not None else None,
            default=self._expr(default) if default is not None else None, **fields, kind="param")

    @_meta
    def param_body(self, meta, children):
        return children

    @_meta
    def p_description(self, meta, children):
        return ("description", children[0], self.meta_span(meta))

    @_meta
    def p_choices(self, meta, children):
        return ("choices", children[0], self.meta_span(meta))

    @_meta
    def p_pattern(self, meta, children):
        return ("pattern", children[0], self.meta_span(meta))

    @_meta
    def secret_source(self, meta, children):
        return children[0].value

    @_meta
    def secret(self, meta, children):
        name, source, ref = children
        text = ref.constant()
        what = "an environment variable" if source == "env" else "a file"
        if text is None:
            self.error("E116", "a secret's source cannot be interpolated", ref.span,
                       f"name {what} as plain text")
            text = ""
        elif not text:
            self.error("E116", f"secret `{name.value}` needs the name of {what}", ref.span)
        return n.Secret.make(span=self.meta_span(meta), name=self.ident(name),
                             source=source, ref=text, kind="secret")

    @_meta
    def let(self, meta, children):
        return n.Let.make(span=self.meta_span(meta), name=self.ident(children[0]),
                          value=self._expr(children[1]), kind="let")

    @_meta
    def task_param(self, meta, children):
        name, default = children
        return n.TaskParam.make(
            span=self.meta_span(meta), name=self.ident(name),
            default=self._expr(default) if default is not None else None, kind="task_param")

    @_meta
    def task(self, meta, children):
        name, *params, block = children
        params = [p for p in params if p is not None]
        seen: set[str] = set()
        for param in params:
            if param.name.name in seen:
                self.error("E110", f"task `{name.value}` has two parameters named "
                           f"`{param.name.name}`", param.name.span)
            seen.add(param.name.name)
        return n.Task.make(span=self.meta_span(meta), name=self.ident(name),
                           params=params, body=block, kind="task")

    @_meta
    def default_policy(self, meta, children):
        return n.DefaultPolicy.make(span=self.meta_span(meta), policy=children[0],
                                    kind="default_policy")

    @_meta
    def finally_(self, meta, children):
        return n.Finally.make(span=self.meta_span(meta), body=children[0], kind="finally")

    @_meta
    def start(self, meta, children):
        span = self.source.span(0, len(self.source.text))
        return n.Runbook.make(span=span, path=self.source.path, items=list(children), kind="file")


_RULES: dict[str, Callable[..., Any]] = {
    name: fn for name, fn in vars(AstBuilder).items() if getattr(fn, "is_rule", False)}


def rule_callbacks() -> dict[str, Callable[..., Any]]:
    """The callbacks of the grammar's rules, by name (unbound methods of AstBuilder)."""
    return _RULES


def _keyword(statement) -> str:
    """The keyword a statement starts with, for messages."""
    return {"task_call": "task call", "check": "check", "expect": "expect"}.get(
        statement.kind, statement.kind)


def _quotes(text: str) -> int:
    """How many quotes open a string token: 3 for a triple-quoted string, else 1."""
    return 3 if text.startswith('"""') else 1
