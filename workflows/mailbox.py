"""What happens to a conversation's messages: one small, deterministic class with no Temporal calls.

A message is accepted (an `ask`, which waits for its reply, or a `tell`), answered once, in arrival order,
and never dropped once accepted. At a hand-over (the run is about to continue as new) the messages after
the last one an `ask` waits on are carried to the next run, in order. `end` finishes the conversation
once everything accepted is answered, carried messages included. A full mailbox refuses new messages
with a reason, so what a hand-over carries stays far below Temporal's payload limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from models.conversation import Reply

MAX_WAITING = 64  # messages accepted and not yet answered, carried ones included
MAX_WAITING_BYTES = 256 * 1024  # their text, UTF-8: a continue-as-new input stays far below 2 MiB
HANDING_OVER = "the conversation is moving to a fresh run: send the message again"
ENDING = "the conversation is ending"


def full(count: int) -> str:
    return f"the conversation has {count} messages waiting for a reply: send this one after some are answered"


@dataclass
class Mailbox:
    inbox: deque[tuple[int, str]] = field(default_factory=deque)  # answered in this run, in order
    carried: list[str] = field(default_factory=list)  # for the next run (told after the hand-over began)
    awaited: set[int] = field(default_factory=set)  # messages an `ask` waits on
    replies: dict[int, Reply] = field(default_factory=dict)  # replies an `ask` has not taken yet
    ending: bool = False
    handing_over: bool = False
    last_number: int = 0

    # --- accepting -------------------------------------------------------------------------------
    def turned_away(self, text: str, asking: bool) -> str | None:
        """Why a message cannot be accepted now, or None."""
        if self.ending:
            return ENDING
        if asking and self.handing_over:  # an ask's reply can only come from the run that took it
            return HANDING_OVER
        texts = [t for _, t in self.inbox] + self.carried
        if len(texts) >= MAX_WAITING or sum(len(t.encode()) for t in texts) + len(text.encode()) > MAX_WAITING_BYTES:
            return full(len(texts))
        return None

    def ask(self, text: str) -> int:
        """Accept a message whose reply the sender waits for; its number."""
        number = self._enqueue(text)
        self.awaited.add(number)
        return number

    def tell(self, text: str) -> str | None:
        """Accept a fire-and-forget message (carried over during a hand-over); the reason when refused."""
        if (reason := self.turned_away(text, asking=False)) is not None:
            return reason
        if self.handing_over:
            self.carried.append(text)
        else:
            self._enqueue(text)
        return None

    def end(self) -> None:
        """No new messages; the conversation closes once every accepted one is answered, carried ones
        included: there is no next run to take them."""
        self.ending = True
        self.answer_carried()

    def answer_carried(self) -> None:
        """Carried messages go back into this run's inbox, in order (a hand-over overtaken by `end`)."""
        for text in self.carried:
            self._enqueue(text)
        self.carried.clear()

    def _enqueue(self, text: str) -> int:
        self.last_number += 1
        self.inbox.append((self.last_number, text))
        return self.last_number

    # --- answering -------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the run has something to do: a message, or an end or hand-over to act on."""
        return bool(self.inbox) or self.ending or self.handing_over

    def take(self) -> tuple[int, str] | None:
        """The next message to answer in this run; None when its inbox is empty."""
        return self.inbox.popleft() if self.inbox else None

    def answered(self, number: int, reply: Reply) -> None:
        """Keep the reply only when an `ask` waits for it."""
        if number in self.awaited:
            self.replies[number] = reply

    def reply(self, number: int) -> Reply:
        """Hand an `ask` its reply (after `has_reply`)."""
        self.awaited.discard(number)
        return self.replies.pop(number)

    def has_reply(self, number: int) -> bool:
        return number in self.replies

    # --- moving to a new run ---------------------------------------------------------------------
    def hand_over(self) -> None:
        """A hard bound, even under steady traffic: no new asks in this run. Queued messages up to the last
        one an `ask` waits on are still answered here; the rest go to the next run, in order."""
        self.handing_over = True
        asks = [i for i, (number, _) in enumerate(self.inbox) if number in self.awaited]
        keep = asks[-1] + 1 if asks else 0
        while len(self.inbox) > keep:
            self.carried.insert(0, self.inbox.pop()[1])

    def unanswered(self) -> bool:
        """Something accepted has no reply and no next run to get one from (checked once the inbox is empty
        and the handlers are done): a message that arrived meanwhile, or carried ones while ending."""
        return bool(self.inbox) or (self.ending and bool(self.carried))

    def continues(self) -> bool:
        """Whether this run ends by continuing as new (a hand-over not overtaken by `end`)."""
        return self.handing_over and not self.ending

    @property
    def queued(self) -> int:
        return len(self.inbox)
