"""`runbook lsp`: a Language Server for runbooks, over stdio.

It needs the `lsp` extra (`pip install 'runbook-lang[lsp]'`: pygls and lsprotocol); the
rest of runbook-lang never imports this package, so a core install works without them.
The server talks to the front end through the front door (`runbook_lang.check_text`) and
the public AST and diagnostic types only.
"""

from __future__ import annotations

import sys

EXTRA_HINT = "pip install 'runbook-lang[lsp]'"


def run_lsp(args) -> int:
    """Serve the Language Server Protocol on stdin/stdout until the client says exit."""
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError as error:
        sys.stderr.write(f"runbook: error: `runbook lsp` needs the `lsp` extra, which is not "
                         f"installed ({error.name or 'pygls'} is missing): {EXTRA_HINT}\n")
        return 2
    from .server import build_server

    server = build_server()
    server.start_io()
    return 0
