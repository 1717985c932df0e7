"""Temporal activities: every model call and every byte of I/O a run does lives here (the store and the
guards they use are `kit.storage` and `kit.references`, which the API uses too)."""
