"""Which words of a simple command a shell reads again as code or as a variable name.

The shell lexer (`shellwords`) knows where an interpolation lands in the *text* of a
command. This module knows what some commands then do with their arguments: `eval` runs them
as shell code, `sh -c` runs its command string, `ssh` hands its remote command to another
shell, and bash evaluates `a[$(…)]` in anything it takes as a variable name (`unset`,
`read`, `declare NAME=…`, `[[ x -eq y ]]`). No quoting survives such a second reading, so
an interpolation there is refused (LANGUAGE.md §6.1).

A command is seen as the list of its finished words: the static text of each (after quote
removal), or None where a word holds an expansion or an interpolation.
"""

from __future__ import annotations

import re

Words = list[str | None]

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

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def basename(word: str | None) -> str | None:
    """The program name of a command word (`/usr/bin/ssh` -> `ssh`)."""
    return None if word is None else word.rsplit("/", 1)[-1]


def effective_name(words: Words) -> tuple[str | None, int]:
    """The command a simple command runs and the index of its first argument, looking
    through `command` and `builtin` (and their options)."""
    index = 0
    while index < len(words) and words[index] in BUILTIN_WRAPPERS:
        index += 1
        while index < len(words) and (words[index] or "").startswith("-"):
            index += 1
    if index >= len(words):
        return None, index
    return words[index], index + 1


def argument_reason(words: Words, word_text: str, assigns_to: str | None) -> str | None:
    """Why the word being read (after `words`) is read again as code or as a name, or None.

    `word_text` is the static text of the word so far; `assigns_to` the variable a
    `NAME=…` word sets, once its `=` has been read.
    """
    position = len(words)
    name, first = effective_name(words)
    if name is not None and position >= first:
        arguments = words[first:]
        if name in RUNS_ARGUMENTS:
            return f"in an argument of `{name}`, which {RUNS_ARGUMENTS[name]}"
        if name in TAKES_NAMES:
            return (f"in an argument of `{name}`, which names variables (bash runs the "
                    "subscript of a name like `a[$(…)]`)")
        if name in DECLARES:
            return _declaration(name, arguments, assigns_to)
        if name == "printf" and arguments == ["-v"]:
            return "in the variable name of `printf -v`"
        if name in ("test", "[") and arguments[-1:] == ["-v"]:
            return f"in the variable name of `{name} -v`"
    return _shell_command_string(words) or _ssh_remote_command(words) or _su_command(words)


def _declaration(name: str, arguments: Words, assigns_to: str | None) -> str | None:
    options = {letter for word in arguments if word and word[:1] in "-+" for letter in word[1:]}
    if options & DECLARE_CODE_OPTIONS:
        return (f"in an argument of `{name}` with `-{''.join(sorted(options))}`, which bash "
                "evaluates as arithmetic or as a variable name")
    if assigns_to is None:
        return f"in the variable name of `{name}`"
    if assigns_to in CODE_VARIABLES:
        return f"in `{assigns_to}`, which the shell expands as code"
    return None


def _shell_command_string(words: Words) -> str | None:
    """`sh -c SCRIPT`, also behind wrappers (`sudo bash -ec …`, `kubectl exec … sh -c …`)."""
    for start, word in enumerate(words):
        shell = basename(word)
        if shell not in SHELLS:
            continue
        index, has_c = start + 1, False
        while index < len(words):
            option = words[index]
            if option is None or option == "--" or option[:1] not in "-+" or len(option) < 2:
                if option == "--":
                    index += 1
                break
            if option[0] == "-" and not option.startswith("--") and "c" in option[1:]:
                has_c = True
            if option[-1] in "oO" and not option.startswith("--"):
                index += 1  # `-o pipefail`: the option's argument
            index += 1
        if has_c and index == len(words):
            return f"in the command string of `{shell} -c`, which runs it as shell code"
    return None


def _ssh_remote_command(words: Words) -> str | None:
    for start, word in enumerate(words):
        if basename(word) != "ssh":
            continue
        index = start + 1
        while index < len(words):
            option = words[index]
            if option is None or not option.startswith("-") or len(option) < 2:
                break
            index += 1
            if option == "--":
                break
            for at, letter in enumerate(option[1:], start=1):
                if letter in SSH_OPTIONS_WITH_ARGUMENT:
                    if at == len(option) - 1:
                        index += 1  # `-p 22`: the next word is the argument
                    break
        if index < len(words):  # words[index] is the destination; the rest is the command
            return ("in the remote command of `ssh`, which a shell on the other host reads "
                    "again")
    return None


def _su_command(words: Words) -> str | None:
    if words[-1:] in (["-c"], ["--command"]) and any(basename(w) == "su" for w in words[:-1]):
        return "in the command of `su -c`, which runs it as shell code"
    return None
