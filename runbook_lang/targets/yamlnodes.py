"""YAML read as marked nodes, and turned into plain values under a budget.

`read_yaml` only composes the document (libyaml when present): nodes with their start and
end marks, aliases as shared nodes, nothing constructed. `NodeReader` then builds values
itself, counting every node it visits: a document whose aliases would expand to millions
of values is refused (E305) after a bounded amount of work, and so is one nested too deep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..limits import MAX_NUMBER_CHARS
from ..syntax.diagnostics import Diagnostic, Location

# Values built per document: at least this many, and as many as the text has characters
# (a document without aliases has fewer nodes than characters, so only aliases reach it).
MIN_BUDGET = 100_000
MAX_DEPTH = 100

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SCALARS = {
    _STR, _NULL, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp",
}
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class Problem(Exception):
    """A problem that ends reading the document (syntax, size, depth)."""

    def __init__(self, code: str, message: str, node=None, mark=None,
                 hints: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node
        self.mark = mark
        self.hints = hints

    def diagnostic(self, path: str) -> Diagnostic:
        """The problem as a diagnostic of file `path`."""
        if self.node is not None:
            where = location(path, self.node)
        elif self.mark is not None:
            where = Location(path, self.mark.line + 1, self.mark.column + 1,
                             self.mark.line + 1, self.mark.column + 2)
        else:
            where = None
        return Diagnostic("error", self.code, self.message, where, self.hints)


def location(path: str, node) -> Location | None:
    """Where a node is in the file (1-based, as every diagnostic)."""
    if node is None:
        return None
    start, end = node.start_mark, node.end_mark
    return Location(path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def read_yaml(text: str, kind: str = "inventory"):
    """The document's root node (None for an empty document); Problem E301/E305.

    `kind` names the document in messages ("inventory", "params file")."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader_class)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "not valid YAML"
        if "maximum nesting depth" in (exc.context or "") + message:
            raise Problem("E305", f"the {kind} nests too deeply", mark=mark) from None
        if exc.context:
            message = f"{message} ({exc.context})"
        raise Problem("E301", f"not valid YAML: {message}", mark=mark) from None
    except yaml.YAMLError as exc:
        raise Problem("E301", f"not valid YAML: {exc}") from None
    except RecursionError:
        raise Problem("E305", f"the {kind} nests too deeply") from None


Report = Callable[[str, str, Any, tuple[str, ...]], None]


class NodeReader:
    """Reads composed nodes into values; reports what is wrong through `report`."""

    def __init__(self, path: str, report: Report | None = None, size: int = 0,
                 kind: str = "inventory") -> None:
        self.path = path
        self.kind = kind
        self.report = report or _raise
        self.visited = 0
        self.budget = max(MIN_BUDGET, size)
        from yaml.constructor import SafeConstructor

        self._constructor = SafeConstructor()

    def _visit(self, node, depth: int) -> None:
        self.visited += 1
        if self.visited > self.budget:
            raise Problem("E305", f"the {self.kind} expands to too many values (aliases "
                          f"repeated over and over?): more than {self.budget:,}", node)
        if depth > MAX_DEPTH:
            raise Problem("E305", f"values nest more than {MAX_DEPTH} levels deep (or an "
                          "alias refers to itself)", node)

    @staticmethod
    def is_null(node) -> bool:
        """An absent value or `~`/`null`."""
        return node is None or (node.id == "scalar" and node.tag == _NULL)

    @staticmethod
    def is_mapping(node) -> bool:
        """A mapping node."""
        return node is not None and node.id == "mapping"

    @staticmethod
    def is_scalar(node) -> bool:
        """A scalar that is not null."""
        return node is not None and node.id == "scalar" and node.tag != _NULL

    def key_text(self, node) -> str:
        """A mapping key as written (`01` stays `01`)."""
        if node.id != "scalar":
            self.report("E302", "a key must be plain text, not a list or a mapping", node, ())
            return ""
        return node.value

    def pairs(self, node, *, what: str, merge: bool = False, depth: int = 0) -> list:
        """(key node, value node) of a mapping; a repeated key is reported (E306), and with
        `merge`, `<<: *alias` merge keys are expanded (the mapping's own keys win)."""
        self._visit(node, depth)
        own: list = []
        merged: list = []
        seen: dict[str, Any] = {}
        for key, value in node.value:
            if key.id == "scalar" and key.tag == _MERGE:
                if not merge:
                    self.report("E302", f"a merge key `<<` cannot be used in {what}", key, ())
                    continue
                merged.extend(self._merged(value, what, depth + 1))
                continue
            text = self.key_text(key)
            if text in seen:
                first = seen[text].start_mark.line + 1
                self.report("E306", f"`{text}` is given twice in {what} (first on line "
                            f"{first})", key, ("YAML keeps only the last one; remove or "
                                               "rename one of them",))
                own = [(k, v) for k, v in own if k is not seen[text]]
            seen[text] = key
            own.append((key, value))
        if not merged:
            return own
        result = [(k, v) for k, v in merged if k.value not in seen]
        return result + own

    def _merged(self, value, what: str, depth: int) -> list:
        sources = value.value if value.id == "sequence" else [value]
        out: list = []
        names: set[str] = set()
        for source in sources:
            if not self.is_mapping(source):
                self.report("E302", "a merge key `<<` takes a mapping or a list of mappings",
                            source, ())
                continue
            for key, val in self.pairs(source, what=what, merge=True, depth=depth + 1):
                if key.value not in names:  # the first source that has a key wins
                    names.add(key.value)
                    out.append((key, val))
        return out

    def value(self, node, depth: int = 0) -> Any:
        """A plain Python value: str, int, float, bool, None, list or dict."""
        self._visit(node, depth)
        if node.id == "scalar":
            return self._scalar(node)
        if node.id == "sequence":
            if node.tag != _SEQ:
                return self._unsupported(node)
            return [self.value(item, depth + 1) for item in node.value]
        if node.tag != _MAP:
            return self._unsupported(node)
        return {self.key_text(k): self.value(v, depth + 1)
                for k, v in self.pairs(node, what="a value", merge=True, depth=depth)}

    def _scalar(self, node) -> Any:
        tag = node.tag
        if tag not in _SCALARS:
            return self._unsupported(node)
        if tag == _NULL:
            return None
        if tag in (_STR, "tag:yaml.org,2002:timestamp"):
            return node.value  # a date stays the text it was written as
        if tag == "tag:yaml.org,2002:int":
            if len(node.value) > MAX_NUMBER_CHARS:
                # Never handed to int(): Python refuses thousands of digits with a message
                # about itself.
                raise Problem("E305", f"a number of {len(node.value):,} characters is too "
                              "large", node)
            return self._constructor.construct_yaml_int(node)
        if tag == "tag:yaml.org,2002:float":
            return self._constructor.construct_yaml_float(node)
        return self._constructor.construct_yaml_bool(node)

    def _unsupported(self, node) -> None:
        tag = node.tag
        hint = ("Ansible Vault values cannot be read by runbook; pass secrets with "
                "`secret NAME from …`",) if tag == "!vault" else ()
        article = "an" if self.kind[0] in "aeiou" else "a"
        self.report("E302", f"the YAML tag `{tag}` is not supported in {article} {self.kind}",
                    node, hint)
        return None


def _raise(code: str, message: str, node, hints: tuple[str, ...]) -> None:
    raise Problem(code, message, node, hints=hints)
