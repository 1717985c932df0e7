"""Temporal activities: every model call and every byte of I/O lives here."""
