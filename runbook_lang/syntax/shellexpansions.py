"""Expansions for the shell lexer: `$NAME`, `${…}`, `$(…)`, `$((…))`, backquotes and
arithmetic.

`Expansions` reads them for the `ShellLexer` (which owns the position, the frame stack and
the contexts found): it pushes the frame an expansion opens, reads `${…}` and arithmetic,
and lexes the inside of backquotes as a new plain text once their layer of backslashes is
undone.
"""

from __future__ import annotations

from ..dataclass import replace
from ..hints import TYPE_CHECKING
from ..lazy import compile_later
from .shellframes import (
    AFTER_BACKSLASH,
    AFTER_DOLLAR,
    ANSI_C,
    ARITHMETIC,
    BACKQUOTE_QUOTE,
    BACKQUOTED_RAW,
    BASH_ARITHMETIC,
    DOUBLE,
    HOLE,
    LOCALE,
    PARAM_HEAD,
    SINGLE,
    SPECIAL_PARAMS,
    SUBSCRIPT,
    ArithFrame,
    ParamFrame,
    PlainFrame,
    QuoteFrame,
    settle,
    unsafe,
)

if TYPE_CHECKING:
    from .shellwords import ShellLexer

_PARAM_RUN = compile_later(r"[^}\\'\"$`\0\n]+")
_BACKQUOTE_SPECIAL = compile_later(r"[\\`\0]")


class Expansions:
    """Reads expansions for a lexer."""

    def __init__(self, lexer: ShellLexer) -> None:
        self.lx = lexer

    def dollar(self) -> None:
        """`$` in plain text, in `"…"`, in a `${…}` word or in arithmetic."""
        word = self.lx.owner_word()
        if word is not None:
            word.dynamic = True
        nxt = self.lx.peek()
        in_double = self.lx.in_double_quotes()
        if isinstance(nxt, int):
            self.lx.forced[nxt] = AFTER_DOLLAR
            self.lx.i += 1
        elif nxt == "(" and self.lx.peek(2) == "(":
            self.lx.push(ArithFrame("))", ARITHMETIC))
            self.lx.i += 3
        elif nxt == "(":
            self.lx.push(PlainFrame(closer=")"))
            self.lx.i += 2
        elif nxt == "{":
            self.lx.push(ParamFrame(in_double))
            self.lx.i += 2
        elif nxt == "[":
            self.lx.push(ArithFrame("]", BASH_ARITHMETIC))
            self.lx.i += 2
        elif nxt in ("'", '"') and not in_double:
            quote = QuoteFrame(SINGLE, ANSI_C) if nxt == "'" else QuoteFrame(DOUBLE, LOCALE)
            self.lx.push(quote)
            self.lx.i += 2
        elif isinstance(nxt, str) and nxt.isascii() and (nxt.isalpha() or nxt == "_"):
            self.lx.i += 1
            while _name_char(self.lx.peek(0)):
                self.lx.i += 1
            following = self.lx.peek(0)
            if isinstance(following, int):
                self.lx.after_name = following
        elif isinstance(nxt, str) and nxt in SPECIAL_PARAMS:
            self.lx.i += 2
        else:
            self.lx.i += 1

    def backquote(self) -> None:
        """`` `…` ``: undo its backslash layer, lex the inside as a new plain text."""
        in_double = self.lx.in_double_quotes()
        text = self.lx.text
        inner: list[str] = []
        numbers: list[int] = []
        escaped: set[int] = set()
        bare_quote = False  # an unescaped `"` inside backquotes within `"…"`
        j = self.lx.i + 1
        while True:
            special = _BACKQUOTE_SPECIAL.search(text, j)
            if special is None:
                self.lx.lose("a backquote that is never closed")
                return
            inner.append(text[j:special.start()])
            bare_quote = bare_quote or (in_double and '"' in text[j:special.start()])
            j = special.start()
            char = text[j]
            if char == "`":
                break
            if char == HOLE:
                numbers.append(self.lx.number_at[j])
                inner.append(HOLE)
                j += 1
                continue
            nxt = text[j + 1:j + 2]
            if nxt == HOLE:
                escaped.add(self.lx.number_at[j + 1])
            if nxt and (nxt in "\\`$" or (in_double and nxt == '"')):
                inner.append(nxt)  # the backslash of this layer is removed
                j += 2
            else:
                inner.append("\\")
                j += 1
        inside_text = "".join(inner)
        if "\n" in inside_text and self.lx.heredoc_waiting():
            self.lx.lose("a here-document whose command goes on over more lines")
            return
        reason = self.lx.stack_reason() or (BACKQUOTE_QUOTE if bare_quote else None)
        raw = self.lx.read_raw()
        inside = self.lx.__class__(inside_text, numbers, in_backquotes=True,
                                   depth=self.lx.depth + len(self.lx.stack))
        for hole, context in inside.run().items():
            if hole in escaped:
                context = unsafe(AFTER_BACKSLASH)
            elif reason:
                context = unsafe(reason)
            elif context.safe:
                layers = (*context.layers, in_double)
                no_backslash = context.no_backslash or raw
                # Bash parses a `$(…)` inside backquotes within `"…"` with the backquotes'
                # backslashes still in: no quoting reads the same both ways there.
                context = unsafe(BACKQUOTED_RAW) if no_backslash and any(layers) else \
                    settle(replace(context, layers=layers, no_backslash=no_backslash))
            self.lx.contexts[hole] = context
            self.lx.register(hole)
        word = self.lx.owner_word()
        if word is not None:
            word.dynamic = True
        self.lx.i = j + 1

    def in_param(self, frame: ParamFrame, c: str) -> None:
        """Inside `${…}`: the name, the operator, then the word up to `}`."""
        if frame.state == "head":
            run = self.lx.text[self.lx.i:self.lx.i + 256].split(HOLE, 1)[0]
            match = PARAM_HEAD.match(run)
            if match is None:
                if run:  # a hole right after `${` is reported by hole()
                    self.lx.lose("a parameter expansion `${…}` this check cannot read")
                frame.state = "after"
                return
            self.lx.i += match.end()
            frame.state = "after"
        elif frame.state == "after":
            self.param_operator(frame, c)
        elif c == "}":
            self.lx.stack.pop()
            self.lx.i += 1
        elif c == "\\":
            nxt = self.lx.peek()
            if isinstance(nxt, int):
                self.lx.forced[nxt] = AFTER_BACKSLASH
                self.lx.i += 1
            else:
                self.lx.i += 2
        elif c == "'" and frame.in_double:
            self.lx.lose("a `'` inside `\"${…}\"` (bash reads it as a quote, dash does not)")
        elif c in "'\"":
            self.lx.push(QuoteFrame(SINGLE if c == "'" else DOUBLE))
            self.lx.i += 1
        elif c == "$":
            self.dollar()
        elif c == "`":
            self.backquote()
        elif c == "\n":
            self.lx.newline_inside()
            self.lx.i += 1
        else:
            self.lx.skip(_PARAM_RUN)

    def param_operator(self, frame: ParamFrame, c: str) -> None:
        """After the name in `${NAME…}`: which operator, and so what its word is."""
        nxt = self.lx.peek()
        frame.state = "word"
        if c == "}":
            self.lx.stack.pop()
            self.lx.i += 1
        elif c == "[":
            frame.state = "after"
            self.lx.push(ArithFrame("]", SUBSCRIPT))
            self.lx.i += 1
        elif c == ":" and isinstance(nxt, str) and nxt in "-=+?":
            self.lx.i += 2
        elif c in "-=+?":
            self.lx.i += 1
        elif c in "#%":
            frame.taint = (f"in the pattern of `${{…{c}…}}`, where quoting differs between "
                           "shells")
            self.lx.i += 2 if nxt == c else 1
        elif c in ":/^,@":
            frame.taint = "in a bash-only parameter expansion"
            self.lx.i += 1
        else:
            self.lx.lose("a parameter expansion `${…}` this check cannot read")

    def in_arith(self, frame: ArithFrame, c: str) -> None:
        """Inside arithmetic: only its end matters (every hole in it is unsafe)."""
        opener = "(" if frame.closer == "))" else "["
        closer = frame.closer[0]
        if c == opener:
            frame.depth += 1
        elif c == closer and frame.depth:
            frame.depth -= 1
        elif c == closer:
            if frame.closer == "))" and self.lx.peek() != ")":
                self.lx.lose("a `$((…)` that bash and dash may read differently")
                return
            self.lx.stack.pop()
            self.lx.i += len(frame.closer)
            return
        elif c == "\\":
            nxt = self.lx.peek()
            self.lx.i += 1 if isinstance(nxt, int) else 2
            return
        elif c in "'\"":
            self.lx.push(QuoteFrame(SINGLE if c == "'" else DOUBLE))
        elif c == "$":
            self.dollar()
            return
        elif c == "`":
            self.backquote()
            return
        elif c == "\n":
            self.lx.newline_inside()
        self.lx.i += 1


def _name_char(c: object) -> bool:
    return isinstance(c, str) and c.isascii() and (c.isalnum() or c == "_")
