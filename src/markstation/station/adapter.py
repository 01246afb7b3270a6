"""The runner's operator interface for the browser: commands in, snapshots out.

The runner (:mod:`markstation.queue.runner`, the same code as ``batch run``) calls the methods of
:class:`~markstation.queue.operator.OperatorUI` on the station's runner thread and blocks in them
until the browser answers. The web side calls :meth:`BrowserOperator.submit` with one command for
the current item; a command is accepted only in the phase that asks for it and only for the item
on screen (a double click or a stale tab cannot start the next item), and only one command waits
at a time. :meth:`BrowserOperator.abort` never waits: it triggers the run's
:class:`~markstation.devices.abort.AbortGuard` (armed by the runner through :meth:`arm_abort`).

Every change bumps :attr:`BrowserOperator.version` and calls the subscribers (the SSE streams), so
the browser follows without polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from markstation.errors import MarkstationError
from markstation.i18n import _
from markstation.queue.models import Item
from markstation.queue.operator import Action, Inspection, RunSummary

if TYPE_CHECKING:
    from markstation.devices.abort import AbortGuard

#: how often ``ready`` polls the foot pedal
PEDAL_POLL_S = 0.05
#: the smallest interval between two progress notifications
PROGRESS_EVERY_S = 0.1
#: how many operator messages a snapshot keeps
KEEP_MESSAGES = 12


class Phase(StrEnum):
    IDLE = "idle"  # no run
    STARTING = "starting"  # a run was asked for; the runner opens the device and the store lock
    LOADING = "loading"  # an item is shown; its job is being built
    SERIAL = "serial"  # waiting for the factory serial
    READY = "ready"  # serial confirmed: waiting for Mark (button, Enter, pedal), Frame or Skip
    FRAMING = "framing"  # red pointer until stopped
    BUSY = "busy"  # a command was accepted; the runner works on it
    MARKING = "marking"  # the device runs the job: Abort
    INSPECT = "inspect"  # marked: waiting for Pass / Fail
    FAILED = "failed"  # refused before emission: Retry / Next / Stop


#: command -> the phases that accept it
COMMANDS: dict[str, tuple[Phase, ...]] = {
    "serial": (Phase.SERIAL,),
    "skip": (Phase.SERIAL, Phase.READY),
    "frame": (Phase.READY,),
    "mark": (Phase.READY,),
    "stop-frame": (Phase.FRAMING,),
    "pass": (Phase.INSPECT,),
    "fail": (Phase.INSPECT,),
    "retry": (Phase.FAILED,),
    "next": (Phase.FAILED,),
    "quit": (Phase.SERIAL, Phase.READY, Phase.FAILED),
}


class CommandRefused(MarkstationError):
    """A browser command that does not fit the station's current phase or item."""


class StationClosing(MarkstationError):
    """The station shuts down while the runner waits for the operator."""

    exit_code = 2


@dataclass(frozen=True)
class Command:
    kind: str
    code: str
    text: str = ""


def item_view(item: Item) -> dict[str, Any]:
    return {
        "code": item.code,
        "serial": item.serial,
        "make": item.make,
        "model": item.model,
        "caliber": item.caliber,
        "owner": item.owner,
        "layout": item.layout,
        "batch": item.batch_id,
        "state": item.state.value,
    }


class BrowserOperator:
    """:class:`~markstation.queue.operator.OperatorUI` answered by browser commands."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: Command | None = None
        self._closing = False
        self.version = 0
        self.phase = Phase.IDLE
        self.item: Item | None = None
        self.position = 0
        self.total = 0
        self.estimate_s: float | None = None
        self.fraction = 0.0
        self.elapsed_s = 0.0
        self.remaining_s = 0.0
        self.error: str | None = None  # shown on the item screen (serial mismatch, refusals)
        self.outcome: str | None = None  # what the last item became: marked, interrupted, …
        self.last: dict[str, Any] | None = None  # the last item worked, with its outcome
        self.messages: list[str] = []
        self.summary_data: dict[str, Any] | None = None
        self.run_operator: str | None = None
        self._guard: AbortGuard | None = None
        self._abort_reason: str | None = None  # asked after Mark, before the guard was armed
        self._mark_accepted = False  # Mark accepted, the run's guard not armed yet
        self._frame_stop = threading.Event()
        self._last_progress = 0.0
        self._subscribers: list[Callable[[], None]] = []
        #: monotonic time of the last phase change (the benchmark reads it)
        self.changed_at = time.monotonic()

    # --- notifications -------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from any thread, quickly) after every change; returns the unsubscribe."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _changed_locked(self) -> list[Callable[[], None]]:
        self.version += 1
        self.changed_at = time.monotonic()
        self._cond.notify_all()
        return list(self._subscribers)

    def _notify(self, callbacks: list[Callable[[], None]]) -> None:
        for cb in callbacks:
            try:
                cb()
            except Exception:  # a closed event loop: that subscriber is gone
                continue

    def _set(self, **changes: Any) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(self, key, value)
            callbacks = self._changed_locked()
        self._notify(callbacks)

    def wait_version(self, after: int, timeout: float) -> int:
        """Block until :attr:`version` exceeds ``after`` or ``timeout`` passes; the version."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.version <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.version

    # --- the web side ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            item = item_view(self.item) if self.item is not None else None
            return {
                "version": self.version,
                "phase": self.phase.value,
                "item": item,
                "position": self.position,
                "total": self.total,
                "estimate_s": self.estimate_s,
                "progress": {
                    "fraction": round(self.fraction, 4),
                    "elapsed_s": round(self.elapsed_s, 2),
                    "remaining_s": round(self.remaining_s, 2),
                },
                "error": self.error,
                "outcome": self.outcome,
                "last": dict(self.last) if self.last else None,
                "messages": list(self.messages),
                "summary": dict(self.summary_data) if self.summary_data else None,
                "operator": self.run_operator,
                "screen": self.screen_key_locked(),
            }

    def screen_key_locked(self) -> str:
        """What the item screen shows apart from the progress bar: a change means re-render."""
        code = self.item.code if self.item else ""
        return f"{self.phase.value}|{code}|{self.error or ''}|{self.outcome or ''}|{len(self.messages)}"

    def begin(self, operator: str) -> bool:
        """A run is starting for ``operator``; False when one is already going."""
        with self._cond:
            if self.phase is not Phase.IDLE:
                return False
            self.phase = Phase.STARTING
            self.run_operator = operator
            self.error = None
            self.summary_data = None
            self.messages = []
            callbacks = self._changed_locked()
        self._notify(callbacks)
        return True

    def run_failed(self, message: str) -> None:
        """The run could not start or ended with an error (lock held by another runner, device)."""
        self._set(phase=Phase.IDLE, error=message, item=None, run_operator=None)

    def submit(self, kind: str, code: str, text: str = "") -> None:
        """Hand the runner one command for the item ``code``; CommandRefused when it does not fit."""
        phases = COMMANDS.get(kind)
        if phases is None:
            raise CommandRefused(_("unknown command '{kind}'").format(kind=kind))
        with self._cond:
            if self._closing:
                raise CommandRefused(_("the station is shutting down"))
            if self.item is None or self.item.code != code:
                shown = self.item.code if self.item else "no item"
                raise CommandRefused(
                    _("'{code}' is not the item on screen ({shown})").format(code=code, shown=shown)
                )
            if self.phase not in phases:
                raise CommandRefused(
                    _("'{kind}' is not possible now (the station is {phase})").format(
                        kind=kind, phase=self.phase.value
                    )
                )
            if kind == "stop-frame":
                self._frame_stop.set()
                return
            self._pending = Command(kind, code, text)
            self.phase = Phase.BUSY
            if kind == "mark":
                self._abort_reason = None
                self._mark_accepted = True
            callbacks = self._changed_locked()
        self._notify(callbacks)

    def abort(self, reason: str) -> bool:
        """Stop emission now (the Abort button, Esc, Ctrl-C). True when a run could be aborted.

        Never blocks: :meth:`AbortGuard.trigger` starts the driver's abort on its own thread. Asked
        between an accepted Mark and the start of the run, the abort is kept and triggered as soon
        as the runner arms its guard (so the job is stopped before its first byte).
        """
        with self._cond:
            guard = self._guard
            framing = self.phase is Phase.FRAMING
            armed_soon = guard is None and self._mark_accepted
            if armed_soon:
                self._abort_reason = reason
        if guard is not None:
            guard.trigger(reason)
            return True
        if framing:
            self._frame_stop.set()
            return True
        return armed_soon

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """The station stops: every wait returns QUIT (inspection raises StationClosing)."""
        with self._cond:
            self._closing = True
            self._frame_stop.set()
            callbacks = self._changed_locked()
        self._notify(callbacks)

    # --- the runner side (OperatorUI) ------------------------------------------------------------

    def arm_abort(self, guard: AbortGuard | None) -> None:
        """The guard of the run that is starting (None when it ended): what Abort triggers."""
        with self._cond:
            self._guard = guard
            reason, self._abort_reason = self._abort_reason, None
            if guard is None:
                self._mark_accepted = False
        if guard is not None and reason is not None:
            guard.trigger(reason)

    def _wait(self, accept: tuple[str, ...], poll: Callable[[], bool] | None = None) -> Command:
        """Block for the next command of one of ``accept``; ``quit`` when the station closes.

        ``poll`` (the pedal) is asked every PEDAL_POLL_S; True counts as a ``mark`` command.
        """
        with self._cond:
            while True:
                if self._closing:
                    return Command("quit", self.item.code if self.item else "")
                pending = self._pending
                if pending is not None:
                    self._pending = None
                    if pending.kind in accept:
                        return pending
                if poll is None:
                    self._cond.wait(1.0)
                    continue
                self._cond.wait(PEDAL_POLL_S)
                if self._pending is None and not self._closing:
                    self._cond.release()
                    try:
                        pressed = poll()
                    finally:
                        self._cond.acquire()
                    if pressed and self._pending is None and self.phase is Phase.READY:
                        self.phase = Phase.BUSY
                        self._abort_reason = None
                        self._mark_accepted = True
                        return Command("mark", self.item.code if self.item else "", "pedal")

    def _phase(self, phase: Phase, **changes: Any) -> None:
        self._set(phase=phase, **changes)

    def show_item(self, item: Item, position: int, total: int) -> None:
        self._phase(
            Phase.LOADING,
            item=item,
            position=position,
            total=total,
            estimate_s=None,
            error=None,
            outcome=None,
            fraction=0.0,
            elapsed_s=0.0,
            remaining_s=0.0,
        )

    def set_estimate(self, seconds: float) -> None:
        self._set(estimate_s=seconds)

    def ask_serial(self, item: Item) -> str | Action:
        self._phase(Phase.SERIAL)
        cmd = self._wait(("serial", "skip", "quit"))
        if cmd.kind == "skip":
            self._finish_item(item, "passed-over")
            return Action.SKIP
        if cmd.kind == "quit":
            return Action.QUIT
        self._set(error=None)
        return cmd.text

    def serial_mismatch(self, item: Item, typed: str) -> None:
        self._set(error=f"mismatch:{typed}")

    def ready(self, item: Item, estimate_s: float, pedal: Callable[[], bool]) -> Action:
        self._phase(Phase.READY, estimate_s=estimate_s)
        cmd = self._wait(("mark", "frame", "skip", "quit"), poll=pedal)
        if cmd.kind == "skip":
            self._finish_item(item, "passed-over")
        return {
            "mark": Action.START,
            "frame": Action.FRAME,
            "skip": Action.SKIP,
        }.get(cmd.kind, Action.QUIT)

    def framing(self, item: Item) -> Callable[[], bool]:
        self._frame_stop.clear()
        self._phase(Phase.FRAMING)
        return self._frame_stop.is_set

    def start_progress(self, item: Item, estimate_s: float) -> None:
        self._last_progress = 0.0
        self._phase(Phase.MARKING, fraction=0.0, elapsed_s=0.0, remaining_s=estimate_s)

    def progress(self, fraction: float, elapsed_s: float, remaining_s: float) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S and fraction < 1.0:
            with self._cond:
                self.fraction, self.elapsed_s, self.remaining_s = fraction, elapsed_s, remaining_s
            return
        self._last_progress = now
        self._set(fraction=fraction, elapsed_s=elapsed_s, remaining_s=remaining_s)

    def end_progress(self) -> None:
        self._phase(Phase.BUSY)

    def inspect(self, item: Item) -> Inspection:
        self._phase(Phase.INSPECT, outcome="marked")
        cmd = self._wait(("pass", "fail"))
        if cmd.kind == "quit":
            raise StationClosing(
                _("{code}: marked, inspection not recorded (station closed)").format(code=item.code)
            )
        result: Inspection = Inspection("pass" if cmd.kind == "pass" else "fail", cmd.text.strip())
        self._finish_item(item, f"inspected-{result.result}")
        return result

    def after_failure(self, item: Item, reason: str) -> Action:
        self._phase(Phase.FAILED, outcome="failed", error=f"failed:{reason}")
        cmd = self._wait(("retry", "next", "quit"))
        if cmd.kind == "retry":
            return Action.RETRY
        if cmd.kind == "next":
            self._finish_item(item, "failed")
            return Action.NEXT
        return Action.QUIT

    def _finish_item(self, item: Item, outcome: str) -> None:
        self._set(last={"code": item.code, "outcome": outcome, "serial": item.serial})

    def message(self, text: str) -> None:
        with self._cond:
            self.messages = [*self.messages, text][-KEEP_MESSAGES:]
            callbacks = self._changed_locked()
        self._notify(callbacks)

    def summary(self, summary: RunSummary) -> None:
        data = summary.as_dict()
        with self._cond:
            if self.item is not None and self.item.code in summary.interrupted:
                self.outcome = "interrupted"
                self.last = {
                    "code": self.item.code,
                    "outcome": "interrupted",
                    "serial": self.item.serial,
                }
            self.summary_data = data
            callbacks = self._changed_locked()
        self._notify(callbacks)

    def run_ended(self) -> None:
        """The runner thread left ``run_batch``: back to idle (the last item stays for the screen)."""
        with self._cond:
            self.phase = Phase.IDLE
            self._pending = None
            self._guard = None
            self.run_operator = None
            callbacks = self._changed_locked()
        self._notify(callbacks)
