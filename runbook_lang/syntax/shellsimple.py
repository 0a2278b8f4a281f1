"""The contexts of a command made of plain words only, without the shell lexer's machinery.

Most `run` commands are plain words and a few operators: `systemctl restart {{ service }}`,
`kubectl -n {{ ns }} rollout status deploy/{{ app }} && echo done`. For such text the shell
lexer (`shellwords`) keeps one frame, never meets a quote, an expansion, a redirection or a
comment, and every hole lands in a word whose role is `command` or `arg`. This module reads
that text word by word and gives each hole the context the lexer gives it; anything else
(a quote, `$`, a backslash, a bracket, `<`, `>`, `#`, `~`, a word the lexer treats as a
keyword…) is left to the lexer: `simple_contexts` returns None.

What the lexer decides from the words themselves, whether a command reads its arguments
again (`eval`, `sh -c`, `ssh`, `declare`…), is decided here by the same `CommandWords`.
tests/test_quoting.py checks that both readings agree on generated commands.
"""

from __future__ import annotations

import re

from .shellcommands import CODE_VARIABLES, IDENTIFIER, PREFIX_KEYWORDS, CommandWords
from .shellframes import HOLE, WORD, Context, unsafe

# The text this reading covers: word characters, `=`, blanks, holes, and the operators that
# end a simple command (`;`, `&`, `&&`, `|`, `||`, `|&`, a line break).
_PLAIN = re.compile(r"[A-Za-z0-9_.,/:@%+=\- \t\n;&|" + HOLE + r"]*")
_COMMANDS = re.compile(r"[;&|\n]+")
_BLANKS = re.compile(r"[ \t]+")
# Words with a meaning of their own to the lexer (compound commands, `case`, `function`,
# `for … do`, `[[ … ]]`): a command holding one of them as a word is left to the lexer.
_KEYWORDS = PREFIX_KEYWORDS | {"case", "in", "esac", "function", "for", "select", "do",
                                "done", "[[", "]]"}
# The contexts of a hole in a plain word (immutable, so shared).
_BARE = Context(WORD)
_NOT_BARE = Context(WORD, bare=False)


def simple_contexts(text: str) -> list[Context] | None:
    """The context of each hole (HOLE) of a command of plain words, in order; None when the
    text holds anything else, for the shell lexer to read."""
    if _PLAIN.fullmatch(text) is None:
        return None
    found: list[Context] = []
    holes = text.count(HOLE)
    for command in _COMMANDS.split(text):
        words = CommandWords()
        for word in _BLANKS.split(command):
            if not word:
                continue
            if HOLE not in word:
                if word in _KEYWORDS:
                    return None
                # A command word `NAME=value` is an assignment: the command is still to come.
                if words.words or _assigns_to(word) is None:
                    words.add(word)
                continue
            role_is_command = not words.words
            # Only an `=` before the first hole can make the word an assignment.
            assigns_to = _assigns_to(word[:word.index(HOLE)])
            if role_is_command and assigns_to is None:
                context = _NOT_BARE
            elif role_is_command:
                context = unsafe(f"in `{assigns_to}`, which the shell expands as code") \
                    if assigns_to in CODE_VARIABLES else _BARE
            else:
                reason = words.reason(assigns_to)
                context = unsafe(reason) if reason else _BARE
            found.extend([context] * word.count(HOLE))
            if len(found) == holes:
                return found  # nothing after the last hole changes a context here
            if not (role_is_command and assigns_to is not None):
                words.add(None)  # a word holding a value has no static text
    return found


def _assigns_to(text: str) -> str | None:
    """The variable a word starting with `text` assigns (`NAME=…`, `NAME+=…`), or None."""
    name, equals, _ = text.partition("=")
    if not equals:
        return None
    name = name.removesuffix("+")
    return name if IDENTIFIER.match(name) else None
