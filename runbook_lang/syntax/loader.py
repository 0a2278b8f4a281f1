"""Load a runbook and the modules it imports, parsing each file once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..dataclass import dataclass, field
from ..errors import LoadError
from ..hints import TYPE_CHECKING
from ..limits import MAX_RUNBOOK_BYTES, TooLarge, size_text
from ..resources import stdlib_dir
from . import nodes as n
from .diagnostics import Diagnostic, at_span
from .parser import parse_file, parse_text
from .source import Source

if TYPE_CHECKING:
    from typing import Any


@dataclass
class Module:
    """A parsed file and the modules its imports name (alias -> Module, None if unresolved)."""

    path: Path
    source: Source
    ast: n.Runbook | None
    diagnostics: list[Diagnostic]
    imports: dict[str, Module | None] = field(default_factory=dict)
    # The inventory that `targets` names (a `targets.model.Inventory`), when it was read.
    inventory: Any = None

    @property
    def runbook(self) -> n.Runbook:
        """The AST of a module that parsed (the engine only sees checked modules)."""
        if self.ast is None:
            raise ValueError(f"{self.source.path} did not parse")
        return self.ast


class Loader:
    """Parses files and resolves `import`s, detecting missing modules and cycles.

    `overlays` maps resolved paths to text that stands in for the file on disk (an editor's
    unsaved buffers): such a file is parsed from that text, whether or not it exists.
    `cache`, a dict the caller keeps between loaders, holds the parses of files read from
    disk, reused while a file's size and modification time stay the same.
    """

    def __init__(self, overlays: Mapping[Path, str] | None = None,
                 cache: dict | None = None) -> None:
        self.modules: dict[Path, Module] = {}
        # Other files read for the runbooks (inventories), by the path diagnostics name:
        # the text their diagnostics quote.
        self.texts: dict[str, str] = {}
        self._loading: list[Path] = []
        self.overlays = dict(overlays or {})
        self.cache = cache

    def load(self, path: Path, shown_as: str | None = None) -> Module:
        """Load `path` (raises LoadError when it cannot be read at all)."""
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a symlink loop
            raise LoadError(f"{shown_as or path}: cannot read: a loop of symbolic links") \
                from None
        if resolved in self.modules:
            return self.modules[resolved]
        try:
            if resolved in self.overlays:
                text = self.overlays[resolved]
                if len(text) > MAX_RUNBOOK_BYTES or \
                        len(text.encode("utf-8", "surrogatepass")) > MAX_RUNBOOK_BYTES:
                    raise TooLarge(MAX_RUNBOOK_BYTES)
                source, ast, diagnostics = parse_text(text, shown_as or str(path))
            else:
                source, ast, diagnostics = self._parse_file(path, resolved, shown_as)
        except IsADirectoryError:
            raise LoadError(f"{shown_as or path}: is a directory, not a runbook file") from None
        except FileNotFoundError:
            raise LoadError(f"{shown_as or path}: no such file") from None
        except UnicodeDecodeError as error:
            data = error.object
            line = data[:error.start].count(b"\n") + 1
            culprit = "a NUL byte" if data[error.start:error.start + 1] == b"\x00" else \
                f"byte 0x{data[error.start]:02x} is not UTF-8"
            raise LoadError(f"{shown_as or path}: not a text file: {culprit} on line {line} "
                            "(runbooks are UTF-8 text)") from None
        except TooLarge:
            raise LoadError(f"{shown_as or path}: too large: a runbook is at most "
                            f"{size_text(MAX_RUNBOOK_BYTES)}") from None
        except OSError as error:
            raise LoadError(f"{shown_as or path}: cannot read: {error.strerror}") from None
        module = Module(resolved, source, ast, list(diagnostics))
        self.modules[resolved] = module
        if ast is not None:
            self._loading.append(resolved)
            try:
                for item in ast.of("import"):
                    # An empty path has been reported by the parser already.
                    module.imports[item.alias.name] = \
                        self._load_import(module, item) if item.path else None
            finally:
                self._loading.pop()
            if ast.targets is not None and ast.targets.path:
                self._load_targets(module, ast.targets)
        return module

    def _load_targets(self, module: Module, item: n.Targets) -> None:
        """Read the inventory `targets` names; its problems become the module's diagnostics
        (E300–E308): in the inventory where they are, else at the `targets` line."""
        from ..targets.inventory import load_inventory
        from ..targets.model import InventoryError

        path = module.path.parent / item.path
        shown = _shown(path)
        try:
            module.inventory = load_inventory(path, shown)
        except InventoryError as error:
            where = at_span(module.source.path, item.path_span)
            for found in error.diagnostics:
                if found.location is None:
                    # At the `targets` line, the file is named as written there: the same
                    # message from any working directory (the editor's too).
                    message = found.message.replace(shown, item.path, 1)
                    found = Diagnostic(found.severity, found.code, message, where,
                                       found.hints)
                module.diagnostics.append(found)
            if error.text:
                self.texts[shown] = error.text

    def _load_import(self, module: Module, item: n.Import) -> Module | None:
        target = resolve_import(item.path, module.path.parent)
        where = at_span(module.source.path, item.path_span)
        if target is None or not (target.is_file() or self._overlaid(target)):
            if item.path.startswith("std/"):
                names = sorted(available_stdlib())
                hint = "std/ modules: " + ", ".join(names) if names else \
                    "this installation ships no std/ modules"
            else:
                hint = "paths are relative to the importing file"
            module.diagnostics.append(Diagnostic(
                "error", "E220", f"cannot resolve import `{item.path}`", where,
                (hint,) if hint else ()))
            return None
        resolved = target.resolve()
        if resolved in self._loading:
            chain = " -> ".join(p.name for p in [*self._loading, resolved])
            module.diagnostics.append(Diagnostic(
                "error", "E221", f"import cycle: {chain}", where))
            return None
        try:
            return self.load(target, _shown(target))
        except LoadError as error:
            module.diagnostics.append(Diagnostic("error", "E220", str(error), where))
            return None


    def _parse_file(self, path: Path, resolved: Path, shown_as: str | None):
        if self.cache is None:
            return parse_file(path, shown_as)
        stat = resolved.stat()
        key = (resolved, shown_as, stat.st_mtime_ns, stat.st_size)
        if key not in self.cache:
            self.cache[key] = parse_file(path, shown_as)
        return self.cache[key]

    def _overlaid(self, path: Path) -> bool:
        try:
            return path.resolve() in self.overlays
        except (OSError, RuntimeError):
            return False


def resolve_import(spec: str, base: Path) -> Path | None:
    """`std/NAME` -> the shipped stdlib; anything else is relative to the importing file."""
    if spec.startswith("std/"):
        name = spec[4:]
        if not name or "/" in name or name.startswith("."):
            return None
        return stdlib_dir() / f"{name}.runbook"
    if not spec:
        return None
    return (base / spec)


def available_stdlib() -> list[str]:
    """Names of the shipped `std/` modules."""
    try:
        return [p.stem for p in stdlib_dir().glob("*.runbook")]
    except FileNotFoundError:
        return []


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        if stdlib_dir() in path.resolve().parents:
            return f"std/{path.name}"
        return str(path)
