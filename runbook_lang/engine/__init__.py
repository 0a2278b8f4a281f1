"""Plans and runs a checked runbook: steps, gates, failure and rollback."""
