"""Command-line entry points: run the server, start pipelines, follow and control runs."""
