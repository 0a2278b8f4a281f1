"""What people read: live output, plans, reports, diagnostics."""
