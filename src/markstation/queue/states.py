"""Item states and the only transitions allowed between them (also enforced by the store in SQL)."""

from __future__ import annotations

from enum import StrEnum

from markstation.i18n import pgettext


class State(StrEnum):
    PENDING = "pending"  # waiting to be marked
    MARKING = "marking"  # intent committed; the laser may be firing (or may have fired)
    MARKED = "marked"  # the device reported completion, or an operator confirmed the mark
    FAILED = "failed"  # refused before emission could start: safe to retry
    INTERRUPTED = "interrupted"  # unknown whether metal was marked: an operator must resolve
    SKIPPED = "skipped"  # set aside for now (firearm not at hand); can be requeued
    VOIDED = "voided"  # the code must never be marked (withdrawn by the registry)


#: (from, to) pairs; anything else is refused by the store
TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.PENDING, State.MARKING),
        (State.FAILED, State.MARKING),
        (State.MARKING, State.MARKED),
        (State.MARKING, State.FAILED),
        (State.MARKING, State.INTERRUPTED),
        (State.INTERRUPTED, State.MARKED),  # resolve --marked
        (State.INTERRUPTED, State.PENDING),  # resolve --not-marked
        (State.PENDING, State.SKIPPED),
        (State.FAILED, State.SKIPPED),
        (State.SKIPPED, State.PENDING),  # requeue
        (State.PENDING, State.VOIDED),
        (State.FAILED, State.VOIDED),
        (State.SKIPPED, State.VOIDED),
    }
)

#: states the runner picks items from
RUNNABLE: tuple[State, ...] = (State.PENDING, State.FAILED)
#: states from which the code is considered used for good
FINAL: tuple[State, ...] = (State.MARKED, State.VOIDED)


def state_label(state: State) -> str:
    """The state's name in the active language, for people (the value stays the stored key)."""
    labels = {
        State.PENDING: pgettext("item state", "pending"),
        State.MARKING: pgettext("item state", "marking"),
        State.MARKED: pgettext("item state", "marked"),
        State.FAILED: pgettext("item state", "failed"),
        State.INTERRUPTED: pgettext("item state", "interrupted"),
        State.SKIPPED: pgettext("item state", "skipped"),
        State.VOIDED: pgettext("item state", "voided"),
    }
    return labels[state]
