"""`python -m runbook_lang` is the `runbook` command."""

from .cli import entry

entry()
