"""What the runner asks of the person at the station, as a small interface.

The CLI implements it with prompts, a click progress bar and the foot pedal; tests implement it with
scripted answers. The runner never reads the terminal itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

from markstation.queue.models import Item


class Action(Enum):
    START = "start"  # mark now (Enter or the foot pedal)
    FRAME = "frame"  # trace the mark with the red pointer first
    SKIP = "skip"  # leave this item pending and go on with the next one
    QUIT = "quit"  # stop the run; the item stays as it is
    RETRY = "retry"  # after a failure that is safe to retry
    NEXT = "next"  # after a failure: leave the item failed, go on


@dataclass(frozen=True)
class Inspection:
    result: Literal["pass", "fail"]
    note: str = ""


@dataclass
class RunSummary:
    """What one run did, for the operator and the journal."""

    marked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # job could not be built; item left pending
    passed_over: list[str] = field(default_factory=list)  # skipped by the operator in this run
    inspection_failed: list[str] = field(default_factory=list)
    remaining: int = 0
    elapsed_s: float = 0.0
    stopped: str | None = None  # why the run stopped early, None when the queue was worked through

    def as_dict(self) -> dict[str, object]:
        return {
            "marked": len(self.marked),
            "failed": len(self.failed),
            "interrupted": len(self.interrupted),
            "refused": len(self.refused),
            "passed_over": len(self.passed_over),
            "inspection_failed": len(self.inspection_failed),
            "remaining": self.remaining,
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped": self.stopped,
        }


class OperatorUI(Protocol):
    def show_item(self, item: Item, position: int, total: int) -> None:
        """Show the firearm to fetch (make, model, factory serial) and the code to mark."""

    def ask_serial(self, item: Item) -> str | Action:
        """The factory serial as typed or scanned, or Action.SKIP / Action.QUIT."""

    def serial_mismatch(self, item: Item, typed: str) -> None: ...

    def ready(self, item: Item, estimate_s: float, pedal: Callable[[], bool]) -> Action:
        """Wait for START (Enter, or ``pedal()`` turning True), FRAME, SKIP or QUIT."""

    def framing(self, item: Item) -> Callable[[], bool]:
        """Announce framing; return the predicate that says when to stop the red pointer."""

    def start_progress(self, item: Item, estimate_s: float) -> None: ...

    def progress(self, fraction: float, elapsed_s: float, remaining_s: float) -> None: ...

    def end_progress(self) -> None: ...

    def inspect(self, item: Item) -> Inspection:
        """The inspection result of a finished mark."""

    def after_failure(self, item: Item, reason: str) -> Action:
        """RETRY, NEXT or QUIT after a failure that happened before emission could start."""

    def message(self, text: str) -> None: ...

    def summary(self, summary: RunSummary) -> None: ...


class QuietUI:
    """For unattended runs and tests: no prompts (auto mode never asks), messages kept in a list."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def show_item(self, item: Item, position: int, total: int) -> None:
        self.messages.append(f"[{position}/{total}] {item.code}")

    def ask_serial(self, item: Item) -> str | Action:
        return item.serial

    def serial_mismatch(self, item: Item, typed: str) -> None:
        self.messages.append(f"serial mismatch: {typed}")

    def ready(self, item: Item, estimate_s: float, pedal: Callable[[], bool]) -> Action:
        return Action.START

    def framing(self, item: Item) -> Callable[[], bool]:
        return lambda: True

    def start_progress(self, item: Item, estimate_s: float) -> None:
        pass

    def progress(self, fraction: float, elapsed_s: float, remaining_s: float) -> None:
        pass

    def end_progress(self) -> None:
        pass

    def inspect(self, item: Item) -> Inspection:
        return Inspection("pass")

    def after_failure(self, item: Item, reason: str) -> Action:
        return Action.QUIT

    def message(self, text: str) -> None:
        self.messages.append(text)

    def summary(self, summary: RunSummary) -> None:
        self.messages.append(f"summary: {summary.as_dict()}")
