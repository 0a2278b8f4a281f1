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

The lexer here handles holes and quotes; `shellplain` reads plain text (words, operators,
here-documents, comments), `shellexpansions` the `$…` forms and backquotes, `shellcommands`
knows which commands read their arguments again, and `shellframes` holds the shared data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from ..dataclass import replace
from ..lazy import compile_later
from .shellcommands import CODE_VARIABLES
from .shellexpansions import Expansions
from .shellframes import (
    AFTER_BACKSLASH,
    ANSI_C,
    BACKQUOTE_QUOTE,
    BACKQUOTED_PARAM,
    BACKQUOTED_RAW,
    COMMENT,
    DOUBLE,
    HEREDOC,
    HOLE,
    PARAM,
    PARAM_AFTER_NAME,
    PARAM_DOUBLE,
    PARAM_NAME,
    SINGLE,
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
from .shellsimple import simple_contexts

__all__ = ["DOUBLE", "PARAM", "PARAM_DOUBLE", "SINGLE", "UNSAFE", "WORD", "BACKQUOTE_QUOTE",
           "BACKQUOTED_PARAM", "BACKQUOTED_RAW", "Context", "contexts_of", "shell_contexts",
           "unsafe"]


@lru_cache(maxsize=1024)
def shell_contexts(template: tuple[str | None, ...]) -> tuple[Context, ...]:
    """The context of each hole (`None`) in a template of text pieces and holes."""
    # A NUL never reaches a shell (a file holding one is refused, a value holding one fails
    # its step): here it marks the holes.
    text = "".join(HOLE if piece is None else piece.replace(HOLE, " ") for piece in template)
    simple = simple_contexts(text)
    if simple is not None:
        return tuple(simple)
    return lexed_contexts(text)


def lexed_contexts(text: str) -> tuple[Context, ...]:
    """The context of each hole (HOLE) of a text, read by the shell lexer."""
    holes = text.count(HOLE)
    found = ShellLexer(text, range(holes)).run()
    return tuple(found[hole] for hole in range(holes))


def contexts_of(template: Sequence[str | None]) -> tuple[Context, ...]:
    """`shell_contexts` for any sequence (lists are not hashable, tuples are cached)."""
    return shell_contexts(tuple(template))


# ---------------------------------------------------------------------- the lexer


def _holes_in(text: str) -> list[int]:
    """The offsets of the holes in a text, in order."""
    found = []
    at = text.find(HOLE)
    while at != -1:
        found.append(at)
        at = text.find(HOLE, at + 1)
    return found


# Quotes, expansions and substitutions nested deeper than this are not followed.
MAX_NESTING = 64
# Runs of characters that change nothing where they are: read at once.
_DOUBLE_RUN = compile_later(r'[^"\\$`\0\n]+')
_SINGLE_RUN = compile_later(r"[^'\\\0\n]+")


class ShellLexer:
    """Reads text whose holes are HOLE characters, with a stack of frames.

    `numbers` gives each hole, in order, the number it has in the whole command (a lexer
    for the inside of backquotes reads part of it).
    """

    def __init__(self, text: str, numbers: Sequence[int], in_backquotes: bool = False,
                 depth: int = 0) -> None:
        self.text = text
        self.number_at = dict(zip(_holes_in(text), numbers, strict=True))
        self.in_backquotes = in_backquotes
        self.depth = depth  # the frames of the lexers around this one (backquotes)
        self.i = 0
        self.stack: list[Frame] = [PlainFrame()]
        self.contexts: dict[int, Context] = {}
        self.forced: dict[int, str] = {}  # holes made unsafe by the character before them
        self.after_name: int | None = None  # the hole right after `$NAME`
        self.lost: str | None = None
        self.plain = PlainText(self)
        self.expansions = Expansions(self)
        self.readers = {"plain": self.plain.read, "single": self.in_single,
                        "double": self.in_double, "param": self.expansions.in_param,
                        "arith": self.expansions.in_arith}

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

    def deciding(self) -> bool:
        """Whether text still to come can change a context found: the end of a `[[ … ]]`
        test holding a hole (an arithmetic operator there makes it unsafe)."""
        return any(isinstance(frame, PlainFrame) and frame.cmd.dbracket_holes
                   for frame in self.stack)

    def lose(self, reason: str) -> None:
        """Stop following the text: every later hole is unsafe."""
        self.lost = self.lost or reason

    def run(self) -> dict[int, Context]:
        """Read the whole text; the context of each hole, by its number."""
        text, readers = self.text, self.readers
        last = max(self.number_at, default=-1)
        while self.i < len(text) and self.lost is None:
            if self.i > last and not self.deciding():
                break  # nothing after the last hole can change a context
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
                self.plain.finish_command(frame)
        return self.contexts

    # ------------------------------------------------------------------ holes

    def hole(self, hole: int, frame: Frame) -> None:
        """A hole: record its context; it reads as part of the word it is in."""
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
        """The context of a hole in `frame`, the innermost frame."""
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
        if self.read_raw():
            return settle(replace(base, no_backslash=True))
        return base

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
        """Why everything inside `frame` (or its current word) is unsafe, or None."""
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
        """The word of the innermost plain text: quotes and expansions are part of it."""
        for frame in reversed(self.stack):
            if isinstance(frame, PlainFrame):
                return frame.word
        return None

    def in_double_quotes(self) -> bool:
        """Whether the innermost frame reads text as within `"…"`."""
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

    # ------------------------------------------------------------------ quotes

    def in_single(self, frame: QuoteFrame, c: str) -> None:
        """Inside `'…'` (or `$'…'`): everything is literal up to the next `'`."""
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
        """Inside `"…"`: backslashes, `$` and backquotes keep their meaning."""
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

    def dollar(self) -> None:
        """`$` at the current position (see `Expansions.dollar`)."""
        self.expansions.dollar()

    def backquote(self) -> None:
        """A backquote at the current position (see `Expansions.backquote`)."""
        self.expansions.backquote()
