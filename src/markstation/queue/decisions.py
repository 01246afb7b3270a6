"""Operator decisions on single items, each one journaled with its reason.

* :func:`resolve` — an ``interrupted`` item after the technician inspected the firearm:
  ``marked=True`` -> ``marked`` (the code is used), ``marked=False`` -> back to ``pending``.
* :func:`skip` — set a pending or failed item aside (firearm not at hand); :func:`requeue` undoes it.
* :func:`void` — the code must never be marked (withdrawn by the registry, firearm destroyed…);
  final. A marked code cannot be voided: it is on the metal.
"""

from __future__ import annotations

from markstation.errors import BatchError
from markstation.queue.states import State
from markstation.queue.store import Actor, Item, Store


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise BatchError("a reason is required (--reason TEXT): it goes into the journal")
    return text


def resolve(store: Store, code: str, *, marked: bool, reason: str, actor: Actor) -> Item:
    why = _reason(reason)
    to = State.MARKED if marked else State.PENDING
    return store.transition(
        code,
        [State.INTERRUPTED],
        to,
        record_type="resolution",
        actor=actor,
        payload={"resolution": "marked" if marked else "not-marked", "reason": why},
        updates={"reason": why, **({"inspection": "resolved-marked"} if marked else {})},
    )


def skip(store: Store, code: str, *, reason: str, actor: Actor) -> Item:
    why = _reason(reason)
    return store.transition(
        code,
        [State.PENDING, State.FAILED],
        State.SKIPPED,
        record_type="skipped",
        actor=actor,
        payload={"reason": why},
        updates={"reason": why},
    )


def requeue(store: Store, code: str, *, reason: str, actor: Actor) -> Item:
    why = _reason(reason)
    return store.transition(
        code,
        [State.SKIPPED],
        State.PENDING,
        record_type="requeued",
        actor=actor,
        payload={"reason": why},
        updates={"reason": why},
    )


def void(store: Store, code: str, *, reason: str, actor: Actor) -> Item:
    why = _reason(reason)
    return store.transition(
        code,
        [State.PENDING, State.FAILED, State.SKIPPED],
        State.VOIDED,
        record_type="voided",
        actor=actor,
        payload={"reason": why},
        updates={"reason": why},
    )
