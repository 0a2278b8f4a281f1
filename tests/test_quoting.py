"""Shell quoting by context (LANGUAGE.md §6.1): the context the lexer finds for each
interpolation of a command, the form a value takes there, and the forms masking must know.

`@` marks an interpolation in the templates below. The property test
(`test_quoting_property.py`) runs generated commands under real shells; these cases pin the
lexer's reading of each construct and the exact text a user sees in a plan or transcript.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang.errors import EvalError
from runbook_lang.evaluation.quoting import quote_for, quoted_forms
from runbook_lang.syntax.shellsimple import simple_contexts
from runbook_lang.syntax.shellwords import (
    DOUBLE,
    PARAM,
    PARAM_DOUBLE,
    SINGLE,
    UNSAFE,
    WORD,
    Context,
    contexts_of,
    lexed_contexts,
)


def contexts(template: str) -> list[Context]:
    pieces: list[str | None] = []
    for index, text in enumerate(template.split("@")):
        if index:
            pieces.append(None)
        pieces.append(text)
    return list(contexts_of(pieces))


def kinds(template: str) -> list[str]:
    return [c.kind for c in contexts(template)]


def reasons(template: str) -> list[str]:
    return [c.reason for c in contexts(template)]


# ---------------------------------------------------------------------- safe contexts

SAFE = {
    "plain word": ("echo @ a@b", [WORD, WORD]),
    "double quotes": ('echo "@" "a @ b"', [DOUBLE, DOUBLE]),
    "single quotes": ("echo '@' 'it@'", [SINGLE, SINGLE]),
    "single quote inside double quotes": ("echo \"it's @\"", [DOUBLE]),
    "double quote inside single quotes": ("echo 'say \"@'", [SINGLE]),
    "command substitution": ("echo $(dirname @)", [WORD]),
    "command substitution in double quotes": ('mkdir -p "$(dirname @)"', [WORD]),
    "backquotes in double quotes": ('echo "`echo @`"', [WORD]),
    "quotes inside $(…) inside quotes": ('echo "$(echo "@" \'@\')"', [DOUBLE, SINGLE]),
    "default value": ('echo ${X:-@} "${X:-@}"', [PARAM, PARAM_DOUBLE]),
    "other parameter operators": ('echo ${X-@} ${X:+@} ${X=@} "${X?@}"',
                                  [PARAM, PARAM, PARAM, PARAM_DOUBLE]),
    "quotes inside a default value": ('echo ${X:-"@"} ${X:-\'@\'} "${X:-"@"}"',
                                      [DOUBLE, SINGLE, DOUBLE]),
    "after an apostrophe in a comment": ("# don't\necho @", [WORD]),
    "after a comment with a quote": ('echo a # say "hi\necho "@"', [DOUBLE]),
    "# inside a word": ("echo a#@ x#'@'", [WORD, SINGLE]),
    "after a here-document": ("cat <<EOF\nit's \"$(x)\"\nEOF\necho '@'", [SINGLE]),
    "after a tab-stripped here-document": ("cat <<-EOF\n\tit's\n\tEOF\necho @", [WORD]),
    "after two here-documents on one line": ("cat <<A <<'B'\n'\nA\n\"\nB\necho @", [WORD]),
    "after a backslash-newline in a body": ("cat <<E\na\\\nE\nE\necho @", [WORD]),
    "case pattern inside $(…)": ('echo "$(case x in a) echo @;; esac)" @', [WORD, WORD]),
    "case subject and pattern": ("case @ in @|b) echo @;; esac", [WORD, WORD, WORD]),
    "sh -c script arguments": ("sh -c 'echo \"$1\"' sh @", [WORD]),
    "ssh destination": ("ssh @ uptime", [WORD]),
    "assignment before eval": ("v=@ eval 'echo \"$v\"'", [WORD]),
    "export value": ("export NAME=@ B=\"@\"", [WORD, DOUBLE]),
    "string test in [[ ]]": ("[[ @ == a ]] && echo @", [WORD, WORD]),
    "redirection target": ("echo x > @ 2>&1", [WORD]),
    "parenthesis in quotes in $(…)": ('echo "$(echo \')\' @)"', [WORD]),
    "process substitution": ("diff <(ls @) <(ls)", [WORD]),
    "line continuation": ("echo a \\\n  @", [WORD]),
    "escaped quote": ("echo \\' @", [WORD]),
    "escaped dollar in double quotes": ('echo "\\$(x) @"', [DOUBLE]),
}


@pytest.mark.parametrize(("template", "expected"), SAFE.values(), ids=SAFE.keys())
def test_safe_contexts(template: str, expected: list[str]) -> None:
    assert kinds(template) == expected


def test_backquotes_count_their_levels() -> None:
    found = contexts('echo `echo @ \\`echo @\\``; echo "`echo @`" @')
    assert [c.layers for c in found] == [(False,), (False, False), (True,), ()]


def test_bash_reads_dollar_paren_in_backquotes_before_undoing_them() -> None:
    [plain, nested, quoted] = contexts('echo `echo @ "$(echo @ "@")"`')
    assert not plain.no_backslash
    assert nested.no_backslash and nested.layers == (False,)
    assert quoted.kind == DOUBLE and quoted.no_backslash


def test_backquotes_within_double_quotes_have_two_limits() -> None:
    [raw, escaped_raw] = contexts('echo "`echo $(echo @) \\"$(echo @)\\"`"')
    assert "parses once more" in raw.reason and "parses once more" in escaped_raw.reason
    [unescaped] = contexts('echo "`echo "@"`"')
    assert "unescaped" in unescaped.reason
    [escaped] = contexts('echo "`echo \\"@\\"`"')
    assert escaped.kind == DOUBLE and escaped.layers == (True,)


def test_a_bare_word_is_quoted_where_it_could_be_read_otherwise() -> None:
    command, argument, after_name, tilde = contexts("@ x @; echo $HOME@ ~@")
    assert not command.bare  # a keyword, an assignment
    assert argument.bare
    assert not after_name.bare  # $HOMEvalue
    assert not tilde.bare  # ~user
    [double] = contexts('echo "$HOME@"')
    assert double.after_name


# ---------------------------------------------------------------------- unsafe contexts

UNSAFE_CASES = {
    "here-document": ("cat <<EOF\n@\nEOF", "here-document"),
    "quoted here-document": ("cat <<'EOF'\nit's @\nEOF", "here-document"),
    "here-document delimiter": ("cat <<@\nx\n", "delimiter"),
    "comment": ("echo a # @", "comment"),
    "comment after don't": ("echo a # don't @", "comment"),
    "arithmetic": ("echo $((1 + @))", "arithmetic"),
    "arithmetic in double quotes": ('echo "$((@))"', "arithmetic"),
    "bash arithmetic command": ("(( n = @ ))", "arithmetic"),
    "C-style for": ("for ((i=0; i<@; i++)); do :; done", "arithmetic"),
    "$[…]": ("echo $[@]", "arithmetic"),
    "let": ("let n=@", "`let`"),
    "eval": ("eval echo @", "`eval`"),
    "eval in double quotes": ('eval "echo @"', "`eval`"),
    "eval of a substitution": ('eval "$(echo @)"', "`eval`"),
    "eval after a keyword": ("if eval @; then :; fi", "`eval`"),
    "eval after a redirection": ("2>/dev/null eval @", "`eval`"),
    "command eval": ("command eval @", "`eval`"),
    "eval in a function": ("f() { eval @; }", "`eval`"),
    "eval in backquotes": ("echo `eval @`", "`eval`"),
    "eval after do": ("for x in a; do eval @; done", "`eval`"),
    "trap": ("trap @ EXIT", "`trap`"),
    "alias": ("alias ll=@", "`alias`"),
    "sh -c": ("sh -c @", "`sh -c`"),
    "bash -ec in double quotes": ('bash -ec "echo @"', "`bash -c`"),
    "sudo sh -c": ("sudo -u app sh -c \"rm -rf @\"", "`sh -c`"),
    "su -c": ("su - app -c @", "`su -c`"),
    "ssh remote command": ("ssh -p 22 host ls @", "`ssh`"),
    "export name": ("export @=1", "variable name"),
    "declare -i": ("declare -i n=@", "`declare`"),
    "local name": ("local @", "variable name"),
    "unset": ("unset @", "`unset`"),
    "read": ("read -r @", "`read`"),
    "printf -v": ("printf -v @ x", "`printf -v`"),
    "test -v": ("[ -v @ ]", "`[ -v`"),
    "[[ -eq ]]": ("[[ @ -eq 1 ]]", "`[[ … ]]`"),
    "[[ -eq ]] operand in $(…)": ('[[ "$(echo @)" -gt 1 ]]', "`[[ … ]]`"),
    "array subscript": ("a[@]=1", "subscript"),
    "subscript in an expansion": ("echo ${a[@]}", "subscript"),
    "array assignment": ("a=(@)", "array"),
    "PS4": ("PS4=@ sh -x", "`PS4`"),
    "pattern": ('echo "${X#@}" ', "pattern"),
    "suffix pattern": ("echo ${X%%@}", "pattern"),
    "bash-only expansion": ("echo ${X/a/@}", "bash-only"),
    "parameter name": ("echo ${@}", "name of a parameter"),
    "after a backslash": ("echo \\@", "backslash"),
    "after a backslash in double quotes": ('echo "\\@"', "backslash"),
    "after a dollar": ("echo $@", "`$`"),
    "ANSI-C quotes": ("echo $'@'", "$'…'"),
    "locale quotes": ('echo $"@"', "$\"…\""),
    "single quote in \"${…}\"": ("echo \"${X:-'}'\" @", "`'`"),
    "after $NAME in \"${…}\"": ('echo "${X:-$HOME@}"', "$NAME"),
    "here-string": ("cat <<< @", "here-string"),
    "after a here-string": ("cat <<< x; echo @", "here-string"),
    "default inside $(…) inside backquotes": ('echo `echo "$(echo "${X:-@}")"`', "backquotes"),
}


@pytest.mark.parametrize(("template", "why"), UNSAFE_CASES.values(), ids=UNSAFE_CASES.keys())
def test_unsafe_contexts(template: str, why: str) -> None:
    [context] = contexts(template)
    assert context.kind == UNSAFE
    assert why in context.reason


def test_an_unsafe_place_does_not_spoil_the_next_line() -> None:
    assert kinds("cat <<EOF\n@\nEOF\necho @ # @\necho '@'") == [UNSAFE, WORD, UNSAFE, SINGLE]


def test_a_static_template_has_no_contexts() -> None:
    assert contexts("echo hello") == []


# ---------------------------------------------------------------------- plain words

# Commands of plain words are read word by word (`shellsimple`), the rest by the lexer: both
# readings must give every interpolation the same context.
PLAIN_WORDS = ["echo", "deploy/x", "-n", "22", "user@host", "eval", "command", "-p", "trap",
               "sh", "/bin/bash", "ksh93", "-c", "-xc", "-o", "--", "su", "--command", "ssh",
               "printf", "-v", "test", "declare", "export", "-i", "+x", "read", "X=1", "X+=",
               "PS1=", "ENV=a", "1=x"]
# Words with a meaning of their own to the lexer: such a command goes to the lexer.
KEYWORDS = ["if", "then", "time", "do", "done", "for", "in", "case", "esac", "function",
            "while"]
PLAIN_GLUE = [" ", "  ", "\t", ";", " && ", " || ", " | ", "|&", "&", "\n", ";;"]
PLAIN_PARTS = st.lists(st.tuples(
    st.one_of(st.sampled_from(PLAIN_WORDS), st.just("\0"),
              st.sampled_from(PLAIN_WORDS).map(lambda w: w + "\0"),
              st.sampled_from(PLAIN_WORDS).map(lambda w: "\0" + w)),
    st.sampled_from(PLAIN_GLUE)), min_size=1, max_size=8)


def plain_command(parts: list[tuple[str, str]]) -> str:
    return "".join(word + glue for word, glue in parts)


@settings(max_examples=1000)
@given(PLAIN_PARTS)
def test_plain_words_are_read_as_the_lexer_reads_them(parts: list[tuple[str, str]]) -> None:
    text = plain_command(parts)
    fast = simple_contexts(text)
    assert fast is not None
    assert tuple(fast) == lexed_contexts(text)


@given(PLAIN_PARTS, st.sampled_from(KEYWORDS), st.integers(min_value=0))
def test_a_keyword_sends_plain_words_to_the_lexer(parts: list[tuple[str, str]], keyword: str,
                                                  where: int) -> None:
    parts.insert(where % (len(parts) + 1), (keyword, " "))
    text = plain_command([*parts, ("\0", "")])
    assert simple_contexts(text) is None


def test_plain_words_take_the_short_reading() -> None:
    text = "kubectl -n @ rollout status deploy/@ && PS1=@ sh -c @; X=1 eval @".replace("@", "\0")
    assert simple_contexts(text) == [Context(WORD), Context(WORD), *lexed_contexts(text)[2:]]
    assert [c.reason for c in lexed_contexts(text)[2:]] == [
        "in `PS1`, which the shell expands as code",
        "in the command string of `sh -c`, which runs it as shell code",
        "in an argument of `eval`, which runs it as shell code"]


@pytest.mark.parametrize("text", ["echo '@'", 'echo "@"', "echo $X@", "echo \\@", "echo ~@",
                                  "echo a # @", "cat <<E\n@\nE", "echo @ > f", "a[@]=1",
                                  "(echo @)", "{ echo @; }", "! echo @", "echo *@",
                                  "if true; then echo @; fi"])
def test_anything_but_plain_words_goes_to_the_lexer(text: str) -> None:
    assert simple_contexts(text.replace("@", "\0")) is None


# ---------------------------------------------------------------------- quoting

VALUE = "it's $HOME"
FORMS = {
    "plain word": (Context(WORD), VALUE, "'it'\"'\"'s $HOME'"),
    "bare value": (Context(WORD), "plain-1.2_x:y/z", "plain-1.2_x:y/z"),
    "plain word, never bare": (Context(WORD, bare=False), "plain", "'plain'"),
    "empty": (Context(WORD), "", "''"),
    "single quotes": (Context(SINGLE), VALUE, "it'\"'\"'s $HOME"),
    "double quotes": (Context(DOUBLE), VALUE, "it's \\$HOME"),
    "double quotes after $NAME": (Context(DOUBLE, after_name=True), VALUE, "\"\"it's \\$HOME"),
    "double quotes read raw": (Context(DOUBLE, no_backslash=True), VALUE,
                               "\"'it'\"'\"'s $HOME'\""),
    "default value": (Context(PARAM), VALUE, "'it'\"'\"'s $HOME'"),
    "default value in double quotes": (Context(PARAM_DOUBLE), VALUE, "\"it's \\$HOME\""),
    "process substitution look-alike in \"${X:-…}\"": (Context(PARAM_DOUBLE), "<(x)>",
                                                      '"<""(x)>"""'),
    # a`b\$c: a\`b\\\$c in double quotes, then each \ ` $ escaped once more.
    "double quotes in backquotes": (Context(DOUBLE, layers=(False,)), "a`b\\$c",
                                    "a\\\\\\`b\\\\\\\\\\\\\\$c"),
    "double quotes in backquotes within double quotes": (Context(DOUBLE, layers=(True,)),
                                                          'a"b', 'a\\\\\\"b'),
    "process substitution look-alike in backquotes": (Context(DOUBLE, layers=(False,)), "{>(",
                                                      '{>""('),
    "word in two levels of backquotes": (Context(WORD, layers=(False, False)), "`",
                                         "'\\\\\\`'"),
}


@pytest.mark.parametrize(("context", "value", "expected"), FORMS.values(), ids=FORMS.keys())
def test_the_form_of_a_value_in_each_context(context: Context, value: str,
                                             expected: str) -> None:
    assert quote_for(context, value) == expected


def test_the_documented_table_holds() -> None:
    """docs/language.md shows these forms for `it's $HOME`."""
    assert quote_for(contexts("ls @")[0], VALUE) == "'it'\"'\"'s $HOME'"
    assert quote_for(contexts('"dir: @"')[0], VALUE) == "it's \\$HOME"
    assert quote_for(contexts("'@'")[0], VALUE) == "it'\"'\"'s $HOME"


def test_a_nul_byte_is_refused() -> None:
    with pytest.raises(EvalError, match="NUL byte"):
        quote_for(Context(WORD), "a\0b")


def test_an_unsafe_context_is_refused_at_run_time_too() -> None:
    [context] = contexts("eval @")
    with pytest.raises(EvalError, match="`eval`"):
        quote_for(context, "x")


SAFE_CONTEXTS = [Context(kind, layers=layers, bare=bare, after_name=after, no_backslash=raw,
                         in_param=in_param)
                 for kind in (WORD, SINGLE, DOUBLE, PARAM, PARAM_DOUBLE)
                 for layers in ((), (False,), (True,), (False, True), (True, False, True))
                 for bare in (True, False)
                 for after in (False, True) for raw in (False, True)
                 for in_param in (False, True)
                 if not (raw and (kind == PARAM_DOUBLE or in_param))
                 and not (in_param and (kind != DOUBLE or after))]


@given(value=st.text(st.characters(blacklist_characters="\0"), min_size=1),
       context=st.sampled_from(SAFE_CONTEXTS))
def test_masking_knows_every_form_a_value_takes(value: str, context: Context) -> None:
    """Each quoted value contains one of the forms masking hides, whole."""
    quoted = quote_for(context, value)
    assert any(form in quoted and len(form) >= len(value) for form in quoted_forms(value))


# ---------------------------------------------------------------------- any text

SHELL_TOKENS = [*"ab $(){}[]`'\"\\#;&|<>-=!*?~\n\t:+%/^,@09", "EOF", "<<", "<<-", "case",
                " in ", "esac", "eval ", "sh -c ", "ssh ", "[[", "]]", "((", "$((", "${",
                "export ", "do ", "for "]
SHELL_TEXT = st.lists(st.sampled_from(SHELL_TOKENS), max_size=30).map("".join)


@given(st.lists(st.one_of(SHELL_TEXT, st.none()), max_size=8))
def test_any_text_gets_one_context_per_interpolation(template: list[str | None]) -> None:
    """The lexer never fails on a command's text, however broken the shell syntax."""
    found = contexts_of(template)
    assert len(found) == template.count(None)
    assert all(c.safe or c.reason for c in found)
