"""One module per `runbook` subcommand; each is imported only when its command runs."""
