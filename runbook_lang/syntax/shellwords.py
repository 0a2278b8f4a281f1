"""A shell lexer over a command template's static text: where each interpolation lands.

A `run` command is text around `{{ … }}` holes. Before any value is known, this lexer reads
the text the way `/bin/sh` will (dash, and bash, also in POSIX mode) and names the context
of every hole: a plain word, inside `'…'`, inside `"…"`, inside the word of `${X:-…}`
(unquoted or within `"…"`), or an unsafe place where no quoting can keep a value one
literal word: a here-document, a comment, arithmetic, the arguments of `eval` and its kin
(see `shellcommands`), or text this lexer cannot follow the same way for both shells.
`$(…)` and backquotes open a new plain context inside (backquotes add a layer of
backslashes, counted in `Context.layers`). LANGUAGE.md §6.1; docs/decisions.md explains the
choices.

The template is a sequence of text pieces and holes (`None`); `shell_contexts` returns one
`Context` per hole. A hole is lexed as a word character: the quoting chosen for its context
never opens or closes anything, so the text after it is read the same whatever the value.

The lexer here handles holes, quotes and expansions; `shellplain` reads plain text (words,
operators, here-documents, comments); `shellframes` holds the data both share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from .shellcommands import CODE_VARIABLES
from .shellframes import (
    AFTER_BACKSLASH,
    AFTER_DOLLAR,
    ANSI_C,
    ARITHMETIC,
    BACKQUOTED_PARAM,
    BASH_ARITHMETIC,
    COMMENT,
    DOUBLE,
    HEREDOC,
    HOLE,
    LOCALE,
    PARAM,
    PARAM_AFTER_NAME,
    PARAM_DOUBLE,
    PARAM_HEAD,
    PARAM_NAME,
    SINGLE,
    SPECIAL_PARAMS,
    SUBSCRIPT,
    SUBSCRIPTED,
    UNSAFE,
    WORD,
    ArithFrame,
    Context,
    Frame,
    ParamFrame,
    PlainFrame,
    QuoteFrame,
    Word,
    settle,
    unsafe,
)
from .shellplain import PlainText

__all__ = ["DOUBLE", "PARAM", "PARAM_DOUBLE", "SINGLE", "UNSAFE", "WORD", "BACKQUOTED_PARAM",
           "Context", "contexts_of", "shell_contexts", "unsafe"]


@lru_cache(maxsize=1024)
def shell_contexts(template: tuple[str | None, ...]) -> tuple[Context, ...]:
    """The context of each hole (`None`) in a template of text pieces and holes."""
    # A NUL never reaches a shell (a file holding one is refused, a value holding one fails
    # its step): here it marks the holes.
    text = "".join(HOLE if piece is None else piece.replace(HOLE, " ") for piece in template)
    holes = template.count(None)
    found = ShellLexer(text, range(holes)).run()
    return tuple(found[hole] for hole in range(holes))


def contexts_of(template: Sequence[str | None]) -> tuple[Context, ...]:
    """`shell_contexts` for any sequence (lists are not hashable, tuples are cached)."""
    return shell_contexts(tuple(template))


# ---------------------------------------------------------------------- the lexer


# Quotes, expansions and substitutions nested deeper than this are not followed.
MAX_NESTING = 64
# Runs of characters that change nothing where they are: read at once.
_DOUBLE_RUN = re.compile(r'[^"\\$`\0\n]+')
_SINGLE_RUN = re.compile(r"[^'\\\0\n]+")
_PARAM_RUN = re.compile(r"[^}\\'\"$`\0\n]+")
_BACKQUOTE_SPECIAL = re.compile(r"[\\`\0]")


class ShellLexer:
    """Reads text whose holes are HOLE characters, with a stack of frames.

    `numbers` gives each hole, in order, the number it has in the whole command (a lexer
    for the inside of backquotes reads part of it).
    """

    def __init__(self, text: str, numbers: Sequence[int], in_backquotes: bool = False,
                 depth: int = 0) -> None:
        self.text = text
        self.number_at = dict(zip((m.start() for m in re.finditer(HOLE, text)), numbers,
                                  strict=True))
        self.in_backquotes = in_backquotes
        self.depth = depth  # the frames of the lexers around this one (backquotes)
        self.i = 0
        self.stack: list[Frame] = [PlainFrame()]
        self.contexts: dict[int, Context] = {}
        self.forced: dict[int, str] = {}  # holes made unsafe by the character before them
        self.after_name: int | None = None  # the hole right after `$NAME`
        self.lost: str | None = None
        self.plain = PlainText(self)
        self.readers = {"plain": self.plain.read, "single": self.in_single,
                        "double": self.in_double, "param": self.in_param,
                        "arith": self.in_arith}

    def push(self, frame: Frame) -> None:
        """Enter a quote, an expansion or a `$(…)`; deeper than MAX_NESTING is not followed
        (it keeps the cost of each step bounded on hostile text)."""
        if self.depth + len(self.stack) >= MAX_NESTING:
            self.lose(f"shell text nested more than {MAX_NESTING} levels deep")
        self.stack.append(frame)

    def peek(self, ahead: int = 1) -> str | int | None:
        """The character `ahead` of the current one, a hole's number, or None at the end."""
        at = self.i + ahead
        if at >= len(self.text):
            return None
        char = self.text[at]
        return self.number_at[at] if char == HOLE else char

    def skip(self, run: re.Pattern) -> str:
        """Read at once the characters from here that `run` matches; return them."""
        match = run.match(self.text, self.i)
        if match is None:
            return ""
        self.i = match.end()
        return match.group()

    def lose(self, reason: str) -> None:
        """Stop following the text: every later hole is unsafe."""
        self.lost = self.lost or reason

    def run(self) -> dict[int, Context]:
        text, readers = self.text, self.readers
        while self.i < len(text) and self.lost is None:
            char = text[self.i]
            frame = self.stack[-1]
            if char == HOLE:
                self.i += 1
                self.hole(self.number_at[self.i - 1], frame)
            else:
                readers[frame.kind](frame, char)  # type: ignore[operator]
        for at, hole in self.number_at.items():
            if at >= self.i and hole not in self.contexts:
                self.contexts[hole] = unsafe(f"after {self.lost}, which this check cannot "
                                             "follow")
        for frame in self.stack:
            if isinstance(frame, PlainFrame):
                self.plain.end_command(frame)
        return self.contexts

    # ------------------------------------------------------------------ holes

    def hole(self, hole: int, frame: Frame) -> None:
        forced = self.forced.pop(hole, None)
        context = unsafe(forced) if forced else self.context_here(hole, frame)
        self.contexts[hole] = context
        self.register(hole)
        word = self.owner_word()
        if word is not None:
            word.dynamic = True
        if isinstance(frame, ParamFrame) and frame.state != "word":
            self.lose(PARAM_NAME)

    def context_here(self, hole: int, frame: Frame) -> Context:
        after_name = self.after_name == hole
        base: Context
        if isinstance(frame, PlainFrame):
            if frame.mode == "comment":
                return unsafe(COMMENT)
            if frame.mode == "body":
                frame.line_hole = True
                return unsafe(HEREDOC)
            word = self.plain.start_word(frame)
            text = word.start()
            bare = not after_name and not (word.role == "command" and word.assigns_to is None) \
                and not (text.startswith("~") and "/" not in text)
            base = Context(WORD, bare=bare)
        elif isinstance(frame, QuoteFrame):
            inside_param = len(self.stack) > 1 and isinstance(self.stack[-2], ParamFrame) \
                and self.stack[-2].in_double
            if frame.kind == DOUBLE and after_name and inside_param:
                return unsafe(PARAM_AFTER_NAME)
            base = Context(frame.kind, after_name=after_name and frame.kind == DOUBLE,
                           in_param=frame.kind == DOUBLE and inside_param)
        elif isinstance(frame, ParamFrame):
            if frame.state != "word":
                return unsafe(PARAM_NAME)
            if frame.in_double and after_name:
                return unsafe(PARAM_AFTER_NAME)
            base = Context(PARAM_DOUBLE if frame.in_double else PARAM)
        else:
            return unsafe(frame.reason)
        reason = self.stack_reason()
        if reason:
            return unsafe(reason)
        return settle(replace(base, no_backslash=self.read_raw()))

    def read_raw(self) -> bool:
        """Whether bash reads the text here before undoing the backquotes' backslashes: in
        `$(…)` or `${…}` within backquotes."""
        return self.in_backquotes and any(
            isinstance(frame, ParamFrame) or (isinstance(frame, PlainFrame) and frame.closer)
            for frame in self.stack)

    def stack_reason(self) -> str | None:
        """Why the place being read is unsafe because of what encloses it, or None."""
        for frame in reversed(self.stack):
            reason = self.frame_reason(frame)
            if reason:
                return reason
        return None

    @staticmethod
    def frame_reason(frame: Frame) -> str | None:
        if isinstance(frame, ArithFrame):
            return frame.reason
        if isinstance(frame, (QuoteFrame, ParamFrame)):
            return frame.taint
        if frame.taint:
            return frame.taint
        word = frame.word
        if word is None:
            return None
        text = word.start()
        if word.role in ("delim", "delim-"):
            return "in a here-document delimiter"
        if word.role == "command":
            if word.assigns_to in CODE_VARIABLES:
                return f"in `{word.assigns_to}`, which the shell expands as code"
            if word.assigns_to is None and SUBSCRIPTED.match(text):
                return SUBSCRIPT
            return None
        if word.role == "arg":
            return frame.cmd.words.reason(word.assigns_to)
        return None

    def register(self, hole: int) -> None:
        """Remember a hole inside `[[ … ]]`: unsafe if the test turns out arithmetic."""
        for frame in self.stack:
            if isinstance(frame, PlainFrame) and frame.cmd.dbracket:
                frame.cmd.dbracket_holes.append(hole)

    def owner_word(self) -> Word | None:
        for frame in reversed(self.stack):
            if isinstance(frame, PlainFrame):
                return frame.word
        return None

    def in_double_quotes(self) -> bool:
        frame = self.stack[-1]
        return (isinstance(frame, QuoteFrame) and frame.kind == DOUBLE) or \
            (isinstance(frame, ParamFrame) and frame.in_double)

    def heredoc_waiting(self, inner: Frame | None = None) -> bool:
        """Whether a here-document body is due at the next line break of an outer frame."""
        return any(isinstance(f, PlainFrame) and f is not inner and (f.heredocs or f.mode == "body")
                   for f in self.stack)

    def newline_inside(self) -> None:
        """A line break inside a quote or an expansion: fine unless a here-document waits."""
        if self.heredoc_waiting():
            self.lose("a here-document whose command goes on over more lines")

    def in_plain(self, frame: PlainFrame, c: str) -> None:
        self.plain.read(frame, c)

    # ------------------------------------------------------------------ quotes

    def in_single(self, frame: QuoteFrame, c: str) -> None:
        if c == "'":
            self.stack.pop()
            self.i += 1
            return
        if c == "\\" and frame.taint == ANSI_C:
            nxt = self.peek()
            if nxt == "'":
                self.lose("`\\'` inside `$'…'` (dash ends the quote there, bash does not)")
            self.i += 1 if isinstance(nxt, int) else 2
            return
        if c in "\n\\":
            if c == "\n":
                self.newline_inside()
            self.i += 1
            chars = c
        else:
            chars = self.skip(_SINGLE_RUN)
        word = self.owner_word()
        if word is not None:
            word.add(chars, quoted=True)

    def in_double(self, frame: QuoteFrame, c: str) -> None:
        word = self.owner_word()
        if c == '"':
            self.stack.pop()
            self.i += 1
        elif c == "\\":
            nxt = self.peek()
            if isinstance(nxt, int):
                self.forced[nxt] = AFTER_BACKSLASH
                self.i += 1
                return
            if word is not None:
                word.add(nxt if nxt and nxt in '$`"\\\n' else "\\" + (nxt or ""), quoted=True)
            self.i += 2
        elif c == "$":
            self.dollar()
        elif c == "`":
            self.backquote()
        elif c == "\n":
            self.newline_inside()
            if word is not None:
                word.add(c, quoted=True)
            self.i += 1
        else:
            chars = self.skip(_DOUBLE_RUN)
            if word is not None:
                word.add(chars, quoted=True)

    # ------------------------------------------------------------------ expansions

    def dollar(self) -> None:
        """`$` in plain text, in `"…"`, in a `${…}` word or in arithmetic."""
        word = self.owner_word()
        if word is not None:
            word.dynamic = True
        nxt = self.peek()
        in_double = self.in_double_quotes()
        if isinstance(nxt, int):
            self.forced[nxt] = AFTER_DOLLAR
            self.i += 1
        elif nxt == "(" and self.peek(2) == "(":
            self.push(ArithFrame("))", ARITHMETIC))
            self.i += 3
        elif nxt == "(":
            self.push(PlainFrame(closer=")"))
            self.i += 2
        elif nxt == "{":
            self.push(ParamFrame(in_double))
            self.i += 2
        elif nxt == "[":
            self.push(ArithFrame("]", BASH_ARITHMETIC))
            self.i += 2
        elif nxt in ("'", '"') and not in_double:
            quote = QuoteFrame(SINGLE, ANSI_C) if nxt == "'" else QuoteFrame(DOUBLE, LOCALE)
            self.push(quote)
            self.i += 2
        elif isinstance(nxt, str) and nxt.isascii() and (nxt.isalpha() or nxt == "_"):
            self.i += 1
            while _name_char(self.peek(0)):
                self.i += 1
            following = self.peek(0)
            if isinstance(following, int):
                self.after_name = following
        elif isinstance(nxt, str) and nxt in SPECIAL_PARAMS:
            self.i += 2
        else:
            self.i += 1

    def backquote(self) -> None:
        """`` `…` ``: undo its backslash layer, lex the inside as a new plain text."""
        in_double = self.in_double_quotes()
        text = self.text
        inner: list[str] = []
        numbers: list[int] = []
        escaped: set[int] = set()
        j = self.i + 1
        while True:
            special = _BACKQUOTE_SPECIAL.search(text, j)
            if special is None:
                self.lose("a backquote that is never closed")
                return
            inner.append(text[j:special.start()])
            j = special.start()
            char = text[j]
            if char == "`":
                break
            if char == HOLE:
                numbers.append(self.number_at[j])
                inner.append(HOLE)
                j += 1
                continue
            nxt = text[j + 1:j + 2]
            if nxt == HOLE:
                escaped.add(self.number_at[j + 1])
            if nxt and (nxt in "\\`$" or (in_double and nxt == '"')):
                inner.append(nxt)  # the backslash of this layer is removed
                j += 2
            else:
                inner.append("\\")
                j += 1
        inside_text = "".join(inner)
        if "\n" in inside_text and self.heredoc_waiting():
            self.lose("a here-document whose command goes on over more lines")
            return
        reason = self.stack_reason()
        raw = self.read_raw()
        inside = ShellLexer(inside_text, numbers, in_backquotes=True,
                            depth=self.depth + len(self.stack))
        for hole, context in inside.run().items():
            if hole in escaped:
                context = unsafe(AFTER_BACKSLASH)
            elif reason:
                context = unsafe(reason)
            elif context.safe:
                context = settle(replace(context, layers=context.layers + 1,
                                          no_backslash=context.no_backslash or raw))
            self.contexts[hole] = context
            self.register(hole)
        word = self.owner_word()
        if word is not None:
            word.dynamic = True
        self.i = j + 1

    def in_param(self, frame: ParamFrame, c: str) -> None:
        if frame.state == "head":
            run = self.text[self.i:self.i + 256].split(HOLE, 1)[0]
            match = PARAM_HEAD.match(run)
            if match is None:
                if run:  # a hole right after `${` is reported by hole()
                    self.lose("a parameter expansion `${…}` this check cannot read")
                frame.state = "after"
                return
            self.i += match.end()
            frame.state = "after"
        elif frame.state == "after":
            self.param_operator(frame, c)
        elif c == "}":
            self.stack.pop()
            self.i += 1
        elif c == "\\":
            nxt = self.peek()
            if isinstance(nxt, int):
                self.forced[nxt] = AFTER_BACKSLASH
                self.i += 1
            else:
                self.i += 2
        elif c == "'" and frame.in_double:
            self.lose("a `'` inside `\"${…}\"` (bash reads it as a quote, dash does not)")
        elif c in "'\"":
            self.push(QuoteFrame(SINGLE if c == "'" else DOUBLE))
            self.i += 1
        elif c == "$":
            self.dollar()
        elif c == "`":
            self.backquote()
        elif c == "\n":
            self.newline_inside()
            self.i += 1
        else:
            self.skip(_PARAM_RUN)

    def param_operator(self, frame: ParamFrame, c: str) -> None:
        nxt = self.peek()
        frame.state = "word"
        if c == "}":
            self.stack.pop()
            self.i += 1
        elif c == "[":
            frame.state = "after"
            self.push(ArithFrame("]", SUBSCRIPT))
            self.i += 1
        elif c == ":" and isinstance(nxt, str) and nxt in "-=+?":
            self.i += 2
        elif c in "-=+?":
            self.i += 1
        elif c in "#%":
            frame.taint = (f"in the pattern of `${{…{c}…}}`, where quoting differs between "
                           "shells")
            self.i += 2 if nxt == c else 1
        elif c in ":/^,@":
            frame.taint = "in a bash-only parameter expansion"
            self.i += 1
        else:
            self.lose("a parameter expansion `${…}` this check cannot read")

    def in_arith(self, frame: ArithFrame, c: str) -> None:
        opener = "(" if frame.closer == "))" else "["
        closer = frame.closer[0]
        if c == opener:
            frame.depth += 1
        elif c == closer and frame.depth:
            frame.depth -= 1
        elif c == closer:
            if frame.closer == "))" and self.peek() != ")":
                self.lose("a `$((…)` that bash and dash may read differently")
                return
            self.stack.pop()
            self.i += len(frame.closer)
            return
        elif c == "\\":
            nxt = self.peek()
            self.i += 1 if isinstance(nxt, int) else 2
            return
        elif c in "'\"":
            self.push(QuoteFrame(SINGLE if c == "'" else DOUBLE))
        elif c == "$":
            self.dollar()
            return
        elif c == "`":
            self.backquote()
            return
        elif c == "\n":
            self.newline_inside()
        self.i += 1


def _name_char(c: object) -> bool:
    return isinstance(c, str) and c.isascii() and (c.isalnum() or c == "_")
