"""Deterministic Temporal workflows: the business processes of Atelier."""
