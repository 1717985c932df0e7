"""Every patch the workflows branch on (`workflow.patched`), each id once: what its new branch changed (the
comment above it; "before" is what runs from before the patch do), the commit that added it, the workflow
types that branch on it, and when it may be retired (`Patch.retire_when`). The replay test reads it.

An id never changes and is never reused, retired or not: recorded histories name it in their markers. A
patch is retired in samples-python's stages, `workflow.patched` → `workflow.deprecate_patch` → no call, one
release each, once no run that could replay its old branch is left (README, "Retiring a patch"); its entry
stays here at every stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["patched", "deprecated", "removed"]  # `workflow.patched` → `workflow.deprecate_patch` → no call

IMAGE = "ImageRefinementWorkflow"
WORLD = "WorldWorkflow"
CHARACTER = "CharacterWorkflow"
MEME = "MemeWorkflow"
CONVERSATION = "ConversationWorkflow"
KNOWLEDGE = "KnowledgeIngestWorkflow"
LIFE = "LifeWorkflow"
LONG_LIVED = frozenset({CONVERSATION})  # their runs reach new builds only by continuing as new


@dataclass(frozen=True)
class Patch:
    id: str
    commit: str  # the commit that added it (`git log -S'"<id>"' --reverse`)
    date: str
    workflows: tuple[str, ...]  # the workflow types that branch on it, directly or through a shared helper
    stage: Stage = "patched"
    drained: tuple[str, ...] = ()  # histories (tests/histories stems) today's code no longer replays: kept

    @property
    def retire_when(self) -> str:
        """When the next stage may ship: no run that can replay the old branch is left."""
        when = (
            f"no {'/'.join(self.workflows)} run that started on a build before {self.commit} ({self.date}) is "
            "open, nor closed within the namespace's retention (a query replays a closed run)"
        )
        if LONG_LIVED.intersection(self.workflows):
            when += "; an idle conversation stays on its build until its next hand-over"
        return when


# A character tells its world its progress in a few batched signals (profile made, each half of its posts, the end)
# instead of one signal per report.
PROGRESS_PATCH = Patch("progress-by-half", "9910aca", "2026-11-22", (CHARACTER,))
# A conversation hands over at its bound even under steady traffic (waiting asks answered, the rest carried); before, it
# continued as new only once its inbox was empty and its handlers done.
HAND_OVER_PATCH = Patch("continue-as-new-at-a-hard-bound", "90ad05c", "2026-11-22", (CONVERSATION,))
# With a dollar budget a call waits for what is in flight to settle and near the end takes what is left down to its
# floor; before, it needed its whole quote free and the budget ran out at once.
BUDGET_PATCH = Patch("budget-waits-for-calls-in-flight", "19b6905", "2026-11-28", (IMAGE, WORLD, CHARACTER, MEME))
# The image loop scores on fidelity alone, saying so, when the technical score fails; before, it failed the loop.
SCORING_DEGRADES_PATCH = Patch("technical-score-optional", "19b6905", "2026-11-28", (IMAGE,))
# A picture refused by the provider's safety system is an outcome: the prompt is rewritten within policy; before, the
# refusal failed the run.
REFUSAL_PATCH = Patch("refused-picture-rewrites-the-prompt", "67ffca6", "2026-11-28", (IMAGE,))
# Each turn's events are published on the conversation's Workflow Stream; before, nothing streamed.
STREAM_PATCH = Patch("stream-each-turn", "2ed48ee", "2026-11-28", (CONVERSATION,))
# `end` during a hand-over: the carried messages are answered in this run before it closes; before, the run ended
# without them.
END_AFTER_HAND_OVER_PATCH = Patch("answer-carried-messages-before-ending", "c5190b0", "2026-11-28", (CONVERSATION,))
# A cancel reaching a step as its activity's or child's failure stops the run and the characters and posts it started;
# before, it was a failed step and the run went on.
CANCEL_PATCH = Patch(
    "cancel-stops-the-run", "a6422c6", "2026-12-02", (IMAGE, WORLD, CHARACTER, MEME, CONVERSATION, KNOWLEDGE)
)
# A failed near-copy check (no scoring worker) is a recorded failure and later batches go unchecked; before, it failed
# the world.
NEAR_COPIES_OPTIONAL_PATCH = Patch("near-copy-check-optional", "a6422c6", "2026-12-02", (WORLD,))
# A scoring call first asks whether a scoring worker polls (once a minute per run), then waits for a busy one; before, a
# 60 s schedule-to-start timeout stood for 'is anyone there?'.
POLLERS_PATCH = Patch(
    "scoring-asks-for-pollers", "c62b1dd", "2026-12-03", (IMAGE, WORLD, CHARACTER, MEME, CONVERSATION, KNOWLEDGE, LIFE)
)
# A paid call that failed for good books what its attempts spent (from its failure or last heartbeat); before, only
# successful calls were booked.
BOOK_FAILED_ATTEMPTS_PATCH = Patch(
    "book-failed-attempts", "1f2257a", "2026-12-03", (IMAGE, WORLD, CHARACTER, MEME, CONVERSATION)
)
# A character's spent image calls no longer refuse its text calls; before, every call was refused once either kind, or
# the dollars, had run out.
BY_KIND_PATCH = Patch("character-budget-by-kind", "c9070de", "2026-12-03", (CHARACTER,))
# The messages a hand-over carried are queued in `@workflow.init`, before any handler of the new run; before, `run`
# queued them after the first handlers had run.
CARRIED_FIRST_PATCH = Patch("carried-messages-queued-before-handlers", "d206a04", "2026-12-03", (CONVERSATION,))
# A reference that is neither an upload nor an http(s) URL is refused as invalid input before anything runs; before, a
# worker path reached store_references.
UPLOADS_PATCH = Patch("references-are-uploads", "bf40bfc", "2026-12-03", (IMAGE,))
# An image run keeps the newest pending feedback notes within the cap and reserves their tokens with the refinement;
# before, it kept every note and reserved the refinement's quote alone.
FEEDBACK_CAP_PATCH = Patch("pending-feedback-capped", "9cd93e9", "2026-12-07", (IMAGE,))
# A run's paid calls name the models it chose (`models` on its job, a conversation's config; a world's characters
# inherit its choice); before, every call went to the worker's default models.
RUN_MODELS_PATCH = Patch(
    "calls-name-the-runs-models", "4e0c20a", "2026-12-07", (IMAGE, WORLD, CHARACTER, MEME, CONVERSATION)
)
# An image run may be a branch of an earlier one (`ImageJob.branch`): it takes that run's iterations up to N as its own
# without a call and starts at N + 1 from N's prompt, feedback and response id; before, every run started at 1.
BRANCH_PATCH = Patch("image-branch-from-an-iteration", "31478e1", "2026-12-07", (IMAGE,))
# A life's feeds are ranked on the scoring queue, how alike by MiniLM, falling back to shared words on the storage
# queue when no scoring worker polls; before, always by shared words on the storage queue.
LIFE_FEEDS_BY_MEANING_PATCH = Patch("life-feeds-by-meaning", "ed01569", "2026-12-08", (LIFE,))
# A life's post may ask for a picture: the tick's pictures are made on the image queue (paid, within the life's image
# calls and dollars) before its actions are applied; before, posts had no pictures.
LIFE_PICTURES_PATCH = Patch("life-post-pictures", "ed01569", "2026-12-08", (LIFE,))

PATCHES = (
    PROGRESS_PATCH,
    HAND_OVER_PATCH,
    BUDGET_PATCH,
    SCORING_DEGRADES_PATCH,
    REFUSAL_PATCH,
    STREAM_PATCH,
    END_AFTER_HAND_OVER_PATCH,
    CANCEL_PATCH,
    NEAR_COPIES_OPTIONAL_PATCH,
    POLLERS_PATCH,
    BOOK_FAILED_ATTEMPTS_PATCH,
    BY_KIND_PATCH,
    CARRIED_FIRST_PATCH,
    UPLOADS_PATCH,
    FEEDBACK_CAP_PATCH,
    RUN_MODELS_PATCH,
    BRANCH_PATCH,
    LIFE_FEEDS_BY_MEANING_PATCH,
    LIFE_PICTURES_PATCH,
)
