"""Atelier Studio: the web app the API serves at `/` — runs as they are made, steering, comparing, new runs.
Server-rendered pages (Jinja2) and one small script (`static/studio.js`, no build step) that talks to the
same `/v1` API as any client: live parts follow the run's Server-Sent Events."""
