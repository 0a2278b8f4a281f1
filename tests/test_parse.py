"""Every construct of the language parses and checks clean: one fixture per construct.

The fixtures under `tests/fixtures/valid/` cover LANGUAGE.md sections 2-5; each one's AST is a
snapshot (compact JSON, spans left out). Focused tests below pin what a snapshot cannot show
at a glance: decoded string values, exact positions, duration lengths, which words are names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from frontend import FIXTURES, VALID, compact, ids, runbook, strip_spans
from hypothesis import given
from hypothesis import strategies as st

from runbook_lang.analysis.analyzer import RESERVED, analyse
from runbook_lang.syntax import nodes as n
from runbook_lang.syntax.lalr import Token
from runbook_lang.syntax.loader import Loader, resolve_import
from runbook_lang.syntax.nodes import from_data, to_data
from runbook_lang.syntax.parser import _FileParse
from runbook_lang.syntax.schema import json_schema
from runbook_lang.syntax.source import Source, Span

SECTION_1 = FIXTURES / "pending" / "spec_section1.runbook"

# LANGUAGE.md §2, word for word.
SPEC_RESERVED = """runbook import param secret let task step check gate finally on_failure run
  http watch expect confirm note wait set fail if else for when timeout retry env dir
  description rollback in and or not contains matches true false""".split()
SPEC_CONTEXTUAL = """as from file every within tolerate backoff into abort continue approvers
  require message self_approval choices pattern owner tags header body string int float bool
  duration list get post put patch delete head""".split()


def load(path: Path, shown: str | None = None):
    """Parse a file and its imports, shown by its name (so the AST holds no machine path)."""
    return Loader().load(path, shown or path.name)


def check_text(tmp_path: Path, text: str, name: str = "case.runbook"):
    """Write `text` to a file and check it: (module, diagnostics)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    module = load(path)
    return module, analyse(module)


def shown(diagnostics) -> list[str]:
    """Diagnostics as `CODE line:col message`, for readable assertion failures."""
    return [f"{d.code} {d.location.line}:{d.location.column} {d.message}" if d.location
            else f"{d.code} {d.message}" for d in diagnostics]


# ---------------------------------------------------------------------- the fixtures


@pytest.mark.parametrize("path", VALID, ids=ids(VALID))
def test_valid_fixture_checks_clean(path: Path) -> None:
    module = load(path)
    assert module.ast is not None
    assert shown(analyse(module)) == []


@pytest.mark.parametrize("path", VALID, ids=ids(VALID))
def test_ast_snapshot(path: Path, snapshot) -> None:
    module = load(path)
    assert compact(strip_spans(to_data(module.ast))) == snapshot


def test_cli_checks_every_valid_fixture_clean() -> None:
    names = [p.name for p in VALID]
    result = runbook("check", *names, cwd=FIXTURES / "valid")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [f"{name}: ok" for name in names]


def test_ast_json_round_trips_through_the_models() -> None:
    """`runbook check --ast` prints JSON that validates back into the very same AST."""
    names = [p.name for p in VALID]
    result = runbook("check", "--ast", *names, cwd=FIXTURES / "valid")
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert len(documents) == len(VALID)
    for path, document in zip(VALID, documents, strict=True):
        assert from_data(document) == load(path).ast, path.name


def test_ast_of_one_file_is_one_document(tmp_path: Path) -> None:
    (tmp_path / "one.runbook").write_text('step s "S" { run "true" }\n')
    (tmp_path / "bad.runbook").write_text('step s {\n')
    one = runbook("check", "--ast", "one.runbook", cwd=tmp_path)
    assert json.loads(one.stdout)["kind"] == "file"
    # A file that does not parse has no AST: `null`, so the shape follows the command line.
    bad = runbook("check", "--ast", "bad.runbook", cwd=tmp_path)
    assert (bad.returncode, json.loads(bad.stdout)) == (2, None)
    both = runbook("check", "--ast", "one.runbook", "bad.runbook", cwd=tmp_path)
    assert [d and d["path"] for d in json.loads(both.stdout)] == ["one.runbook", None]


def test_json_schema_describes_every_node() -> None:
    schema = json_schema()
    json.dumps(schema)
    assert schema["title"] == "Runbook"
    defs = schema["$defs"]
    # Every record has its entry (the root, Runbook, is the schema itself), with its fields
    # in order, the ones without a default required, and nothing else allowed.
    for cls in [Span, *n.node_classes()]:
        entry = schema if cls is n.Runbook else defs[cls.__name__]
        assert list(entry["properties"]) == list(cls.fields), cls.__name__
        assert entry["required"] == [f for f in cls.fields if f not in cls.defaults]
        assert entry["additionalProperties"] is False
        assert entry["description"] == cls.__doc__
    assert set(defs) == {cls.__name__ for cls in n.node_classes() if cls is not n.Runbook} \
        | {"Span"}
    assert defs["Step"]["properties"]["kind"]["enum"] == ["step", "check_step"]


def _discriminated(property_schema: dict) -> dict[str, str]:
    """The `kind` -> `$defs` mapping of a (possibly nullable, possibly list) union."""
    for key in ("items", "anyOf"):
        if key in property_schema:
            inner = property_schema[key]
            for option in inner if isinstance(inner, list) else [inner]:
                if "discriminator" in option or "items" in option:
                    return _discriminated(option)
    mapping = property_schema["discriminator"]["mapping"]
    assert property_schema["discriminator"]["propertyName"] == "kind"
    return {kind: ref.rpartition("/")[2] for kind, ref in mapping.items()}


def test_json_schema_unions_are_told_apart_by_kind() -> None:
    defs = json_schema()["$defs"]
    expressions = {kind: cls.__name__ for kind, cls in n.node_kinds().items()
                   if cls in n.Expr.__args__}
    assert _discriminated(defs["Binary"]["properties"]["left"]) == expressions
    assert _discriminated(defs["ListExpr"]["properties"]["items"]) == expressions
    assert _discriminated(defs["Retry"]["properties"]["every"]) == expressions
    assert _discriminated(defs["Watch"]["properties"]["probe"]) == {"run": "Run",
                                                                    "http": "Http"}
    statements = _discriminated(defs["Task"]["properties"]["body"])
    assert statements["task_call"] == "TaskCall" and len(statements) == len(n.Statement.__args__)
    items = _discriminated(json_schema()["properties"]["items"])
    assert items["check_step"] == items["step"] == "Step"


def test_ast_of_a_file_is_written_exactly(tmp_path: Path, snapshot) -> None:
    """`check --ast` text as tools read it: every key (spans too), in order."""
    (tmp_path / "one.runbook").write_text(
        'param who = "you"\nstep a "Hi {{ who }}" {\n  timeout 1m30s\n'
        '  run "echo {{ who }}" into out\n}\n', encoding="utf-8")
    result = runbook("check", "--ast", "one.runbook", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == snapshot


# §1's gate asks for two approvers without a `signers` file: the warning §6.3 asks for.
ASSERTED = "W308 35:6 gate `approve_prod` needs 2 distinct approvers, but without `signers` " \
    "every name is only asserted: anyone can type any name"


def test_spec_example() -> None:
    """LANGUAGE.md §1 as written: clean but for W308 once the stdlib ships `std/http`; until
    then, that import is its only error (W308 waits for a file without errors)."""
    diagnostics = analyse(load(SECTION_1))
    if resolve_import("std/http", Path(".")).is_file():
        assert shown(diagnostics) == [ASSERTED]
    else:
        assert [(d.code, d.location.line, d.location.column) for d in diagnostics] == \
            [("E220", 10, 8)]
        assert "std/http" in diagnostics[0].message


def test_spec_example_without_std_http(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("runbook_lang.syntax.loader.stdlib_dir", lambda: tmp_path)
    diagnostics = analyse(load(SECTION_1))
    assert [(d.code, d.location.line, d.location.column) for d in diagnostics] == \
        [("E220", 10, 8)]
    assert diagnostics[0].message == "cannot resolve import `std/http`"


def test_spec_example_with_a_stand_in_std_http(tmp_path: Path, monkeypatch) -> None:
    """Whatever the shipped stdlib holds, the example is well-formed given a `wait_healthy`."""
    (tmp_path / "http.runbook").write_text(
        'task wait_healthy(url, deadline = 60s) {\n'
        '  check "{{url}}" { http get "{{url}}"  within deadline every 1s }\n}\n')
    monkeypatch.setattr("runbook_lang.syntax.loader.stdlib_dir", lambda: tmp_path)
    module = load(SECTION_1)
    assert shown(analyse(module)) == [ASSERTED]
    steps = [unit.name.name for unit in module.ast.units]
    assert steps == ["preflight", "backup", "approve_prod", "switch", "verify"]


# ---------------------------------------------------------------------- words


def test_reserved_words_are_those_of_the_spec() -> None:
    assert RESERVED == set(SPEC_RESERVED)
    assert not RESERVED & set(SPEC_CONTEXTUAL)


@pytest.mark.parametrize("word", SPEC_RESERVED)
def test_a_reserved_word_never_names_a_value(tmp_path: Path, word: str) -> None:
    _, diagnostics = check_text(tmp_path, f"let {word} = 1\n")
    assert [(d.code, d.location.line, d.location.column) for d in diagnostics
            if d.is_error] == [("E203", 1, 5)]


# Every name position at once (WORD stands for the word under test): param, let, field,
# module alias, task, task parameter, argument, step, loop variables, `set`, `into`, env
# names, and task calls right after each statement or attribute that ends where a keyword
# could follow.
CONTEXTUAL_CASES = {
    "lib": """
let WORD = 1
task WORD_task(WORD) { note "{{WORD}}" }
""",
    "tasks": """
task WORD(WORD) { note "{{WORD}}" }
""",
    "values": """
param WORD: int = 1
let WORD_list = [WORD, json("{}").WORD]
step show "Show" { note "{{ WORD + 1 }} {{WORD_list}}" }
""",
    "imports": """
import "./lib.runbook" as WORD
import "./tasks.runbook" as WORD_tasks
step WORD "Use {{WORD_item}}" for WORD_item in [1] {
  run "true" into WORD_out
  WORD_tasks.WORD(WORD: WORD.WORD)
  http get "http://127.0.0.1/" into WORD_http
  WORD.WORD_task(WORD: WORD_out)
  set WORD_set = 1
  for WORD_loop in [WORD_set] { WORD_tasks.WORD(WORD: WORD_loop) }
  env { A = 1  WORD = 2 }
}
""",
    "calls": """
task WORD(WORD, other = 1) { note "{{WORD}} {{other}}" }
step s "S" {
  run "true" into out
  WORD(WORD: out)
  http get "http://127.0.0.1/" into response
  WORD(WORD: response.status, other: 2)
  note "x"
  WORD(WORD: 3)
  timeout 1m
  WORD(WORD: 4)
}
gate g "G" { require 1 }
finally { WORD(WORD: run_status) }
""",
}


@pytest.mark.parametrize("word", SPEC_CONTEXTUAL)
def test_a_contextual_word_is_an_ordinary_name(tmp_path: Path, word: str) -> None:
    for case, template in CONTEXTUAL_CASES.items():
        (tmp_path / f"{case}.runbook").write_text(template.replace("WORD", word))
    for case in ("values", "imports", "calls"):
        module = load(tmp_path / f"{case}.runbook")
        assert shown(analyse(module)) == [], case


# ---------------------------------------------------------------------- strings


def first_let(module) -> n.Let:
    return module.ast.of("let")[0]


def test_escapes_decode(tmp_path: Path) -> None:
    module, _ = check_text(tmp_path, r'let s = "q\" b\\ n\n t\t lit\{{ x }} re\.\d"' + "\n")
    assert first_let(module).value.constant() == 'q" b\\ n\n t\t lit{{ x }} re\\.\\d'


def test_triple_quoted_string_is_dedented(tmp_path: Path) -> None:
    text = 'let s = """\n    first\n      indented\n    "quoted" last\n  """\n'
    module, _ = check_text(tmp_path, text)
    assert first_let(module).value.constant() == 'first\n  indented\n"quoted" last'


def test_interpolation_positions_point_into_the_file(tmp_path: Path) -> None:
    """Spans of names inside `{{ }}` are exact, past escaped quotes and dedent."""
    text = ('let a = 1\n'
            'let s = "x {{ getenv(\\"HOME\\") + str(a) }}"\n'
            'let t = """\n      deep {{ a }}\n  """\n')
    module, diagnostics = check_text(tmp_path, text)
    assert shown(d for d in diagnostics if d.is_error) == []
    s, t = module.ast.of("let")[1:]
    binary = s.value.parts[1].expr
    assert binary.kind == "binary" and binary.left.args[0].constant() == "HOME"
    name = binary.right.args[0]
    assert (name.name, name.span.line, name.span.column) == ("a", 2, 38)
    deep = t.value.parts[1].expr
    assert (deep.name, deep.span.line, deep.span.column) == ("a", 4, 15)


STRING_PIECES = ["deploy ", "{{ app }}", "{{app}}", "{{_x1}}", "{{ true }}", "{{false}}",
                 "{{ a.b }}", "{{ }}", "{{ f(x) }}", "{{{ a }}}", "{{", "}}", "{", "}", " ",
                 "é", "$HOME", "'", "\\\"", "\\n", "{{ \\\"s\\\" }}"]


@given(st.lists(st.sampled_from(STRING_PIECES), max_size=8).map("".join),
       st.integers(min_value=1, max_value=40))
def test_a_plain_string_reads_as_any_string_does(text: str, column: int) -> None:
    """One-line strings whose interpolations are names take a short reading: the same
    nodes, spans, diagnostics and depth as the general one."""
    source = Source("case.runbook", "\n" + " " * (column - 1) + f'"{text}"\n')
    token = Token("STRING", f'"{text}"', column, column + len(text) + 2, 2, column, 2,
                  column + len(text) + 2)

    def read(short: bool):
        builder = _FileParse(source, through_tree=False).builder
        if not short:
            builder._plain_string = lambda token: None  # type: ignore[method-assign]
        try:
            node = builder.string(None, [token])
        except Exception as error:  # noqa: BLE001 - both readings must fail alike
            return type(error).__name__
        return to_data(node), builder.inner_depth, builder.diagnostics

    assert read(short=True) == read(short=False)


def test_shell_variables_are_left_alone(tmp_path: Path) -> None:
    module, _ = check_text(tmp_path, 'let s = "echo $HOME ${USER} $$"\n')
    assert first_let(module).value.constant() == "echo $HOME ${USER} $$"


def test_crlf_and_byte_order_mark_are_not_text(tmp_path: Path) -> None:
    path = tmp_path / "windows.runbook"
    path.write_bytes(b'\xef\xbb\xbflet s = """\r\n  a\r\n  b\r\n"""\r\n'
                     b'step x "X" { note "{{s}}" }\r\n')
    module = load(path)
    assert shown(analyse(module)) == []
    assert first_let(module).value.constant() == "a\nb"


# ---------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("text", "ms"), [
    ("250ms", 250), ("30s", 30_000), ("5m", 300_000), ("2h", 7_200_000), ("1d", 86_400_000),
    ("1h30m", 5_400_000), ("2m30s", 150_000), ("1s500ms", 1_500),
    ("1d2h3m4s5ms", 93_784_005),
])
def test_duration_lengths(tmp_path: Path, text: str, ms: int) -> None:
    module, _ = check_text(tmp_path, f"let d = {text}\n")
    value = first_let(module).value
    assert (value.kind, value.ms, value.text) == ("duration", ms, text)


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("42", "literal", 42), ("3.5", "literal", 3.5), ("true", "literal", True),
    ("false", "literal", False),
])
def test_number_and_boolean_literals(tmp_path: Path, text: str, kind: str, value) -> None:
    module, _ = check_text(tmp_path, f"let v = {text}\n")
    node = first_let(module).value
    assert (node.kind, node.value, type(node.value)) == (kind, value, type(value))


def test_minus_one_is_unary_minus(tmp_path: Path) -> None:
    module, _ = check_text(tmp_path, "let v = -1\n")
    node = first_let(module).value
    assert (node.kind, node.op, node.operand.value) == ("unary", "-", 1)


@pytest.mark.parametrize(("text", "tree"), [
    ("1 + 2 * 3", "(+ 1 (* 2 3))"),
    ("10 - 3 - 2", "(- (- 10 3) 2)"),
    ("not a == b", "(not (== a b))"),
    ("a or b and c", "(or a (and b c))"),
    ("-a.b[0]", "(- ([] (. a b) 0))"),
    ("x not in y", "(not in x y)"),
    ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
])
def test_operator_precedence(tmp_path: Path, text: str, tree: str) -> None:
    module, _ = check_text(tmp_path, f"let v = {text}\n")

    def show(e) -> str:
        if e.kind == "binary":
            return f"({e.op} {show(e.left)} {show(e.right)})"
        if e.kind == "unary":
            return f"({e.op} {show(e.operand)})"
        if e.kind == "field":
            return f"(. {show(e.target)} {e.name})"
        if e.kind == "index":
            return f"([] {show(e.target)} {show(e.index)})"
        return str(e.value) if e.kind == "literal" else e.name

    assert show(first_let(module).value) == tree


# ---------------------------------------------------------------------- the documentation


def runbook_blocks(path: Path) -> list[tuple[int, str]]:
    """The ```runbook blocks of a Markdown file, with the line each starts on."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```runbook\n(.*?)^```$", text, re.MULTILINE | re.DOTALL):
        blocks.append((text[:match.start()].count("\n") + 2, match.group(1)))
    return blocks


LANGUAGE_DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"


@pytest.mark.parametrize(("line", "text"), runbook_blocks(LANGUAGE_DOC),
                         ids=[f"line{line}" for line, _ in runbook_blocks(LANGUAGE_DOC)])
def test_language_doc_examples_check_clean(tmp_path: Path, line: int, text: str) -> None:
    """Every example of docs/language.md is a whole runbook that checks without errors."""
    _, diagnostics = check_text(tmp_path, text)
    assert shown(d for d in diagnostics if d.is_error) == []
