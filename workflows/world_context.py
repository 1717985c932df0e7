"""What every step of one world shares, fixed once the world is described."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.artifacts import ArtifactRef
    from models.world import WorldJob


@dataclass(frozen=True)
class WorldContext:
    job: WorldJob
    world_id: str
    world_text: str  # the description every prompt of the world starts from
    style: str  # the world's visual style, for every picture
    name: str  # the world's name, as described
    description: ArtifactRef  # the stored description

    @property
    def world_name(self) -> str:
        """The world as people see it named: its name, or its id when it has none."""
        return self.name or self.world_id
