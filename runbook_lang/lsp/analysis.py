"""One analysis of one editor buffer: the front door's `check_text`, and LSP positions.

An `Analysis` is immutable once made: the server keeps the newest one per document (and
the newest one that parsed, for completion while a line is half typed) and answers every
request from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from .. import check_text
from ..dataclass import dataclass, field
from ..errors import LoadError
from ..syntax.diagnostics import Diagnostic
from .index import Index, index_module

SOURCE = "runbook"


class Positions:
    """Converts between the server's (1-based line, code-point column) and client units."""

    def __init__(self, text: str, units) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.units = units  # str -> number of client code units (UTF-16 by default)
        starts = [0]
        for line in self.lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        self.starts = starts

    def position(self, line: int, column: int) -> lsp.Position:
        """The client position of a 1-based line and column."""
        index = min(max(line - 1, 0), len(self.lines) - 1)
        text = self.lines[index]
        return lsp.Position(line=index, character=self.units(text[:max(column - 1, 0)]))

    def range(self, span) -> lsp.Range:
        """The client range of a span (or a diagnostic Location)."""
        return lsp.Range(start=self.position(span.line, span.column),
                         end=self.position(span.end_line, span.end_column))

    def offset(self, position: lsp.Position) -> int:
        """The character offset of a client position."""
        if position.line >= len(self.lines):
            return len(self.text)
        text = self.lines[position.line]
        units = 0
        column = 0
        for char in text:
            if units >= position.character:
                break
            units += self.units(char)
            column += 1
        return self.starts[position.line] + column


@dataclass
class Analysis:
    """A buffer's text as analysed: the loaded module, its diagnostics, and its index."""

    uri: str
    version: int | None
    path: Path
    text: str
    module: Any | None  # the loader's Module
    diagnostics: list[Diagnostic]
    _index: Index | None = field(default=None, repr=False)

    @property
    def parsed(self) -> bool:
        """Whether the text itself parsed (an index of it can be made)."""
        return self.module is not None and self.module.ast is not None

    @property
    def index(self) -> Index | None:
        """The names of the module and what they refer to (None when it did not parse)."""
        if self._index is None and self.parsed:
            self._index = index_module(self.module)
        return self._index

    def modules(self) -> dict[str, Any]:
        """Every module of the analysis by the path its diagnostics name (the buffer first)."""
        found: dict[str, Any] = {}
        stack = [self.module] if self.module is not None else []
        while stack:
            module = stack.pop()
            if module.source.path in found:
                continue
            found[module.source.path] = module
            stack.extend(m for m in module.imports.values() if m is not None)
        return found

    def imported_paths(self) -> set[Path]:
        """The files this buffer's analysis read besides itself."""
        return {m.path for m in self.modules().values() if m is not self.module}


def analyse(uri: str, version: int | None, path: Path, text: str,
            overlays: Mapping[Path, str], cache: dict | None = None) -> Analysis:
    """Analyse `text` as the file at `path`, its imports from disk or from `overlays`.

    `cache` keeps the parses of imported files between analyses (see `check_text`).
    """
    try:
        module, diagnostics = check_text(path, text, overlays, cache)
    except LoadError as error:
        return Analysis(uri, version, path, text, None, [Diagnostic("error", "E001", str(error))])
    except RecursionError:
        return Analysis(uri, version, path, text, None, [Diagnostic(
            "error", "E101", "input nested too deeply to process")])
    return Analysis(uri, version, path, text, module, diagnostics)


SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


def to_lsp(analysis: Analysis, units, uri_of) -> list[lsp.Diagnostic]:
    """The analysis's diagnostics for the buffer itself.

    A diagnostic in an imported module is shown on the import that leads to it, with the
    module's own place as related information (`uri_of(path)` names that file).
    """
    here = Positions(analysis.text, units)
    main_path = str(analysis.path)
    modules = analysis.modules()
    result = []
    for diagnostic in analysis.diagnostics:
        message = diagnostic.message
        if diagnostic.hints:
            message += "\n" + "\n".join(f"help: {hint}" for hint in diagnostic.hints)
        location = diagnostic.location
        related = None
        if location is None:
            where = lsp.Range(start=lsp.Position(line=0, character=0),
                              end=lsp.Position(line=0, character=0))
        elif location.path == main_path:
            where = here.range(location)
        elif (targets := _targets_naming(analysis, location.path)) is not None:
            # In the inventory the buffer's `targets` names: shown on that line, with the
            # inventory's own place as related information.
            where = here.range(targets.path_span)
            message = f"{location.path}:{location.line}:{location.column}: {message}"
            inventory = Path(location.path).resolve()
            try:
                theirs = Positions(inventory.read_text(encoding="utf-8"), units)
                spot = theirs.range(location)
            except (OSError, UnicodeDecodeError):
                spot = where
            related = [lsp.DiagnosticRelatedInformation(
                location=lsp.Location(uri=uri_of(inventory), range=spot),
                message=diagnostic.message)]
        else:
            module = modules.get(location.path)
            via = _import_leading_to(analysis, module)
            where = here.range(via.path_span) if via is not None else \
                lsp.Range(start=lsp.Position(line=0, character=0),
                          end=lsp.Position(line=0, character=0))
            message = f"{location.path}:{location.line}:{location.column}: {message}"
            if module is not None:
                theirs = Positions(module.source.text, units)
                related = [lsp.DiagnosticRelatedInformation(
                    location=lsp.Location(uri=uri_of(module.path), range=theirs.range(location)),
                    message=diagnostic.message)]
        result.append(lsp.Diagnostic(range=where, message=message,
                                     severity=SEVERITY[diagnostic.severity],
                                     code=diagnostic.code, source=SOURCE,
                                     related_information=related))
    return result


def _targets_naming(analysis: Analysis, path: str):
    """The buffer's `targets` item when `path` is the inventory it names, else None."""
    module = analysis.module
    if module is None or module.ast is None or module.ast.targets is None:
        return None
    item = module.ast.targets
    try:
        same = (Path(analysis.path).parent / item.path).resolve() == Path(path).resolve()
    except (OSError, ValueError):
        return None
    return item if same else None


def _import_leading_to(analysis: Analysis, target):
    """The buffer's import through which `target` was loaded (directly or not)."""
    module = analysis.module
    if module is None or module.ast is None or target is None:
        return None
    for item in module.ast.of("import"):
        imported = module.imports.get(item.alias.name)
        stack = [imported] if imported is not None else []
        seen: set[int] = set()
        while stack:
            current = stack.pop()
            if current is target:
                return item
            if id(current) in seen:
                continue
            seen.add(id(current))
            stack.extend(m for m in current.imports.values() if m is not None)
    return None
