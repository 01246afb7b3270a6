"""A run with a progress bar: the driver works on a thread, this thread draws and waits.

The driver runs in a worker thread while the calling thread draws the bar, so the wait for an abort
to be confirmed is bounded here (``ABORT_WAIT_S``) instead of inside a blocked device call. Ctrl-C,
the e-stop input and :meth:`AbortGuard.trigger` all stop it through the one
:class:`~markstation.devices.abort.AbortGuard`.
"""

from __future__ import annotations

import io
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import click

from markstation.devices.abort import AbortGuard
from markstation.devices.base import NullListener
from markstation.errors import Aborted, DeviceError, MarkstationError
from markstation.i18n import _

if TYPE_CHECKING:
    from markstation.devices.base import Driver, RunResult
    from markstation.job.ir import Job

#: how long to wait for the driver to confirm an abort before giving up on it
ABORT_WAIT_S = 30.0
#: bar resolution (steps of 0.1 %)
BAR_STEPS = 1000


@dataclass
class ProgressState(NullListener):
    """What the worker thread reports; the drawing thread reads it."""

    fraction: float = 0.0

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        self.fraction = min(1.0, max(self.fraction, fraction))

    def on_finished(self, result: RunResult) -> None:
        self.fraction = 1.0


@dataclass
class _Outcome:
    result: RunResult | None = None
    error: BaseException | None = None


def run_with_progress(
    driver: Driver,
    job: Job,
    *,
    show_bar: bool = True,
    tick_s: float = 0.1,
    guard: AbortGuard | None = None,
) -> RunResult:
    """Run ``job`` with a progress bar; Ctrl-C or the e-stop aborts (emission off).

    Pass ``guard`` to abort from elsewhere (a UI button calls ``guard.trigger(reason)``). Raises
    whatever the driver raised; after an abort an :class:`Aborted` that says what to do next.
    """
    guard = guard if guard is not None else AbortGuard(driver)
    state = ProgressState()
    outcome = _Outcome()

    def work() -> None:
        try:
            outcome.result = driver.run(job, guard.listener(state))
        except BaseException as exc:  # handed over to the drawing thread
            outcome.error = exc

    worker = threading.Thread(target=work, name="markstation-run", daemon=True)
    sink: TextIO = sys.stderr if show_bar else io.StringIO()
    with guard, click.progressbar(length=BAR_STEPS, label=_("marking"), file=sink) as bar:
        worker.start()
        shown = 0
        while worker.is_alive() and not guard.triggered:
            worker.join(tick_s)
            target = int(state.fraction * BAR_STEPS)
            if target > shown:
                bar.update(target - shown)
                shown = target
        if guard.triggered:
            worker.join(ABORT_WAIT_S)  # a second Ctrl-C only asks the driver again
        elif outcome.result is not None:
            bar.update(BAR_STEPS - shown)
    if guard.triggered and outcome.result is None:
        raise _aborted(guard, worker, outcome.error)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.result is not None
    return outcome.result  # finished (also when the abort came after the board was done)


def _aborted(guard: AbortGuard, worker: threading.Thread, error: BaseException | None) -> Exception:
    """The error to report after an abort: the device's own failure, or what the abort left."""
    if isinstance(error, MarkstationError) and not isinstance(error, Aborted):
        return error  # the device failed on its own while we were stopping it
    reason = guard.reason
    if worker.is_alive() or guard.error is not None:
        return Aborted(
            _(
                "interrupted ({reason}): the device did not confirm the abort; switch the laser "
                "off at the machine and inspect the part"
            ).format(reason=reason),
            may_have_emitted=True,
        )
    emitted = error.may_have_emitted if isinstance(error, DeviceError) else guard.emission_possible
    if emitted:
        text = _(
            "interrupted ({reason}): marking aborted and emission switched off; the part may be "
            "partly marked, inspect it"
        )
    else:
        text = _(
            "interrupted ({reason}): marking aborted and emission switched off; nothing was fired"
        )
    return Aborted(text.format(reason=reason), may_have_emitted=emitted)


__all__ = ["ABORT_WAIT_S", "ProgressState", "run_with_progress"]
