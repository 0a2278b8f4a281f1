"""The regular expressions of runbooks (`pattern`, `matches`), matched by RE2.

RE2 matches in time linear in the text, whatever the pattern: `^(a+)+$` against a long run
of `a`s answers at once, where a backtracking engine (Python's `re`) would run for minutes
(LANGUAGE.md §6.7). The price is a few constructs RE2 refuses because they need
backtracking (backreferences, lookaround, possessive and atomic forms); each is reported
with what to write instead. RE2's `$` is the very end of the text, never before a final
newline as Python's is (a `pattern "…$"` rejects `1.0.0\\n`).
"""

from __future__ import annotations

import re
from functools import lru_cache

# What RE2 says (after "invalid perl operator: ", "invalid escape sequence: " …) about a
# construct Python accepts, and what to tell the author (patterns compiled when an error
# needs them: most runs never do).
_UNSUPPORTED = (
    (r"\(\?<?[=!]", "lookaround (`(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)`)"),
    (r"\(\?P=|\\[1-9]|\\g", "backreferences (`\\1`, `(?P=name)`)"),
    (r"\(\?>", "atomic groups (`(?>…)`)"),
    (r"\(\?\(|\(\?#|\(\?[a-z]*x", "conditionals, comments and verbose mode"),
    (r"(\+\+|\*\+|\?\+|\}\+)", "possessive quantifiers (`a++`, `a*+`)"),
)
UNSUPPORTED_HINT = ("runbook matches regular expressions with RE2, in time linear in the "
                    "text: backreferences, lookaround and possessive or atomic forms are "
                    "not supported")


class PatternError(ValueError):
    """A pattern RE2 cannot compile: `message` says why, `hint` what to do (may be "")."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def general(self) -> str:
        """The reason without the piece of the pattern RE2 quotes after `: `, and with no
        braces (it becomes the text of an EvalError)."""
        return self.message.partition(": ")[0].replace("{", "(").replace("}", ")")


@lru_cache(maxsize=256)
def compile_pattern(pattern: str):
    """The compiled RE2 pattern, or PatternError with a message for the author."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line on stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as error:
        raise _explain(pattern, error) from None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches anywhere in `text` (PatternError for a bad pattern)."""
    compiled = compile_pattern(pattern)
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:
        # Text from the environment may hold lone surrogates (bytes that were not UTF-8):
        # they are matched as the bytes they stand for, never refused.
        return compiled.search(text.encode("utf-8", "surrogatepass")) is not None


def _explain(pattern: str, error: Exception) -> PatternError:
    raw = error.args[0] if error.args else ""
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for construct, what in _UNSUPPORTED:
        if re.search(construct, pattern) and _python_accepts(pattern):
            return PatternError(f"{what} are not supported", UNSUPPORTED_HINT)
    if "\\Z" in pattern and _python_accepts(pattern):
        return PatternError("`\\Z` is not supported", "write `\\z`, or `$`: both mean the very "
                            "end of the text")
    if "invalid repetition size" in reason:
        return PatternError(reason, "RE2 repeats at most 1000 times, and nested counts multiply")
    if "pattern too large" in reason:
        return PatternError("the pattern is too large to compile",
                            "simplify it: large counted repetitions (`{1000}`) multiply")
    return PatternError(reason or "not a valid regular expression")


def _python_accepts(pattern: str) -> bool:
    """Whether Python's `re` would compile the pattern (so RE2's refusal needs explaining)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
