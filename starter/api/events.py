"""`GET /v1/runs/{id}/events`: Server-Sent Events (to come)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/runs", tags=["events"])
