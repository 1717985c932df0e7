"""What happens to a conversation's messages, with no server: every order of tell, ask, end and hand-over."""

from __future__ import annotations

import itertools

from models.conversation import Reply
from workflows.mailbox import ENDING, HANDING_OVER, MAX_WAITING, MAX_WAITING_BYTES, Mailbox

EVENTS = ("tell", "ask", "end", "hand_over", "answer")


def drive(events: tuple[str, ...]) -> tuple[Mailbox, list[str], list[str], list[str]]:
    """Play events on a mailbox like the run and its handlers would; returns the mailbox, the messages
    accepted, those answered in this run, and those carried to the next run (by the run's own rules)."""
    box = Mailbox()
    accepted: list[str] = []
    answered: list[str] = []
    for i, event in enumerate(events):
        text = f"m{i}"
        if event == "tell" and box.tell(text) is None:
            accepted.append(text)
        elif event == "ask" and box.turned_away(text, asking=True) is None:
            box.ask(text)
            accepted.append(text)
        elif event == "end":
            box.end()
        elif event == "hand_over":
            box.hand_over()
        elif event == "answer" and (message := box.take()) is not None:
            box.answered(message[0], Reply(turn=message[0], text="ok"))
            answered.append(message[1])
    # the run drains its inbox, then (handlers done) answers carried messages when ending, then closes or continues
    while True:
        while (message := box.take()) is not None:
            box.answered(message[0], Reply(turn=message[0], text="ok"))
            answered.append(message[1])
        if not box.unanswered():
            break
        box.answer_carried()
    carried = list(box.carried) if box.continues() else []
    return box, accepted, answered, carried


def test_every_accepted_message_is_answered_once_in_order_or_carried():
    """All 3,125 orders of five events."""
    for events in itertools.product(EVENTS, repeat=5):
        box, accepted, answered, carried = drive(events)
        assert answered + carried == accepted, f"dropped, doubled or reordered after {events}"
        if box.ending:
            assert not carried and not box.continues(), f"an ended conversation answers everything: {events}"
        if carried:
            assert box.handing_over, events


def test_five_tells_then_end_during_a_hand_over_are_all_answered():
    box = Mailbox()
    for i in range(5):
        box.tell(f"m{i}")
    box.end()
    for _ in range(3):
        box.take()
    box.hand_over()  # after the third turn, ending already
    assert box.unanswered() and not box.continues()
    box.answer_carried()
    assert [box.take()[1] for _ in range(2)] == ["m3", "m4"]


def test_end_after_the_hand_over_brings_carried_messages_back():
    box = Mailbox()
    box.tell("a")
    box.tell("b")
    box.hand_over()
    box.tell("c")
    assert box.carried == ["a", "b", "c"] and box.continues()
    box.end()
    assert [box.take()[1] for _ in range(3)] == ["a", "b", "c"] and not box.continues()


def test_asks_are_answered_in_the_run_that_took_them():
    box = Mailbox()
    box.tell("t1")
    number = box.ask("a1")
    box.tell("t2")
    box.hand_over()
    assert [text for _, text in box.inbox] == ["t1", "a1"] and box.carried == ["t2"]
    assert box.turned_away("a2", asking=True) == HANDING_OVER
    box.take()
    first = box.take()
    assert first == (number, "a1")
    box.answered(number, Reply(turn=2, text="yes"))
    assert box.has_reply(number) and box.reply(number).text == "yes" and not box.replies


def test_only_awaited_replies_are_kept():
    box = Mailbox()
    box.tell("told")
    number, _ = box.take()
    box.answered(number, Reply(turn=1, text="x"))
    assert not box.replies


def test_after_end_nothing_new_is_accepted():
    box = Mailbox()
    box.end()
    assert box.turned_away("x", asking=True) == ENDING
    assert box.tell("x") == ENDING and not box.inbox


def test_a_burst_is_refused_past_the_bound_with_a_reason():
    box = Mailbox()
    for i in range(MAX_WAITING):
        assert box.tell(f"m{i}") is None
    reason = box.tell("one more")
    assert reason is not None and f"{MAX_WAITING} messages waiting" in reason
    assert box.turned_away("one more", asking=True) == reason
    box.take()
    assert box.tell("now it fits") is None


def test_the_bound_counts_bytes_too():
    box = Mailbox()
    big = "é" * 3000  # 6,000 bytes
    accepted = 0
    while box.tell(big) is None:
        accepted += 1
    assert accepted == MAX_WAITING_BYTES // 6000 and box.queued == accepted
