"""The language server: LSP messages in, analyses and answers out (pygls over stdio).

Every analysis runs on one worker thread: the parser keeps per-parse state in its module
and is not re-entrant, and one thread also keeps the order of analyses simple. Edits are
debounced (a burst of keystrokes is analysed once, when it pauses); every request first
brings its document's analysis up to date, so answers never lag behind the text.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from ..version import __version__
from . import hover as hovers
from .analysis import Analysis, Positions, analyse, to_lsp
from .complete import complete
from .index import Builtin, Definition
from .symbols import document_symbols

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.1
TRIGGERS = [".", '"', "/", "(", ","]


class RunbookServer(LanguageServer):
    """pygls's server, with the newest analysis of each open document."""

    def __init__(self) -> None:
        super().__init__("runbook", __version__)
        self.analyses: dict[str, Analysis] = {}
        # The newest analysis that parsed, per document: completion needs names while the
        # line being typed leaves the file unparseable.
        self.parsed: dict[str, Analysis] = {}
        self.pending: dict[str, asyncio.Task] = {}
        self.debounce = DEBOUNCE_SECONDS
        # Parses of imported files on disk (the std/ modules above all), reused while the
        # files do not change; only the analysis worker touches it.
        self.parse_cache: dict = {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runbook-analysis")

    # ------------------------------------------------------------------ paths

    def path_of(self, uri: str) -> Path:
        """The file a document stands for (an unsaved one: a name in the workspace root)."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if path:
            return Path(path)
        root = self.workspace.root_path or str(Path.cwd())
        return Path(root) / (uri.rsplit("/", 1)[-1] or "untitled.runbook")

    @staticmethod
    def uri_of(path) -> str:
        """The URI of a file."""
        return from_fs_path(str(path)) or str(path)

    def units(self, text: str) -> int:
        """Length of `text` in the client's position units (UTF-16 unless agreed otherwise)."""
        return self.workspace.position_codec.client_num_units(text)

    # ------------------------------------------------------------------ analysis

    def schedule(self, uri: str, delay: float) -> None:
        """Analyse `uri` after `delay` seconds of quiet (a newer edit restarts the wait)."""
        pending = self.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.pending[uri] = asyncio.ensure_future(self._later(uri, delay))

    async def _later(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.pending.pop(uri, None)
        await self.refresh(uri)

    async def refresh(self, uri: str) -> Analysis | None:
        """Analyse the document now, publish its diagnostics, and re-check its dependents."""
        try:
            document = self.workspace.get_text_document(uri)
        except KeyError:
            return None
        if uri not in self.workspace.text_documents:
            return None
        path = self.path_of(uri)
        overlays = {self.path_of(other): doc.source
                    for other, doc in self.workspace.text_documents.items() if other != uri}
        text, version = document.source, document.version
        loop = asyncio.get_running_loop()
        analysis = await loop.run_in_executor(self.worker, _analyse, uri, version, path, text,
                                              overlays, self.parse_cache)
        if uri not in self.workspace.text_documents:
            return None  # closed meanwhile
        self.analyses[uri] = analysis
        if analysis.parsed:
            self.parsed[uri] = analysis
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=to_lsp(analysis, self.units, self.uri_of)))
        return analysis

    async def current(self, uri: str) -> Analysis | None:
        """The analysis of the document's present text (made now if an edit is pending)."""
        try:
            document = self.workspace.get_text_document(uri)
        except KeyError:
            return None
        analysis = self.analyses.get(uri)
        if analysis is None or analysis.version != document.version \
                or analysis.text != document.source:
            pending = self.pending.pop(uri, None)
            if pending is not None:
                pending.cancel()
            analysis = await self.refresh(uri)
        return analysis

    def dependents(self, path: Path) -> list[str]:
        """Open documents whose last analysis read `path`."""
        resolved = path.resolve()
        return [uri for uri, analysis in self.analyses.items()
                if resolved in analysis.imported_paths()]

    def positions(self, module) -> Positions:
        """Position conversion for a module's text."""
        return Positions(module.source.text, self.units)


def _analyse(uri, version, path, text, overlays, cache: dict) -> Analysis:
    if len(cache) > 256:
        cache.clear()  # versions of files that changed on disk pile up otherwise
    analysis = analyse(uri, version, path, text, overlays, cache)
    # The parser freezes what it allocated (a one-shot command keeps its AST to the end); a
    # server parses on every edit, so the collector must be able to reclaim old versions.
    gc.unfreeze()
    return analysis


def build_server() -> RunbookServer:
    """A server with every feature registered."""
    server = RunbookServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: RunbookServer, params: lsp.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get("debounceMs"), int | float):
            ls.debounce = max(0.0, options["debounceMs"] / 1000)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: RunbookServer, params: lsp.DidOpenTextDocumentParams) -> None:
        await ls.refresh(params.text_document.uri)
        for uri in ls.dependents(ls.path_of(params.text_document.uri)):
            ls.schedule(uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RunbookServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.schedule(uri, ls.debounce)
        for other in ls.dependents(ls.path_of(uri)):
            ls.schedule(other, ls.debounce)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RunbookServer, params: lsp.DidSaveTextDocumentParams) -> None:
        for uri in ls.dependents(ls.path_of(params.text_document.uri)):
            ls.schedule(uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RunbookServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = ls.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        ls.analyses.pop(uri, None)
        ls.parsed.pop(uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri,
                                                                          diagnostics=[]))
        # Its importers now read the file from disk again.
        for other in ls.dependents(ls.path_of(uri)):
            ls.schedule(other, 0)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: RunbookServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            for uri in ls.dependents(ls.path_of(change.uri)):
                ls.schedule(uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(ls: RunbookServer, params: lsp.HoverParams) -> lsp.Hover | None:
        analysis = await ls.current(params.text_document.uri)
        if analysis is None or analysis.index is None:
            return None
        here = ls.positions(analysis.module)
        occurrence = analysis.index.at(here.offset(params.position))
        if occurrence is None:
            return None
        text = hovers.describe(analysis.index, occurrence)
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                         range=here.range(occurrence.span))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    async def definition(ls: RunbookServer,
                         params: lsp.DefinitionParams) -> lsp.Location | None:
        analysis = await ls.current(params.text_document.uri)
        if analysis is None or analysis.index is None:
            return None
        here = ls.positions(analysis.module)
        occurrence = analysis.index.at(here.offset(params.position))
        if occurrence is None or isinstance(occurrence.target, Builtin) \
                or occurrence.target is None:
            return None
        target: Definition = occurrence.target
        if occurrence.role == "import_path":
            imported = target.module.imports.get(target.name)
            if imported is None:
                return None
            start = lsp.Position(line=0, character=0)
            return lsp.Location(uri=ls.uri_of(imported.path),
                                range=lsp.Range(start=start, end=start))
        return lsp.Location(uri=ls.uri_of(target.module.path),
                            range=ls.positions(target.module).range(target.span))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=TRIGGERS))
    async def completion(ls: RunbookServer,
                         params: lsp.CompletionParams) -> lsp.CompletionList | None:
        uri = params.text_document.uri
        analysis = await ls.current(uri)
        if analysis is None:
            return None
        here = Positions(analysis.text, ls.units)
        last_good = ls.parsed.get(uri)
        items = complete(analysis.text, here.offset(params.position),
                         last_good.index if last_good is not None else None, analysis.path)
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def symbols(ls: RunbookServer,
                      params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol] | None:
        analysis = await ls.current(params.text_document.uri)
        if analysis is None or not analysis.parsed:
            return None
        return document_symbols(analysis.module, ls.positions(analysis.module).range)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    async def formatting(ls: RunbookServer,
                         params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        from ..syntax.formatting import format_source

        uri = params.text_document.uri
        try:
            document = ls.workspace.get_text_document(uri)
        except KeyError:
            return None
        text = document.source
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(ls.worker, format_source, text,
                                            str(ls.path_of(uri)))
        if result.error is not None:
            ls.window_show_message(lsp.ShowMessageParams(
                type=lsp.MessageType.Warning, message=f"runbook fmt: {result.error}"))
            return None
        if result.text == text:
            return []
        lines = text.split("\n")
        end = lsp.Position(line=len(lines) - 1, character=ls.units(lines[-1]))
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end),
                             new_text=result.text)]

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: RunbookServer, params) -> None:
        for pending in ls.pending.values():
            pending.cancel()
        ls.worker.shutdown(wait=False, cancel_futures=True)

    return server
