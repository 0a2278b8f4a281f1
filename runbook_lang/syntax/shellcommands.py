"""Which words of a simple command a shell reads again as code or as a variable name.

The shell lexer (`shellwords`) knows where an interpolation lands in the *text* of a
command. This module knows what some commands then do with their arguments: `eval` runs them
as shell code, `sh -c` runs its command string, `ssh` hands its remote command to another
shell, and bash evaluates `a[$(…)]` in anything it takes as a variable name (`unset`,
`read`, `declare NAME=…`, `[[ x -eq y ]]`). No quoting survives such a second reading, so
an interpolation there is refused (LANGUAGE.md §6.1).

A command is read one finished word at a time (`CommandWords`): the static text of each
(after quote removal), or None where a word holds an expansion or an interpolation.
"""

from __future__ import annotations

from ..lazy import compile_later

# Builtins that run their arguments as code (`let`: as arithmetic, which runs `a[$(…)]`).
RUNS_ARGUMENTS = {
    "eval": "runs it as shell code",
    "trap": "runs it as shell code when the signal comes",
    "alias": "runs it as shell code wherever the alias is used",
    "let": "evaluates it as arithmetic, which can run commands",
}
# Builtins whose arguments name variables; bash runs the subscript of `a[$(…)]` in a name.
TAKES_NAMES = frozenset({"unset", "read", "mapfile", "readarray", "getopts"})
# Declaration builtins: `NAME=value` arguments; the value part is an ordinary word.
DECLARES = frozenset({"declare", "typeset", "local", "export", "readonly"})
# Options of DECLARES that make the value arithmetic (-i), a name (-n) or an array (-a -A).
DECLARE_CODE_OPTIONS = frozenset("inaA")
# Variables whose value the shell itself expands or runs later as code.
CODE_VARIABLES = frozenset({"PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "ENV", "BASH_ENV"})
# Words that leave the next word in command position (`if eval …`, `time eval …`).
PREFIX_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{",
                             "}", "time", "fi", "done", "esac"})
# Wrappers that run a builtin given as their first operand (`command eval …`).
BUILTIN_WRAPPERS = frozenset({"command", "builtin"})
SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "ksh93", "mksh", "zsh", "yash",
                    "posh", "rbash"})
# ssh options that take an argument (OpenSSH ssh(1)).
SSH_OPTIONS_WITH_ARGUMENT = frozenset("BbcDEeFIiJLlmOoPpQRSWw")
# Operators of `[[ … ]]` that make bash evaluate the operands as arithmetic or as names.
DBRACKET_CODE_OPERATORS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v", "-R"})

IDENTIFIER = compile_later(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def basename(word: str | None) -> str | None:
    """The program name of a command word (`/usr/bin/ssh` -> `ssh`)."""
    return None if word is None else word.rsplit("/", 1)[-1]


class CommandWords:
    """The finished words of one simple command, read one at a time, and what the word being
    read next is for. Each word costs the same whatever the length of the command."""

    def __init__(self) -> None:
        self.words: list[str | None] = []
        self.name: str | None = None  # the command run, looking through `command`/`builtin`
        self.named = False
        self.first = 0  # the index of its first argument
        self.declare_options: set[str] = set()
        self.su = False
        # `sh … -c SCRIPT`: reading the options (or, after `--`, expecting the operand).
        self.shell: str | None = None
        self.shell_state = ""  # "", "options", "operand"
        self.shell_has_c = self.shell_skip = False
        # `ssh [options] DESTINATION COMMAND…`
        self.ssh_state = ""  # "", "options", "destination", "remote"
        self.ssh_skip = False

    def add(self, word: str | None) -> None:
        """A finished word: its static text, or None where it holds an expansion."""
        self.words.append(word)
        program = basename(word)
        if not self.named:
            self._name(word)
        if self.shell_state or program in SHELLS:
            self._shell(word, program)
        if self.ssh_state or program == "ssh":
            self._ssh(word, program)
        self.su = self.su or program == "su"
        if self.name in DECLARES and self.named and len(self.words) > self.first \
                and word and word[:1] in "-+":
            self.declare_options |= set(word[1:])

    def _name(self, word: str | None) -> None:
        # `command -p eval …`, `time -p eval …` (the keyword `time` is not a word here):
        # the name is still to come.
        if word in BUILTIN_WRAPPERS or word == "-p" or \
                (self.words[:-1] and (word or "").startswith("-")):
            return
        self.name, self.named, self.first = word, True, len(self.words)

    def _shell(self, word: str | None, program: str | None) -> None:
        if self.shell_state == "options":
            if self.shell_skip:
                self.shell_skip = False
            elif word == "--":
                self.shell_state = "operand"
            elif word is None or word[:1] not in "-+" or len(word) < 2:
                self.shell_state = ""  # this word was the script (or a script file)
            else:
                if word[0] == "-" and not word.startswith("--") and "c" in word[1:]:
                    self.shell_has_c = True
                self.shell_skip = word[-1] in "oO" and not word.startswith("--")
            return
        if self.shell_state == "operand":
            self.shell_state = ""
            return
        if program in SHELLS:
            self.shell, self.shell_state = program, "options"
            self.shell_has_c = self.shell_skip = False

    def _ssh(self, word: str | None, program: str | None) -> None:
        if self.ssh_state == "options":
            if self.ssh_skip:
                self.ssh_skip = False
            elif word == "--":
                self.ssh_state = "destination"
            elif word is None or not word.startswith("-") or len(word) < 2:
                self.ssh_state = "remote"
            else:
                for at, letter in enumerate(word[1:], start=1):
                    if letter in SSH_OPTIONS_WITH_ARGUMENT:
                        self.ssh_skip = at == len(word) - 1  # `-p 22`: the next word
                        break
        elif self.ssh_state == "destination":
            self.ssh_state = "remote"
        elif program == "ssh":
            self.ssh_state, self.ssh_skip = "options", False

    def reason(self, assigns_to: str | None) -> str | None:
        """Why the word being read (after the finished ones) is read again as code or as a
        name, or None. `assigns_to` is the variable a `NAME=…` word sets, once its `=` has
        been read."""
        if self.named and len(self.words) >= self.first and self.name is not None:
            found = self._builtin(self.name, assigns_to)
            if found:
                return found
        if self.shell_has_c and (self.shell_state == "operand" or
                                 (self.shell_state == "options" and not self.shell_skip)):
            return f"in the command string of `{self.shell} -c`, which runs it as shell code"
        if self.ssh_state == "remote":
            return ("in the remote command of `ssh`, which a shell on the other host reads "
                    "again")
        if self.su and self.words[-1:] in (["-c"], ["--command"]):
            return "in the command of `su -c`, which runs it as shell code"
        return None

    def _builtin(self, name: str, assigns_to: str | None) -> str | None:
        arguments = len(self.words) - self.first
        if name in RUNS_ARGUMENTS:
            return f"in an argument of `{name}`, which {RUNS_ARGUMENTS[name]}"
        if name in TAKES_NAMES:
            return (f"in an argument of `{name}`, which names variables (bash runs the "
                    "subscript of a name like `a[$(…)]`)")
        if name in DECLARES:
            if self.declare_options & DECLARE_CODE_OPTIONS:
                return (f"in an argument of `{name}` with "
                        f"`-{''.join(sorted(self.declare_options))}`, which bash evaluates "
                        "as arithmetic or as a variable name")
            if assigns_to is None:
                return f"in the variable name of `{name}`"
            if assigns_to in CODE_VARIABLES:
                return f"in `{assigns_to}`, which the shell expands as code"
            return None
        if name == "printf" and arguments == 1 and self.words[-1] == "-v":
            return "in the variable name of `printf -v`"
        if name in ("test", "[") and arguments and self.words[-1] == "-v":
            return f"in the variable name of `{name} -v`"
        return None
