"""`runbook lsp`: the real server over stdio, driven by a real LSP client (pytest-lsp).

The client announces the capabilities of VS Code, and pytest-lsp checks every answer
against them and the LSP specification. Diagnostics are compared with what `runbook check`
reports for the same text; hover, definition, completion, symbols and formatting are asked
about `examples/deploy.runbook` and the modules it imports.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from frontend import FIXTURES, runbook, runbook_command, user_env
from lsprotocol import types as t
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "examples" / "deploy.runbook"
HTTP = ROOT / "stdlib" / "http.runbook"
ASYNC = pytest.mark.asyncio(loop_scope="module")
# How long a test waits for a notification before it fails (instead of hanging).
WAIT = 30
INVALID = sorted(p for p in (FIXTURES / "invalid").glob("*.runbook")
                 if not p.name.startswith("E001"))


def make_client() -> LanguageClient:
    """pytest-lsp's test client, keeping every diagnostics notification with its version."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []  # type: ignore[attr-defined]

    def record(client: LanguageClient, params: t.PublishDiagnosticsParams) -> None:
        client.published.append(params)  # type: ignore[attr-defined]

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES,
                                   t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: record})
    return client


# One server for the whole module (it starts in ~2 s); each test opens its own documents.
@pytest_lsp.fixture(scope="module",
                    config=ClientServerConfig(server_command=[*runbook_command(), "lsp"],
                                              server_env=user_env(), client_factory=make_client))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=ROOT.as_uri(),
        initialization_options={"debounceMs": 20}))
    yield
    await lsp_client.shutdown_session()


# ---------------------------------------------------------------------- helpers


def position(text: str, needle: str, into: int = 0) -> t.Position:
    """The position `into` characters into the first occurrence of `needle` (ASCII lines)."""
    offset = text.index(needle) + into
    line = text.count("\n", 0, offset)
    return t.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


async def published(client: LanguageClient, uri: str, version: int) -> list[t.Diagnostic]:
    """The diagnostics published for `uri` at `version` since the last call (waiting for
    them): every notification is recorded as it arrives, so none can slip by unseen."""
    async with asyncio.timeout(WAIT):
        while True:
            for params in client.published:  # type: ignore[attr-defined]
                if params.uri == uri and params.version == version:
                    client.published.remove(params)  # type: ignore[attr-defined]
                    return list(params.diagnostics)
            await asyncio.sleep(0.01)


async def message_shown(client: LanguageClient) -> t.ShowMessageParams:
    async with asyncio.timeout(WAIT):
        while not client.messages:
            await asyncio.sleep(0.01)
    return client.messages.pop(0)


async def open_document(client: LanguageClient, path: Path, text: str | None = None,
                        version: int = 1) -> list[t.Diagnostic]:
    text = path.read_text(encoding="utf-8") if text is None else text
    # What an earlier test left for this document is no answer to this opening.
    client.published[:] = [p for p in client.published  # type: ignore[attr-defined]
                           if p.uri != path.as_uri()]
    waiting = published(client, path.as_uri(), version)
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
        uri=path.as_uri(), language_id="runbook", version=version, text=text)))
    return await waiting


async def change_document(client: LanguageClient, path: Path, text: str,
                          version: int) -> list[t.Diagnostic]:
    waiting = published(client, path.as_uri(), version)
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=version),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)]))
    return await waiting


def doc(path: Path) -> t.TextDocumentIdentifier:
    return t.TextDocumentIdentifier(uri=path.as_uri())


async def hover_at(client, path: Path, needle: str, into: int = 0) -> str:
    text = path.read_text(encoding="utf-8")
    answer = await client.text_document_hover_async(t.HoverParams(
        text_document=doc(path), position=position(text, needle, into)))
    assert answer is not None, f"no hover at {needle!r}"
    return answer.contents.value


async def definition_at(client, path: Path, needle: str, into: int = 0) -> t.Location:
    text = path.read_text(encoding="utf-8")
    answer = await client.text_document_definition_async(t.DefinitionParams(
        text_document=doc(path), position=position(text, needle, into)))
    assert isinstance(answer, t.Location), f"no definition at {needle!r}: {answer}"
    return answer


async def labels_at(client, path: Path, at: t.Position) -> list[str]:
    answer = await client.text_document_completion_async(t.CompletionParams(
        text_document=doc(path), position=at))
    items = answer.items if isinstance(answer, t.CompletionList) else answer or []
    return [item.label for item in items]


# ---------------------------------------------------------------------- diagnostics

BROKEN = """\
param version: string = "1.0.0"

step deploy "Deploy" {
  run "echo {{ versoin }}"
}
"""


@ASYNC
async def test_an_error_is_a_diagnostic_at_its_place_and_clears_once_fixed(client, tmp_path):
    path = tmp_path / "deploy.runbook"  # never written: the buffer is all there is
    diagnostics = await open_document(client, path, BROKEN)
    assert [(d.code, d.severity, d.source) for d in diagnostics] == \
        [("W302", t.DiagnosticSeverity.Warning, "runbook"),
         ("E200", t.DiagnosticSeverity.Error, "runbook")]
    unused, error = diagnostics
    assert unused.range.start == t.Position(line=0, character=6)
    assert error.range == t.Range(start=t.Position(line=3, character=15),
                                  end=t.Position(line=3, character=22))
    assert error.message == "undefined name `versoin`\nhelp: did you mean `version`?"

    assert await change_document(client, path, BROKEN.replace("versoin", "version"), 2) == []


@ASYNC
async def test_diagnostics_are_those_of_runbook_check(client, tmp_path):
    # The oracle: `runbook check --output json` on the same files, run from their folder.
    folder = FIXTURES / "invalid"
    checked = runbook("check", "--output", "json", *(p.name for p in INVALID), cwd=folder)
    expected = {entry["path"]: entry["diagnostics"]
                for entry in json.loads(checked.stdout)["files"]}
    for path in INVALID:
        diagnostics = await open_document(client, path)
        want = [d for d in expected[path.name] if d["location"] and
                d["location"]["path"] == path.name]
        here = [d for d in diagnostics if d.related_information is None]
        assert [(d.code, d.range.start.line + 1, d.range.start.character + 1,
                 d.range.end.line + 1, d.range.end.character + 1, d.message) for d in here] == \
            [(d["code"], d["location"]["line"], d["location"]["column"],
              d["location"]["end_line"], d["location"]["end_column"],
              "\n".join([d["message"], *(f"help: {h}" for h in d["hints"])])) for d in want], \
            path.name
        # A diagnostic in an imported module is shown on the import that brings it in.
        elsewhere = [d for d in expected[path.name] if d not in want]
        assert len(diagnostics) - len(here) == len(elsewhere), path.name
        client.text_document_did_close(t.DidCloseTextDocumentParams(doc(path)))


@ASYNC
async def test_an_error_in_an_imported_module_is_shown_on_its_import(client):
    path = FIXTURES / "invalid" / "E100_in_imported_module.runbook"
    diagnostics = await open_document(client, path)
    (error,) = diagnostics
    text = path.read_text(encoding="utf-8")
    import_line = text[:text.index("import ")].count("\n")
    assert error.code == "E100" and error.range.start.line == import_line
    related = error.related_information[0].location
    assert related.uri.endswith(".runbook") and related.uri != path.as_uri()


@ASYNC
async def test_an_error_in_the_inventory_is_shown_on_the_targets_line(client):
    path = FIXTURES / "invalid" / "E303_inventory_host_name.runbook"
    diagnostics = await open_document(client, path)
    (error,) = diagnostics
    text = path.read_text(encoding="utf-8")
    targets_line = text[:text.index("targets ")].count("\n")
    assert error.code == "E303" and error.range.start.line == targets_line
    assert "bad_host.yaml:3:5: host name `-oProxyCommand" in error.message
    related = error.related_information[0].location
    assert related.uri == (path.parent / "inventories" / "bad_host.yaml").as_uri()
    assert (related.range.start.line, related.range.start.character) == (2, 4)


LIBRARY = 'task greet(who) {\n  note "hello {{who}}"\n}\n'
MAIN = 'import "./lib.runbook" as lib\n\nstep hello "Hello" {\n  lib.greet(who: "you")\n}\n'


@ASYNC
async def test_imports_come_from_other_open_buffers_before_the_disk(client, tmp_path):
    lib, main = tmp_path / "lib.runbook", tmp_path / "main.runbook"
    assert await open_document(client, lib, LIBRARY) == []
    assert await open_document(client, main, MAIN) == []
    # Renaming the task in the (unsaved) library breaks the caller at once.
    waiting = published(client, main.as_uri(), 1)
    await change_document(client, lib, LIBRARY.replace("greet", "welcome"), 2)
    (error,) = await waiting
    assert error.code == "E210" and "has no task `greet`" in error.message
    # Closed without saving: the import is read from the disk, where there is no such file.
    waiting = published(client, main.as_uri(), 1)
    client.text_document_did_close(t.DidCloseTextDocumentParams(doc(lib)))
    (error,) = await waiting
    assert error.code == "E220" and error.range.start.line == 0


# ---------------------------------------------------------------------- hover


@ASYNC
async def test_hover_on_the_deploy_example(client):
    await open_document(client, DEPLOY)
    param = await hover_at(client, DEPLOY, "{{version}} is live", 2)
    assert 'param version: string = "1.5.0"' in param
    assert "The release to deploy, e.g. 1.5.0" in param
    task = await hover_at(client, DEPLOY, "web.wait_healthy(url: \"{{old_url}}", 5)
    assert "task wait_healthy(url, deadline = 60s, every = 2s)" in task
    assert "poll URL until it answers 200" in task
    step = await hover_at(client, DEPLOY, "step backup", 6)
    assert 'step backup "Back up the data before the migration"' in step
    builtin = await hover_at(client, DEPLOY, "number(json(baseline.body)")
    assert "number(x) -> number" in builtin
    module = await hover_at(client, DEPLOY, 'import "std/http"', 9)
    assert 'import "std/http" as web' in module and "probe HTTP endpoints" in module
    argument = await hover_at(client, DEPLOY, "deadline: 10s")
    assert "task parameter deadline = 60s" in argument and "how long to keep trying" in argument
    gate = await hover_at(client, DEPLOY, "gate approve_prod", 6)
    assert "2 approval(s) of" in gate


@ASYNC
async def test_hover_on_a_probe_result(client):
    await open_document(client, HTTP)
    status = await hover_at(client, HTTP, "expect status == 200", 8)
    assert "status: int" in status and "`http` probe" in status


# ---------------------------------------------------------------------- definition


def line_of(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    return text[:text.index(needle)].count("\n")


@ASYNC
async def test_go_to_definition_on_the_deploy_example(client):
    await open_document(client, DEPLOY)
    task = await definition_at(client, DEPLOY, "web.wait_healthy", 5)
    assert (task.uri, task.range.start.line) == (HTTP.as_uri(), line_of(HTTP, "task wait_healthy"))
    argument = await definition_at(client, DEPLOY, "deadline: 10s")
    assert (argument.uri, argument.range.start.line) == (HTTP.as_uri(),
                                                        line_of(HTTP, "task wait_healthy"))
    let = await definition_at(client, DEPLOY, "maint.expect_off(flag: maintenance_flag)", 25)
    assert (let.uri, let.range.start.line) == (DEPLOY.as_uri(),
                                               line_of(DEPLOY, "let maintenance_flag"))
    variable = await definition_at(client, DEPLOY, '"{{old_url}}/version"', 3)
    assert variable.range.start.line == line_of(DEPLOY, "set old_url")
    param = await definition_at(client, DEPLOY, "{{version}} is live", 2)
    assert param.range.start.line == line_of(DEPLOY, "param version:")
    local_task = await definition_at(client, DEPLOY, "  stop_demo_services()", 2)
    assert local_task.range.start.line == line_of(DEPLOY, "task stop_demo_services")
    module = await definition_at(client, DEPLOY, 'import "std/http"', 9)
    assert (module.uri, module.range.start.line) == (HTTP.as_uri(), 0)
    alias = await definition_at(client, DEPLOY, "web.wait_healthy", 1)
    assert alias.range.start.line == line_of(DEPLOY, 'import "std/http"')


FAILED_STEP = """\
step migrate "Migrate" {
  run "true"
}

finally {
  if failed_step == "migrate" {
    note "restore the backup"
  }
}
"""


@ASYNC
async def test_a_step_named_in_a_string_leads_to_the_step(client, tmp_path):
    path = tmp_path / "steps.runbook"
    path.write_text(FAILED_STEP, encoding="utf-8")
    await open_document(client, path)
    found = await definition_at(client, path, '"migrate" {', 3)
    assert found.range == t.Range(start=t.Position(line=0, character=5),
                                  end=t.Position(line=0, character=12))


# ---------------------------------------------------------------------- completion


@ASYNC
async def test_completion_of_std_modules_and_their_tasks(client, tmp_path):
    path = tmp_path / "new.runbook"
    text = 'import "std/http" as web\n\nstep s "S" {\n  web.wait_healthy(url: "x")\n}\n'
    await open_document(client, path, text)
    # While `web.` is being typed the file does not parse: the last version that did serves.
    typing = text.replace("web.wait_healthy(url: \"x\")", "web.")
    await change_document(client, path, typing, 2)
    tasks = await labels_at(client, path, position(typing, "web.", 4))
    assert {"wait_healthy", "expect_status", "expect_json_field"} <= set(tasks)
    importing = typing.replace('"std/http"', '"std/')
    await change_document(client, path, importing, 3)
    modules = await labels_at(client, path, position(importing, '"std/', 5))
    assert {"std/http", "std/fs", "std/git", "std/net"} <= set(modules)


@ASYNC
async def test_completion_in_context(client):
    await open_document(client, DEPLOY)
    text = DEPLOY.read_text(encoding="utf-8")
    # At the start of a statement in a step: statements, step attributes, local tasks.
    start = await labels_at(client, DEPLOY, position(text, "  run \"sh app/ctl.sh free-port\"", 2))
    assert {"run", "http", "note", "set", "when", "timeout", "rollback",
            "stop_demo_services", "web"} <= set(start)
    assert "approvers" not in start and "param" not in start
    # The arguments of a task call, those already given left out.
    call = 'web.wait_healthy(url: "{{old_url}}/health", '
    arguments = await labels_at(client, DEPLOY, position(text, call, len(call)))
    assert arguments == ["deadline", "every"]
    # Names in an interpolation: params, lets, variables and builtins.
    names = await labels_at(client, DEPLOY, position(text, "{{version}} is live", 2))
    assert {"version", "environment", "work", "old_url", "len", "run_id"} <= set(names)
    # Gate attributes inside a gate.
    gate = await labels_at(client, DEPLOY, position(text, "  approvers [", 2))
    assert {"approvers", "require", "self_approval"} <= set(gate) and "run" not in gate


# ---------------------------------------------------------------------- symbols, formatting


@ASYNC
async def test_document_symbols_outline_the_runbook(client):
    await open_document(client, DEPLOY)
    symbols = await client.text_document_document_symbol_async(
        t.DocumentSymbolParams(text_document=doc(DEPLOY)))
    by_name = {s.name: s for s in symbols}
    assert by_name["version"].kind == t.SymbolKind.Property
    assert by_name["stop_demo_services"].kind == t.SymbolKind.Function
    assert by_name["approve_prod"].kind == t.SymbolKind.Interface
    units = [s.name for s in symbols if s.detail.startswith(("step ", "check ", "gate "))]
    assert units[:4] == ["demo_setup", "preflight", "approve_prod", "backup"]
    assert units[-1] == "record"
    watch = by_name["watch_errors"].children[0]
    assert (watch.kind, watch.detail) == (t.SymbolKind.Boolean, "watch")


MESSY = 'step s "S" {\n        run "true"\n      note "x"\n\n\n}\n'


@ASYNC
async def test_formatting_is_runbook_fmt(client, tmp_path):
    path = tmp_path / "messy.runbook"
    await open_document(client, path, MESSY)
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=doc(path), options=t.FormattingOptions(tab_size=4, insert_spaces=True)))
    (edit,) = edits
    assert edit.range.start == t.Position(line=0, character=0)
    path.write_text(MESSY, encoding="utf-8")
    assert runbook("fmt", str(path), cwd=tmp_path).returncode == 0
    assert edit.new_text == path.read_text(encoding="utf-8")

    await change_document(client, path, edit.new_text, 2)
    again = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=doc(path), options=t.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert list(again) == []


@ASYNC
async def test_formatting_leaves_a_broken_file_alone_and_says_why(client, tmp_path):
    path = tmp_path / "broken.runbook"
    await open_document(client, path, 'step s "S" {\n  run\n')
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=doc(path), options=t.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits is None
    shown = await message_shown(client)
    assert shown.type == t.MessageType.Warning and "does not parse" in shown.message


# ---------------------------------------------------------------------- without the extra


def test_without_the_lsp_extra_runbook_lsp_names_it():
    # pygls made unimportable, as in a core install.
    code = ("import sys; sys.modules['pygls'] = None\n"
            "from runbook_lang.cli import main\nraise SystemExit(main(['lsp']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=user_env(), timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "runbook-lang[lsp]" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_server_documents_every_builtin_and_keyword():
    from runbook_lang.analysis.typecheck import BUILTINS, RESERVED
    from runbook_lang.lsp import docs

    assert set(docs.BUILTINS) == set(BUILTINS)
    offered = {*docs.ITEM_KEYWORDS, *docs.STATEMENT_KEYWORDS, *docs.STEP_ATTRIBUTES,
               *docs.GATE_ATTRIBUTES}
    assert offered <= set(RESERVED) | {"approvers", "require", "message", "self_approval"}
    assert all(word in docs.KEYWORD_DOCS for word in offered)
