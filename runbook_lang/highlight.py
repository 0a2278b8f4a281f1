"""A Pygments lexer for runbooks: `pygmentize -l runbook FILE`, and every tool built on Pygments.

Pygments finds it through the `pygments.lexers` entry point; nothing else imports this
module, so a core install without Pygments never loads it (`pip install
'runbook-lang[highlight]'` brings Pygments).

Reserved words are always keywords. Contextual words (LANGUAGE.md §2) are keywords only
where they are followed by what the grammar puts after them, so `let every = 2` or
`approvers(header: abort)` read as names, as the parser reads them. Durations are
`Number.Duration`, interpolations `String.Interpol` with the expression lexed inside.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

__all__ = ["RunbookLexer"]

DECLARATIONS = ("runbook", "import", "param", "secret", "let", "task", "step", "check", "gate",
                "finally")
RESERVED = ("on_failure", "run", "http", "watch", "expect", "confirm", "note", "wait", "set",
            "fail", "if", "else", "for", "when", "timeout", "retry", "env", "dir",
            "description", "rollback")
OPERATOR_WORDS = ("and", "or", "not", "in", "contains", "matches")
BUILTINS = ("number", "int", "float", "str", "bool", "len", "lower", "upper", "trim", "json",
            "getenv", "raw", "to_json")
# Contextual words that begin an attribute line, and those that stand inside a header.
ATTRIBUTE_WORDS = ("approvers", "require", "message", "self_approval", "choices", "pattern",
                   "owner", "tags", "header", "body", "targets", "batch", "max_failures", "id",
                   "signers")
INNER_WORDS = ("as", "from", "every", "within", "tolerate", "backoff", "into", "on")
TYPES = ("string", "int", "float", "bool", "duration", "list")
METHODS = ("get", "post", "put", "patch", "delete", "head")
POLICIES = ("abort", "continue", "rollback")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# A contextual word is a keyword when a value follows it, not `=`, `(`, `.`, `:` or an operator.
VALUE_FOLLOWS = r"(?=[ \t]+(?:[A-Za-z0-9_\"\[\-]))"
DURATION = r"[0-9]+(?:ms|[dhms])(?:[0-9]+(?:ms|[dhms]))*(?![A-Za-z0-9_])"


class RunbookLexer(RegexLexer):
    """Lexer for the runbook language (`.runbook` files)."""

    name = "Runbook"
    aliases = ["runbook"]
    filenames = ["*.runbook"]
    mimetypes = ["text/x-runbook"]
    url = "https://pypi.org/project/runbook-lang/"

    tokens = {
        "root": [
            include("space"),
            # Definitions: the defined name gets its own token.
            (rf"(param|let|secret)(\s+)({IDENT})", bygroups(Keyword.Declaration, Whitespace,
                                                         Name.Variable)),
            (rf"(task)(\s+)({IDENT})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"(step|check|gate)(\s+)({IDENT})(?=\s*\")",
             bygroups(Keyword.Declaration, Whitespace, Name.Label)),
            (r"(on_failure)(\s+)(abort|continue|rollback)\b",
             bygroups(Keyword, Whitespace, Keyword.Constant)),
            (rf"(http)(\s+)({IDENT})", bygroups(Keyword, Whitespace, Keyword.Pseudo)),
            (rf"(:)(\s*)({'|'.join(TYPES)})\b(?=\s*(=|\{{|$|#))",
             bygroups(Punctuation, Whitespace, Keyword.Type)),
            (rf"(into|as|for)(\s+)({IDENT})(?=\s)",
             bygroups(Keyword, Whitespace, Name.Variable)),
            include("expression"),
        ],
        "space": [
            # Attribute words are keywords at the start of a line only (`body` is also the
            # probe's result), so a newline is its own token and `^` can match after it.
            (words(ATTRIBUTE_WORDS, prefix=r"^([ \t]*)(", suffix=r")\b" + VALUE_FOLLOWS),
             bygroups(Whitespace, Keyword)),
            (r"\n", Whitespace),
            (r"[ \t\r]+", Whitespace),
            (r"#[^\n]*", Comment.Single),
        ],
        "expression": [
            include("space"),
            (r'"""', String.Double, "long_string"),
            (r'"', String.Double, "string"),
            (words(DECLARATIONS, suffix=r"\b(?![(.=])"), Keyword.Declaration),
            (words(RESERVED, suffix=r"\b(?![(.])"), Keyword),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (words(INNER_WORDS, prefix=r"(?<![.\w])", suffix=r"\b" + VALUE_FOLLOWS), Keyword),
            (rf"({IDENT})(\.)({IDENT})(\s*)(\()",
             bygroups(Name.Namespace, Punctuation, Name.Function, Whitespace, Punctuation)),
            (words(BUILTINS, suffix=r"(?=\s*\()"), Name.Builtin),
            (rf"{IDENT}(?=\s*\()", Name.Function),
            (words(("run_id", "run_status", "failed_step"), suffix=r"\b"), Name.Builtin.Pseudo),
            (IDENT, Name),
            (DURATION, Number.Duration),
            (r"[0-9]+\.[0-9]+(?![A-Za-z0-9_.])", Number.Float),
            (r"[0-9]+(?![A-Za-z0-9_.])", Number.Integer),
            (r"==|!=|<=|>=|[<>+\-*/=]", Operator),
            (r"[{}()\[\],:.]", Punctuation),
        ],
        "string_common": [
            (r'\\["\\nt]', String.Escape),
            (r"\\\{\{", String.Escape),
            (r"\\", String.Double),
            (r"\{\{", String.Interpol, "interpolation"),
            (r"\$\{?" + IDENT + r"\}?", String.Double),
        ],
        "string": [
            (r'"', String.Double, "#pop"),
            # A one-line string left open: mark the line end, and read the next line afresh.
            (r"\n", Error, "#pop"),
            include("string_common"),
            (r'[^"\\{$\n]+', String.Double),
            (r"[{$]", String.Double),
        ],
        "long_string": [
            (r'"""', String.Double, "#pop"),
            include("string_common"),
            (r'[^"\\{$]+', String.Double),
            (r'["{$]', String.Double),
        ],
        "interpolation": [
            (r"\}\}", String.Interpol, "#pop"),
            # A string inside an interpolation escapes its quotes: `{{ getenv(\"HOME\") }}`.
            (r'\\"(?:[^"\\\n]|\\[^"])*\\"', String.Double),
            (r'"(?:[^"\\\n]|\\.)*"(?!")', String.Double),
            include("expression"),
        ],
    }
