"""Plain shell text for the shell lexer: words and their role in the simple command,
operators and redirections, here-documents, comments, `case` patterns and `[[ … ]]`.

`PlainText` reads one character of a `PlainFrame` at a time for the `ShellLexer` (which
owns the position, the frame stack and the contexts found) and keeps the frame's word and
command up to date, so that the lexer knows what an interpolation's word is for.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..lazy import compile_later
from .shellcommands import DBRACKET_CODE_OPERATORS, IDENTIFIER, PREFIX_KEYWORDS
from .shellframes import (
    AFTER_BACKSLASH,
    ARRAY,
    BASH_ARITHMETIC,
    DBRACKET,
    DOUBLE,
    SINGLE,
    ArithFrame,
    Command,
    PlainFrame,
    QuoteFrame,
    Word,
    unsafe,
)

if TYPE_CHECKING:
    from .shellwords import ShellLexer

# Runs of characters read at once: the rest of a word, the rest of a line.
_WORD_RUN = compile_later(r"[^ \t\n;&|()<>\\'\"`$=\0]+")
_LINE_RUN = compile_later(r"[^\n\0]+")
_BLANKS = compile_later(r"[ \t]+")


class PlainText:
    """Reads plain shell text for a lexer."""

    def __init__(self, lexer: ShellLexer) -> None:
        self.lx = lexer

    def start_word(self, frame: PlainFrame) -> Word:
        """The word being read, started here if none is: its role comes from what precedes
        it (a redirection, a `case`, `function`, the command so far)."""
        if frame.word is None:
            state = frame.case[-1] if frame.case else None
            if frame.redirect:
                role, frame.redirect = frame.redirect, None
            elif state in ("subject", "in"):
                role = "subject" if state == "subject" else "case_in"
            elif state in ("pattern_start", "pattern"):
                role = "pattern"
            elif frame.fname:
                role, frame.fname = "fname", False
            else:
                role = "arg" if frame.cmd.words.words else "command"
            frame.word = Word(role)
        return frame.word

    def read(self, frame: PlainFrame, c: str) -> None:
        """Read the character `c` at the lexer's position (and maybe more after it)."""
        if frame.mode == "comment":
            if c == "\n":
                frame.mode = "normal"
            else:
                self.lx.skip(_LINE_RUN)
            return
        if frame.mode == "body":
            self.body_char(frame, c)
            return
        if c in " \t":
            self.finish_word(frame)
            self.lx.skip(_BLANKS)
        elif c == "\n":
            self.newline(frame)
        elif c == "#" and frame.word is None:
            frame.mode = "comment"
            self.lx.i += 1
        elif c in ";&|()<>":
            self.operator(frame, c)
        elif c == "\\":
            nxt = self.lx.peek()
            if isinstance(nxt, int):
                self.lx.forced[nxt] = AFTER_BACKSLASH
                self.start_word(frame)
                self.lx.i += 1
            elif nxt == "\n":
                self.lx.i += 2
            else:
                self.start_word(frame).add(nxt or "\\", quoted=True)
                self.lx.i += 2
        elif c in "'\"":
            self.start_word(frame).quoted = True
            self.lx.push(QuoteFrame(SINGLE if c == "'" else DOUBLE))
            self.lx.i += 1
        elif c == "`":
            self.start_word(frame)
            self.lx.backquote()
        elif c == "$":
            self.start_word(frame)
            self.lx.dollar()
        elif c == "=":
            word = self.start_word(frame)
            if not word.equals and not word.dynamic and not word.quoted:
                word.equals = True
                name = "".join(word.text).removesuffix("+")
                if IDENTIFIER.match(name):
                    word.assigns_to = name
                    if word.role == "command" and self.lx.peek() == "(":
                        word.add("=(")
                        word.dynamic = True
                        self.lx.push(PlainFrame(closer=")", taint=ARRAY))
                        self.lx.i += 2
                        return
            word.add(c)
            self.lx.i += 1
        else:
            self.start_word(frame).add(self.lx.skip(_WORD_RUN))

    def newline(self, frame: PlainFrame) -> None:
        """A line break: it ends the command, and here-document bodies start after it."""
        self.finish_word(frame)
        self.lx.i += 1
        if self.lx.heredoc_waiting(frame):
            self.lx.lose("a here-document whose command goes on over more lines")
        state = frame.case[-1] if frame.case else None
        if state not in ("subject", "in", "pattern_start", "pattern") \
                and not frame.cmd.dbracket:
            self.end_command(frame)
        if frame.heredocs:
            frame.mode = "body"
            frame.line, frame.line_hole = [], False

    def body_char(self, frame: PlainFrame, c: str) -> None:
        """Here-document bodies: lines until the one that is the delimiter."""
        if c != "\n":
            frame.line.append(self.lx.skip(_LINE_RUN))
            return
        self.lx.i += 1
        delimiter, strip, quoted = frame.heredocs[0]
        line = "".join(frame.line)
        if not quoted and (len(line) - len(line.rstrip("\\"))) % 2 == 1:
            frame.line = [line[:-1]]  # backslash-newline joins the lines of an unquoted body
            return
        if not frame.line_hole and (line.lstrip("\t") if strip else line) == delimiter:
            frame.heredocs.pop(0)
            if not frame.heredocs:
                frame.mode = "normal"
        frame.line, frame.line_hole = [], False

    def operator(self, frame: PlainFrame, c: str) -> None:
        """`;` `&` `|` `(` `)` and their doubles: the end of a command or of a `$(…)`."""
        nxt = self.lx.peek()
        cmd = frame.cmd
        if c in "<>":
            self.redirection(frame, c, nxt)
            return
        if c == "&" and nxt == ">" and not cmd.dbracket:  # bash `&>file`, `&>>file`
            self.finish_word(frame)
            self.lx.i += 3 if self.lx.peek(2) == ">" else 2
            frame.redirect = "redirect"
            return
        self.finish_word(frame)
        state = frame.case[-1] if frame.case else None
        if c == "(":
            self.lx.i += 1
            if cmd.dbracket or state == "pattern_start":
                return
            if nxt == "(" and cmd.words.words in ([], ["for"]):
                self.lx.i += 1
                self.lx.push(ArithFrame("))", BASH_ARITHMETIC))
                return
            frame.depth += 1
            self.end_command(frame)
        elif c == ")":
            self.lx.i += 1
            if cmd.dbracket:
                return
            if state in ("pattern_start", "pattern"):
                frame.case[-1] = "body"
                self.end_command(frame)
            elif frame.depth == 0 and frame.closer == ")":
                self.end_command(frame)
                if frame.heredocs or frame.mode == "body":
                    self.lx.lose("a here-document inside `$(…)` that never ends")
                self.lx.stack.pop()
            else:
                frame.depth = max(0, frame.depth - 1)
                self.end_command(frame)
        elif c == ";":
            self.lx.i += 1
            if nxt in (";", "&"):
                self.lx.i += 2 if nxt == ";" and self.lx.peek() == "&" else 1
                if frame.case:
                    frame.case[-1] = "pattern_start"
            self.end_command(frame)
        else:  # & && | || |&
            self.lx.i += 2 if nxt in (c, "&") else 1
            if cmd.dbracket or (c == "|" and nxt != "|" and state in ("pattern_start",
                                                                       "pattern")):
                return
            self.end_command(frame)

    def redirection(self, frame: PlainFrame, c: str, nxt) -> None:
        """`<` `>` and friends: the next word is a file, or a here-document delimiter."""
        if frame.cmd.dbracket:  # `<` and `>` compare strings in `[[ … ]]`
            self.finish_word(frame)
            self.lx.i += 1
            return
        word = frame.word
        if word is not None and word.static() is not None and not word.quoted \
                and "".join(word.text).isdigit():
            frame.word = None  # `2>file`: a file descriptor, not a word of the command
        else:
            self.finish_word(frame)
        if nxt == "(":  # bash process substitution `<(…)`: a word with a plain inside
            self.start_word(frame).dynamic = True
            self.lx.push(PlainFrame(closer=")"))
            self.lx.i += 2
            return
        if c == "<" and nxt == "<":
            if self.lx.peek(2) == "<":
                self.lx.lose("a here-string `<<<` (dash reads it as a here-document)")
                return
            strip = self.lx.peek(2) == "-"
            self.lx.i += 3 if strip else 2
            frame.redirect = "delim-" if strip else "delim"
            return
        pairs = {">": (">", "&", "|"), "<": ("&", ">")}[c]
        self.lx.i += 2 if nxt in pairs else 1
        frame.redirect = "redirect"

    def finish_word(self, frame: PlainFrame) -> None:
        """The word being read ends: it becomes part of the command, or changes the state
        (a keyword, a here-document delimiter, a `case` word)."""
        word, frame.word = frame.word, None
        if word is None:
            return
        text = word.static()
        keyword = text if not word.quoted else None
        cmd = frame.cmd
        if word.role == "redirect" or word.role == "fname":
            return
        if word.role in ("delim", "delim-"):
            if text is None:
                self.lx.lose("a here-document delimiter built from a value or an expansion")
            else:
                frame.heredocs.append((text, word.role == "delim-", word.quoted))
            return
        if word.role == "subject":
            frame.case[-1] = "in"
        elif word.role == "case_in":
            if keyword != "in":
                self.lx.lose("a `case` without `in`")
            frame.case[-1] = "pattern_start"
        elif word.role == "pattern":
            if keyword == "esac" and frame.case[-1] == "pattern_start":
                frame.case.pop()
                self.end_command(frame)
            else:
                frame.case[-1] = "pattern"
        elif word.role == "command":
            if word.assigns_to is not None:
                return  # `NAME=value cmd …`: the command word is still to come
            if keyword in PREFIX_KEYWORDS:
                if keyword == "esac" and frame.case:
                    frame.case.pop()
            elif keyword == "case":
                frame.case.append("subject")
            elif keyword == "function":
                frame.fname = True
            else:
                cmd.dbracket = keyword == "[["
                cmd.words.add(text)
        else:
            cmd.words.add(text)
            if cmd.dbracket and keyword == "]]":
                self.close_dbracket(cmd)
            elif cmd.dbracket and text in DBRACKET_CODE_OPERATORS:
                cmd.dbracket_code = True
            elif keyword == "do" and cmd.words.words[0] in ("for", "select"):
                self.end_command(frame)

    def close_dbracket(self, cmd: Command) -> None:
        """`]]`: if the test compared numbers or named a variable, its values are unsafe."""
        if cmd.dbracket_code:
            for hole in cmd.dbracket_holes:
                if self.lx.contexts[hole].safe:
                    self.lx.contexts[hole] = unsafe(DBRACKET)
        cmd.dbracket, cmd.dbracket_code, cmd.dbracket_holes = False, False, []

    def finish_command(self, frame: PlainFrame) -> None:
        """The simple command ends: its last word, and the end of a `[[ … ]]` it left open."""
        self.finish_word(frame)
        if frame.cmd.dbracket:
            self.close_dbracket(frame.cmd)

    def end_command(self, frame: PlainFrame) -> None:
        """The simple command ends: the next word is a command name again."""
        self.finish_command(frame)
        frame.cmd = Command()
        frame.redirect = None
