"""Atelier's HTTP API (`python -m starter serve`): another client of the same workflows as the CLI."""
