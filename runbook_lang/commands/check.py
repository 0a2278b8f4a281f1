"""`runbook check FILE…`: parse, analyse, report diagnostics (or print the AST)."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from ..analysis.analyzer import analyse
from ..errors import LoadError
from ..reporting.output import print_diagnostics
from ..syntax.diagnostics import Diagnostic, summary_line
from ..syntax.loader import Loader
from ..syntax.nodes import to_data
from ..syntax.sourcemap import SourceMap


def run_check(args) -> int:
    """Check every file; exit 2 when any file has an error or cannot be read."""
    if args.ast and args.output == "json":
        from ..errors import UsageError

        raise UsageError("--ast and --output json each print a JSON document: use one")
    loader = Loader()
    sources = SourceMap(loader)
    results: list[tuple[str, list[Diagnostic], object]] = []
    with _Collector() as collector:
        for name in args.files:
            try:
                module = collector.load(loader, name)
            except LoadError as error:
                # A file that cannot be read is reported like any other error (E001, no place).
                results.append((name, [Diagnostic("error", "E001", str(error))], None))
                continue
            results.append((name, analyse(module), module.ast))
    failed = any(d.is_error for _, ds, _ in results for d in ds)
    if args.ast:
        _print_ast([ast for _, _, ast in results], several=len(args.files) > 1)
    if args.output == "json":
        _print_json(results)
    else:
        for name, diagnostics, _ in results:
            print_diagnostics(diagnostics, sources)
            if not args.ast:
                counts = summary_line(diagnostics)
                status = "ok" if not any(d.is_error for d in diagnostics) else "failed"
                print(f"{name}: {status}" + (f" ({counts})" if counts else ""))
    return 2 if failed else 0


class _Collector:
    """The cyclic garbage collector while files are checked.

    A parse allocates the AST, which lives until the command ends, and next to no cyclic
    garbage: the collector would only walk the growing tree again and again (a tenth of the
    time of a 20,000-step file). So files are loaded without it, and each tree is then moved
    out of its sight (`gc.freeze`): the analysis pays only for what it allocates itself.
    Leaving the `with` block puts the collector back as it was (the test suite runs many
    commands in one process), unless something else had frozen objects: then nothing is
    frozen here, so that nothing of theirs is unfrozen.
    """

    def __enter__(self) -> _Collector:
        self.enabled = gc.isenabled()
        self.freeze = gc.get_freeze_count() == 0
        return self

    def load(self, loader: Loader, name: str):
        """Load a file and what it imports without the collector; then freeze its tree."""
        gc.disable()
        try:
            return loader.load(Path(name), name)
        finally:
            if self.freeze:
                gc.freeze()
            if self.enabled:
                gc.enable()

    def __exit__(self, *exc_info: object) -> None:
        if self.freeze:
            gc.unfreeze()
        if self.enabled:
            gc.enable()


def _print_ast(trees: list, several: bool) -> None:
    # One document per FILE argument, `null` for a file that did not parse: the shape of the
    # output depends on the command line only, never on whether parsing succeeded.
    dumped = [to_data(tree) if tree is not None else None for tree in trees]
    document = dumped if several else dumped[0]
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")


def _print_json(results) -> None:
    files = []
    for name, diagnostics, _ in results:
        files.append({
            "path": name,
            "ok": not any(d.is_error for d in diagnostics),
            "diagnostics": [d.to_json() for d in diagnostics],
        })
    errors = sum(d.is_error for _, ds, _ in results for d in ds)
    warnings = sum(not d.is_error for _, ds, _ in results for d in ds)
    sys.stdout.write(json.dumps({"ok": errors == 0, "errors": errors, "warnings": warnings,
                                 "files": files}, ensure_ascii=False, indent=2) + "\n")
