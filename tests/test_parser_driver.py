"""The parser's LALR loop against Lark's own parser: the same trees, positions and errors.

`runbook_lang/syntax/lalr.py` runs the tables Lark compiles from the grammar with a loop of
its own. Lark's parser, configured as the project used it before (contextual lexer, positions,
placeholders, the bracket limit and contextual words as names), is the oracle here: for every
fixture, example and stdlib file, and for generated texts that are mostly broken, both must
give the same parse tree (tokens, rules, positions) or fail the same way (same token or
character, same expected terminals, same parser stack where messages read it).

The AST is then built from the reductions as they happen, or through a tree where the result
is defined by a tree's bottom-up walk; both ways must give the same AST and diagnostics.
"""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark
from lark import Token as LarkToken
from lark import Tree as LarkTree
from lark.exceptions import UnexpectedCharacters
from lark.exceptions import UnexpectedToken as LarkUnexpectedToken

from runbook_lang import resources
from runbook_lang.dataclass import asdict
from runbook_lang.errors import ParseFailure
from runbook_lang.syntax import lalr, parser, tables
from runbook_lang.syntax.lalr import (
    CLOSERS,
    MAX_NESTING,
    NAME_FOLLOWS,
    OPENERS,
    NestingTooDeep,
    Parse,
    Token,
    UnexpectedCharacter,
    UnexpectedToken,
)
from runbook_lang.syntax.nodes import to_data
from runbook_lang.syntax.parser import parse_source
from runbook_lang.syntax.source import Source
from runbook_lang.syntax.trees import Tree, tree_callbacks

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted({*ROOT.glob("tests/fixtures/**/*.runbook"), *ROOT.glob("examples/**/*.runbook"),
                *ROOT.glob("stdlib/*.runbook")})
TEXTS = [path.read_bytes().decode("utf-8", "replace") for path in FILES]

# ---------------------------------------------------------------------- the oracle


class _TooDeep(Exception):
    def __init__(self, token: LarkToken) -> None:
        super().__init__("too deep")
        self.token = token


class _Oracle:
    """Lark's LALR parser with the bracket limit and contextual words of the language."""

    always_accept = ()

    def __init__(self) -> None:
        self.text = ""
        self.brackets: list[LarkToken] = []
        callbacks = {name: self.opened for name in OPENERS}
        callbacks.update({name: self.closed for name in CLOSERS})
        self.lark = Lark(resources.grammar_text(), parser="lalr", lexer="contextual",
                         start=["start", "expr"], propagate_positions=True,
                         maybe_placeholders=True, lexer_callbacks=callbacks, postlex=self)

    def opened(self, token: LarkToken) -> LarkToken:
        self.brackets.append(token)
        if len(self.brackets) > MAX_NESTING:
            raise _TooDeep(token)
        return token

    def closed(self, token: LarkToken) -> LarkToken:
        if self.brackets and OPENERS[self.brackets[-1].type] == token.type:
            self.brackets.pop()
        return token

    def process(self, stream):
        contextual = lalr.grammar().contextual
        for token in stream:
            if token.type in contextual and NAME_FOLLOWS.match(self.text, token.end_pos):
                token = LarkToken.new_borrow_pos("NAME", token.value, token)
            yield token

    def outcome(self, text: str, start: str):
        self.text, self.brackets = text, []
        try:
            return ("tree", _lark_shape(self.lark.parse(text, start=start)))
        except _TooDeep as deep:
            return ("too deep", deep.token.start_pos)
        except UnexpectedCharacters as error:
            return ("character", error.pos_in_stream)
        except LarkUnexpectedToken as error:
            stack = error.interactive_parser.parser_state.value_stack
            return ("token", _lark_token(error.token), sorted(error.expected),
                    [_lark_token(v) if isinstance(v, LarkToken) else None for v in stack[-3:]],
                    len(stack),
                    len(stack) > 1 and isinstance(stack[-2], LarkTree)
                    and stack[-2].data == "comp_op",
                    [b.start_pos for b in self.brackets])


def _lark_token(token: LarkToken):
    if token.type == "$END":
        return ("$END",)
    return (token.type, str(token), token.start_pos, token.end_pos, token.line, token.column,
            token.end_line, token.end_column)


def _lark_shape(node):
    if isinstance(node, LarkToken):
        return _lark_token(node)
    if node is None:
        return None
    meta = None if node.meta.empty else (node.meta.line, node.meta.column, node.meta.end_line,
                                         node.meta.end_column, node.meta.start_pos,
                                         node.meta.end_pos)
    return (node.data, meta, [_lark_shape(child) for child in node.children])


def _token(token: Token):
    if token.type == "$END":
        return ("$END",)
    return (token.type, token.value, token.start_pos, token.end_pos, token.line, token.column,
            token.end_line, token.end_column)


def _shape(node):
    if isinstance(node, Token):
        return _token(node)
    if node is None:
        return None
    assert isinstance(node, Tree)
    meta = None
    if node.meta is not None:
        first, last = node.meta
        meta = (first.line, first.column, last.end_line, last.end_column, first.start_pos,
                last.end_pos)
    return (node.data, meta, [_shape(child) for child in node.children])


def _outcome(text: str, start: str):
    parse = Parse(text, start, tree_callbacks())
    try:
        return ("tree", _shape(parse.run()))
    except NestingTooDeep as deep:
        return ("too deep", deep.token.start_pos)
    except UnexpectedCharacter as error:
        return ("character", error.pos)
    except UnexpectedToken as error:
        accessing = lalr.grammar().accessing
        return ("token", _token(error.token), sorted(error.expected),
                [_token(v) if isinstance(v, Token) else None for v in error.values[-3:]],
                len(error.values),
                len(error.values) > 1 and not isinstance(error.values[-2], Token)
                and accessing[error.states[-2]] == "comp_op",
                [b.start_pos for b in parse.open_brackets])


@pytest.fixture(scope="module")
def oracle() -> _Oracle:
    return _Oracle()


# ---------------------------------------------------------------------- generated texts

WORDS = """runbook import param secret let task step check gate finally on_failure run http
watch expect confirm note wait set fail if else for when timeout retry env dir description
rollback in and or not contains matches true false as from file every within tolerate backoff
into abort continue approvers require message self_approval choices pattern owner tags header
body string int duration list get post x deploy a_b into_x notes""".split()
SIGNS = "{ } ( ) [ ] , : = == != < <= > >= + - * / . ! @ $ ` ~ ; ?".split()
ATOMS = ['"text"', '"a {{ x }} b"', '"{{ 1 + }}"', '"""\n  two {{ y }}\n  lines\n"""', "42",
         "3.5", "1h30m", "250ms", "10x", "1.5h", "2m3m", '""', '"open', '"""open', "# note\n",
         '"{{ upper(\\"}}\\") }}"', '"\\{{ x"', "-1", "0"]
SEPARATORS = ["", " ", " ", "\n", "\t", " # c\n"]

soups = st.lists(st.tuples(st.sampled_from(WORDS + SIGNS + ATOMS), st.sampled_from(SEPARATORS)),
                 max_size=30).map(lambda parts: "".join(a + b for a, b in parts))

STATEMENTS = ['run "echo {{x}}" into out', 'note "n"', "wait 5s", "set v = 1 + 2 * x",
              'if a < b { note "a" } else { fail "b" }', "for i in [1, 2] { note \"{{i}}\" }",
              'check "c" { run "x" expect exit_code == 0 within 1m every 5s }',
              'http get "http://h" { header "K" = "v" body json("{}") } into r',
              "lib.task(a: 1, b: [2])", 'message(text: "m")', "timeout 30s", "retry 2 every 1s",
              'env { A = "1" every = 2 }', "when not x in [1]", "on_failure rollback { wait 1s }"]
ITEMS = ['runbook "T" { owner "o" tags ["a"] }', "param p: int = 3 { choices [1, 3] }",
         'secret s from env "S"', "let x = (1 + 2) * -3", 'import "std/fs" as fs',
         "task t(a, b = 2) { STATEMENTS }", 'step s "S {{ x }}" { STATEMENTS }',
         'step l "L" for i in [1, 2] { STATEMENTS }', 'gate g "G" { require 1 approvers ["a"] }',
         "on_failure continue", "finally { STATEMENTS }"]


@st.composite
def runbooks(draw) -> str:
    """Mostly well-formed files, then a few tokens dropped, doubled or replaced."""
    items = []
    for template in draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=5)):
        body = " ".join(draw(st.lists(st.sampled_from(STATEMENTS), max_size=4)))
        items.append(template.replace("STATEMENTS", body))
    words = "\n".join(items).split(" ")
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, max(0, len(words) - 1)))
        change = draw(st.sampled_from(["drop", "double", "replace"]))
        if not words:
            break
        if change == "drop":
            del words[where]
        elif change == "double":
            words.insert(where, words[where])
        else:
            words[where] = draw(st.sampled_from(WORDS + SIGNS + ATOMS))
    return " ".join(words) + "\n"


# ---------------------------------------------------------------------- the same as Lark


@pytest.mark.parametrize("text", TEXTS, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_files_parse_as_lark_parses_them(oracle: _Oracle, text: str) -> None:
    assert _outcome(text, "start") == oracle.outcome(text, "start")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=soups, start=st.sampled_from(["start", "expr"]))
def test_generated_texts_parse_as_lark_parses_them(oracle: _Oracle, text: str, start: str
                                                   ) -> None:
    assert _outcome(text, start) == oracle.outcome(text, start)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=runbooks())
def test_generated_runbooks_parse_as_lark_parses_them(oracle: _Oracle, text: str) -> None:
    assert _outcome(text, "start") == oracle.outcome(text, "start")


def test_contextual_keywords_are_the_grammars_contextual_words() -> None:
    # LANGUAGE.md §2's contextual words that the grammar spells as keywords.
    assert lalr.grammar().contextual == set("""AS FROM FILE EVERY WITHIN TOLERATE BACKOFF INTO
        ABORT CONTINUE APPROVERS REQUIRE MESSAGE SELF_APPROVAL CHOICES PATTERN OWNER TAGS
        SIGNERS ID HEADER BODY TARGETS ON BATCH MAX_FAILURES""".split())


# ---------------------------------------------------------------------- AST: both ways


def _result(text: str, through_tree: bool):
    try:
        ast, diagnostics = parser._FileParse(Source("f.runbook", text), through_tree).run()
    except parser._Again:
        return "again"
    except ParseFailure as failure:
        return ("failed", [asdict(d) for d in failure.diagnostics])
    return ("parsed", to_data(ast), [asdict(d) for d in diagnostics])


def _same_both_ways(text: str) -> None:
    fast = _result(text, through_tree=False)
    if fast != "again":  # too deep, or several diagnostics: only the tree says which/in which order
        assert fast == _result(text, through_tree=True)


@pytest.mark.parametrize("text", TEXTS, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_files_build_the_same_ast_as_reductions_and_through_a_tree(text: str) -> None:
    _same_both_ways(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(runbooks(), soups))
def test_generated_texts_build_the_same_ast_both_ways(text: str) -> None:
    _same_both_ways(text)


# ---------------------------------------------------------------------- state per call


def test_parses_share_no_state_across_threads() -> None:
    texts = [t for t in TEXTS if "{{" in t][:12]
    alone = [_parsed(t) for t in texts]
    found: dict[int, list] = {}

    def work(index: int) -> None:
        found[index] = [_parsed(t) for t in texts * 3]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(found[i] == alone * 3 for i in range(4))


def _parsed(text: str):
    try:
        ast, diagnostics = parse_source(Source("f.runbook", text))
    except ParseFailure as failure:
        return [asdict(d) for d in failure.diagnostics]
    return to_data(ast), [asdict(d) for d in diagnostics]


def test_parsing_leaves_the_garbage_collector_alone() -> None:
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    for text in TEXTS[:40]:
        _parsed(text)
    assert (gc.isenabled(), gc.get_freeze_count()) == (enabled, frozen)


# ---------------------------------------------------------------------- the tables file


def test_the_tables_file_is_what_lark_compiles_from_the_grammar() -> None:
    written = json.loads(tables.tables_path().read_text(encoding="utf-8"))
    assert written == tables.compile_tables(resources.grammar_text()), \
        "grammars/runbook.tables.json is stale: run python -m runbook_lang.syntax.tables"
    assert tables.dumps(written) == tables.tables_path().read_text(encoding="utf-8")


def test_stale_tables_are_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    current = json.loads(tables.tables_path().read_text(encoding="utf-8"))
    stale = tmp_path / "runbook.tables.json"
    stale.write_text(json.dumps({**current, "grammar": "0" * 64, "states": []}))
    monkeypatch.setattr(tables, "tables_path", lambda: stale)
    assert tables.load() == current
