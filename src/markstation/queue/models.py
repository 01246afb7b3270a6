"""The queue's data: items as imported and as stored, who acts, and one change to one item.

Plain frozen dataclasses with no storage behind them, so every backend (SQLite today, a server
database later), the importer, the runner and the reports share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markstation.queue.states import State


@dataclass(frozen=True)
class Actor:
    """Who does something, and where: stamped on every journal record."""

    operator: str
    station: str


@dataclass(frozen=True)
class NewItem:
    """One validated row of a registry batch, ready to store."""

    code: str
    serial: str
    layout: str
    line: int
    make: str = ""
    model: str = ""
    caliber: str = ""
    owner: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """An item as stored."""

    id: int
    batch_id: int
    code: str
    serial: str
    make: str
    model: str
    caliber: str
    owner: str
    layout: str
    extra: dict[str, str]
    line: int
    state: State
    attempts: int
    inspection: str | None
    inspection_note: str | None
    reason: str | None
    job_sha256: str | None
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "batch": self.batch_id,
            "serial": self.serial,
            "make": self.make,
            "model": self.model,
            "caliber": self.caliber,
            "owner": self.owner,
            "layout": self.layout,
            "state": self.state.value,
            "attempts": self.attempts,
            "inspection": self.inspection,
            "inspection_note": self.inspection_note,
            "reason": self.reason,
            "job_sha256": self.job_sha256,
            "updated_at": self.updated_at,
            "extra": dict(self.extra),
        }


#: item fields a transition or annotation may set
UPDATABLE: frozenset[str] = frozenset({"inspection", "inspection_note", "reason", "job_sha256"})


@dataclass(frozen=True)
class ItemChange:
    """One guarded change to one item plus the journal record that goes with it.

    A backend applies it in a single transaction: only if the item is in one of ``allowed_from``,
    set ``state`` to ``to`` (``None``: keep it), set ``updates``, count an attempt if asked, and
    append ``record_type`` with ``payload``, or change nothing at all.
    """

    code: str
    allowed_from: tuple[State, ...]
    to: State | None
    record_type: str
    actor: Actor
    payload: Mapping[str, Any]
    updates: Mapping[str, Any] = field(default_factory=dict)
    count_attempt: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.updates) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update item fields {sorted(unknown)}")
