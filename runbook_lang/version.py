"""The version of runbook-lang (read by the build, the CLI and the record)."""

__version__ = "0.1.0"
