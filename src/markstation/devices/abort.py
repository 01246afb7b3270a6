"""The one abort guard: Ctrl-C, the e-stop input and a UI button stop a running device the same way.

Used around every operation that can move a beam (``mark``, ``frame``, ``batch run``, the station)::

    with AbortGuard(driver) as guard:
        result = driver.run(job, guard.listener(progress))
    if guard.reason: ...  # aborted: why, and whether emission had become possible

While entered, SIGINT (main thread only; the previous handler is restored on exit) and the e-stop
input (polled on a watcher thread) call :meth:`AbortGuard.trigger`, which any thread may also call.
``trigger`` never calls ``driver.abort()`` itself: it starts a thread for it, because a signal
handler runs on the main thread, possibly in the middle of that thread's own USB or serial
transaction under the driver's (re-entrant) lock. Exit waits for those abort calls to finish, so
emission is off when the ``with`` block is left.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from markstation.devices.base import Driver, FanOut, NullListener, RunListener
from markstation.errors import DeviceError
from markstation.i18n import N_, _
from markstation.job.ir import Job

log = logging.getLogger(__name__)

#: how often the e-stop input is polled while the guard is entered
ESTOP_POLL_S = 0.05
#: how long leaving the guard waits for the driver to confirm an abort it was asked for
ABORT_JOIN_S = 10.0

CTRL_C = "Ctrl-C"
ESTOP = N_("e-stop input")  # translated where it is given as a reason


class AbortGuard(NullListener):
    """Turns Ctrl-C, the e-stop input and :meth:`trigger` into ``driver.abort()``, and remembers why.

    It is also a run listener (pass :meth:`listener` to ``driver.run``) so that it knows whether
    emission had become possible, and so that an abort asked before ``run()`` started (which clears
    the driver's abort flag) is asked again as soon as the run begins.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        estop: bool = True,
        poll_s: float = ESTOP_POLL_S,
        sigint: bool = True,
    ) -> None:
        self.driver = driver
        self.estop = estop
        self.poll_s = poll_s
        self.sigint = sigint
        # re-entrant: the SIGINT handler may run on the main thread while it holds the lock
        self._lock = threading.RLock()
        self._reason: str | None = None
        self._error: BaseException | None = None
        self._emission_possible = False
        self._triggered = threading.Event()
        self._done = threading.Event()
        self._old_handler: Any = None
        self._watcher: threading.Thread | None = None
        self._aborters: list[threading.Thread] = []

    # --- what the caller reads afterwards ------------------------------------------------------------

    @property
    def reason(self) -> str | None:
        """Why the first abort was asked (``"Ctrl-C"``, ``"e-stop input"``, a UI's text), or None."""
        return self._reason

    @property
    def triggered(self) -> bool:
        return self._triggered.is_set()

    @property
    def error(self) -> BaseException | None:
        """The first exception raised on one of the guard's threads (e-stop watcher, abort call).

        Set means the guard could not fully watch or stop the device: treat the run as unknown.
        """
        return self._error

    @property
    def emission_possible(self) -> bool:
        """True once the driver announced the first byte that could fire (see :meth:`listener`)."""
        return self._emission_possible

    def wait(self, timeout: float | None = None) -> bool:
        """Block until an abort is asked (True) or ``timeout`` passes (False)."""
        return self._triggered.wait(timeout)

    # --- asking for the abort ----------------------------------------------------------------------

    def trigger(self, reason: str) -> None:
        """Stop the device now. Any thread, any time; the first reason is the one kept.

        Every call asks the driver again (a second Ctrl-C repeats the abort).
        """
        with self._lock:
            if self._reason is None:
                self._reason = reason
            aborter = threading.Thread(target=self._abort_device, name="markstation-abort")
            aborter.daemon = True
            # started before it is listed: leaving the guard joins every listed aborter, and a
            # waiter woken by _triggered may leave at once (joining an unstarted thread raises)
            aborter.start()
            self._aborters.append(aborter)
        self._triggered.set()

    def _abort_device(self) -> None:
        try:
            self.driver.abort()
        except BaseException as exc:  # recorded for the caller; this thread has nobody to tell
            log.error("abort of %s failed: %s", self.driver.url, exc)
            self._record(exc)

    def _record(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.trigger(CTRL_C)

    def _watch(self) -> None:
        while not self._done.wait(self.poll_s):
            if not self.poll_once():
                return

    def poll_once(self) -> bool:
        """One e-stop poll, as the watcher thread makes it; False once watching must end.

        A device error is recorded in :attr:`error`: this poll may have been the transfer that
        found the board reset, so the caller treats the run as unknown (the driver notes the
        failed transfer too and will not report the run complete).
        """
        try:
            pressed = self.driver.read_inputs().estop
        except (DeviceError, OSError) as exc:
            self._record(exc)
            return False
        except Exception as exc:
            # a bug in reading the inputs: without the watcher nobody sees the e-stop, so stop
            self._record(exc)
            self.trigger(
                _("e-stop watcher failed ({error})").format(error=f"{type(exc).__name__}: {exc}")
            )
            return False
        if pressed:
            self.trigger(_(ESTOP))
            return False
        return True

    # --- as a run listener ---------------------------------------------------------------------------

    def listener(self, inner: RunListener | None = None) -> RunListener:
        """The listener to hand ``driver.run``: this guard first, then ``inner``."""
        return self if inner is None else FanOut(self, inner)

    def on_started(self, job: Job) -> None:
        if self.triggered:
            self.driver.abort()  # run() cleared the driver's flag: ask again before anything fires

    def on_emission_possible(self) -> None:
        self._emission_possible = True

    # --- life cycle ----------------------------------------------------------------------------------

    def __enter__(self) -> AbortGuard:
        if self.sigint and threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        if self.estop:
            self._watcher = threading.Thread(
                target=self._watch, name="markstation-estop", daemon=True
            )
            self._watcher.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join(timeout=1.0)
        with self._lock:
            aborters = list(self._aborters)
        for aborter in aborters:
            aborter.join(timeout=ABORT_JOIN_S)
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
            self._old_handler = None


__all__ = ["ABORT_JOIN_S", "CTRL_C", "ESTOP", "ESTOP_POLL_S", "AbortGuard"]
