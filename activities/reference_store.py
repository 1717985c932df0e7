"""Reference images of an image run: fetched (or read from the CLI's uploads) once, verified, and kept in
the artifact store under the run.

Its own module, so workflows (which call it by name) never import httpx or Pillow.
"""

from __future__ import annotations

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from kit.references import BadReference, load_reference
from kit.storage import ArtifactStore, run_key
from models.artifacts import ArtifactRef
from models.image import StoreReferencesRequest


class ReferenceActivities:
    def __init__(self, store: ArtifactStore, allow_private_urls: bool = False) -> None:
        self.store = store
        self.allow_private_urls = allow_private_urls

    @activity.defn(name="store_references")
    async def store_references(self, request: StoreReferencesRequest) -> list[ArtifactRef]:
        """Fetch and verify each reference image once, and keep it in the artifact store."""
        stored = []
        for index, ref in enumerate(request.references):
            try:
                async with heartbeating(f"fetching reference {index + 1}"):
                    image = await load_reference(self.store, ref, index + 1, self.allow_private_urls)
            except BadReference as exc:
                raise ApplicationError(str(exc), type="BadReference", non_retryable=True) from exc
            except httpx.HTTPError as exc:
                raise ApplicationError(f"reference {index + 1}: {exc}", type="ReferenceUnavailable") from exc
            key = run_key(request.workflow_id, "refs", f"{index:02d}.{image.extension}")
            stored.append(await self.store.put(key, image.data, image.content_type))
        return stored
