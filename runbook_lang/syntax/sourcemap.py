"""Source lines by path, for rendering diagnostics of a file or of a module it imports."""

from __future__ import annotations


class SourceMap:
    """Looks up the text of a line in any file the loader has read."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def line(self, path: str, line: int) -> str:
        """The text of `line` in the file shown as `path` ("" when unknown)."""
        for module in self.loader.modules.values():
            if module.source.path == path:
                return module.source.line_text(line)
        text = self.loader.texts.get(path)
        if text is not None:
            lines = text.splitlines()
            return lines[line - 1] if 0 < line <= len(lines) else ""
        return ""
