"""Operator decisions on single items, each one journaled with its reason.

* :func:`resolve` — an ``interrupted`` item after the technician inspected the firearm:
  ``marked=True`` -> ``marked`` (the code is used), ``marked=False`` -> back to ``pending``.
* :func:`skip` — set a pending or failed item aside (firearm not at hand); :func:`requeue` undoes it.
* :func:`void` — the code must never be marked (withdrawn by the registry, firearm destroyed…);
  final. A marked code cannot be voided: it is on the metal.
"""

from __future__ import annotations

from markstation.errors import BatchError
from markstation.i18n import _
from markstation.queue.models import Actor, Item
from markstation.queue.states import State
from markstation.queue.store import Store


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise BatchError(_("a reason is required (--reason TEXT): it goes into the journal"))
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


# (allowed from, to, record type) of the decisions that only move the item and record why
_MOVES: dict[str, tuple[tuple[State, ...], State, str]] = {
    "skip": ((State.PENDING, State.FAILED), State.SKIPPED, "skipped"),
    "requeue": ((State.SKIPPED,), State.PENDING, "requeued"),
    "void": ((State.PENDING, State.FAILED, State.SKIPPED), State.VOIDED, "voided"),
}


def _move(store: Store, name: str, code: str, reason: str, actor: Actor) -> Item:
    allowed, to, record_type = _MOVES[name]
    why = _reason(reason)
    return store.transition(
        code,
        allowed,
        to,
        record_type=record_type,
        actor=actor,
        payload={"reason": why},
        updates={"reason": why},
    )


def skip(store: Store, code: str, *, reason: str, actor: Actor) -> Item:
    return _move(store, "skip", code, reason, actor)


def requeue(store: Store, code: str, *, reason: str, actor: Actor) -> Item:
    return _move(store, "requeue", code, reason, actor)


def void(store: Store, code: str, *, reason: str, actor: Actor) -> Item:
    return _move(store, "void", code, reason, actor)
