"""A meme draft's score: the LLM judge's humour and clarity with the topic relevance from the scoring queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.meme import MemeActivities
    from models.meme import Draft, JudgeRequest, MemeFormat, MemeJob, combine_score
    from models.scoring import Similarities, TextPairsRequest
    from workflows.budget import Ledger, metered_call
    from workflows.options import scoring_call, text_call
    from workflows.scoring import ScoringQueue

RELEVANCE_DEADLINE = timedelta(minutes=1)  # the topic relevance, queued behind a busy scoring worker and run


async def judge(
    ledger: Ledger, scoring: ScoringQueue, job: MemeJob, fmt: MemeFormat, draft: Draft, number: int
) -> Draft:
    """Draft `number`, judged and scored: the LLM judge ∥ topic relevance from the scoring queue (skipped when
    no scoring worker polls it, or it fails)."""
    judged = metered_call(
        ledger,
        MemeActivities.judge_text,
        JudgeRequest(topic=job.topic, format=fmt, panels=draft.panels),
        text_call(f"meme · judge draft {number}"),
    )
    similar = scoring.execute(
        "text_similarity",
        TextPairsRequest(texts=[" ".join(draft.panels)], references=[job.topic]),
        result_type=Similarities,
        **scoring_call(f"meme · topic relevance of draft {number}", RELEVANCE_DEADLINE)
        | {"retry_policy": RetryPolicy(maximum_attempts=2)},
    )
    verdict, relevance = await asyncio.gather(judged, similar, return_exceptions=True)
    if isinstance(verdict, BaseException):
        raise verdict
    topic_relevance = draft.relevance
    if isinstance(relevance, Similarities):
        topic_relevance = round(max(0.0, min(1.0, (relevance.values[0] - 0.15) / 0.55)), 3)
    elif isinstance(relevance, ActivityError):
        workflow.logger.info("topic relevance unavailable (%s): scoring with the judge alone", relevance.cause)
    elif isinstance(relevance, BaseException):
        raise relevance
    return draft.model_copy(
        update={
            "humor": verdict.humor,
            "clarity": verdict.clarity,
            "feedback": verdict.feedback,
            "relevance": topic_relevance,
            "score": combine_score(verdict.humor, verdict.clarity, topic_relevance),
        }
    )
