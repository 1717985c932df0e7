"""The PostChain phases that ask a language model (Action, Intention, Observation, Understanding, Yield),
and the turn archive that Experience searches."""

from __future__ import annotations

from temporalio import activity

from activities.heartbeat import heartbeating
from activities.providers import Providers
from activities.providers.base import T
from activities.text_publisher import TextPublisher
from kit.storage import ArtifactStore, turn_key
from models.conversation import (
    ActionOutput,
    ActionRequest,
    IntentionOutput,
    IntentionRequest,
    ObservationOutput,
    ObservationRequest,
    Passage,
    Phase,
    TurnRecord,
    UnderstandingOutput,
    UnderstandingRequest,
    YieldOutput,
    YieldRequest,
)
from models.usage import Metered, ModelRequest

SYSTEM = "You are one phase of a careful assistant's reasoning chain. Answer only in the requested JSON."


def numbered(passages: list[Passage]) -> str:
    return "\n".join(
        f"[{i}] ({p.source}: {p.title}, similarity {p.score:.2f}) {p.text}" for i, p in enumerate(passages, 1)
    )


class ConversationActivities:
    def __init__(self, providers: Providers, store: ArtifactStore) -> None:
        self.providers = providers  # each phase asks the model its request names
        self.store = store

    async def _ask(self, schema: type[T], prompt: str, request: ModelRequest, what: str) -> Metered[T]:
        async with heartbeating(what):
            return await self.providers.for_request(request).structured(schema, SYSTEM, prompt, request)

    async def _ask_streaming(
        self, schema: type[T], prompt: str, request: ActionRequest | YieldRequest, phase: Phase
    ) -> Metered[T]:
        """`_ask`, with the reply's prose published to the conversation's stream as the model writes it
        (when the workflow asked for it: runs from before streaming do not)."""
        if request.stream_turn is None:
            return await self._ask(schema, prompt, request, phase.value)
        async with heartbeating(phase.value), TextPublisher(request.stream_turn, phase) as text:
            provider = self.providers.for_request(request)
            return await provider.structured(schema, SYSTEM, prompt, request, stream=text.stream)

    @activity.defn(name="phase_action")
    async def action(self, request: ActionRequest) -> Metered[ActionOutput]:
        recent = "\n".join(request.recent) or "(this is the first message)"
        prompt = f"Conversation so far:\n{recent}\n\nNew message: {request.user}\nWrite a first, short response."
        if request.speaker is not None:
            prompt = f"{request.speaker.voice()}\n\n{prompt}"
        return await self._ask_streaming(ActionOutput, prompt, request, Phase.ACTION)

    @activity.defn(name="phase_intention")
    async def intention(self, request: IntentionRequest) -> Metered[IntentionOutput]:
        prompt = (
            f"Message: {request.user}\nFirst response: {request.draft}\nWhat does the user want? List what is needed."
        )
        return await self._ask(IntentionOutput, prompt, request, "intention")

    @activity.defn(name="phase_observation")
    async def observation(self, request: ObservationRequest) -> Metered[ObservationOutput]:
        prompt = (
            f"Message: {request.user}\nIntent: {request.intent}\nFirst response: {request.draft}\n"
            "Name the key concepts (short noun phrases) and the links between them."
        )
        return await self._ask(ObservationOutput, prompt, request, "observation")

    @activity.defn(name="phase_understanding")
    async def understanding(self, request: UnderstandingRequest) -> Metered[UnderstandingOutput]:
        prompt = (
            f"Message: {request.user}\nIntent: {request.intent}\nConcepts: {', '.join(request.concepts)}\n"
            f"Passages found:\n{numbered(request.passages) or '(none)'}\n"
            f"Answer now, or search again ({request.searches_left} searches left) with a better query?"
        )
        return await self._ask(UnderstandingOutput, prompt, request, "understanding")

    @activity.defn(name="phase_yield")
    async def yield_answer(self, request: YieldRequest) -> Metered[YieldOutput]:
        sources = numbered(request.passages) if request.retrieval else "(retrieval was unavailable)"
        prompt = (
            f"Message: {request.user}\nIntent: {request.intent}\nFirst response: {request.draft}\n"
            f"Passages:\n{sources or '(none)'}\n"
            "Write the final answer. Cite the passages you use as [n] and list their numbers in `cited`."
        )
        if request.speaker is not None:  # memory passages are the character's own: answer in its voice
            prompt = f"{request.speaker.voice()} The passages are your own memories.\n\n{prompt}"
        return await self._ask_streaming(YieldOutput, prompt, request, Phase.YIELD)

    @activity.defn(name="archive_turn")
    async def archive_turn(self, turn: TurnRecord) -> None:
        """Keep the finished turn where Experience can find it, and `chat --history` can read it."""
        conversation_id = activity.info().workflow_id
        await self.store.put(
            turn_key(conversation_id, turn.number), turn.model_dump_json().encode(), "application/json"
        )

    def phases(self) -> list:
        """The model phases (the archive is a storage step)."""
        return [self.action, self.intention, self.observation, self.understanding, self.yield_answer]
