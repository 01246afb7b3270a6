"""The GRBL line: a reader thread that parses every reply, and the send-and-wait primitives.

The reader owns the port's input; what it parses lands in the shared state below, guarded by
:attr:`GrblLink.cv` and announced with ``notify_all``. Writes may come from any thread (an abort
writes 0x18 while a run streams).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from markstation.devices.grbl.codec import (
    SOFT_RESET,
    STATUS_QUERY,
    AlarmMessage,
    Banner,
    ErrorReply,
    Feedback,
    LineSplitter,
    Message,
    Ok,
    Status,
    parse_line,
)
from markstation.devices.grbl.transport import Port, close_quietly
from markstation.errors import DeviceDisconnected, DeviceError, DeviceProtocolError, DeviceTimeout
from markstation.i18n import _

log = logging.getLogger(__name__)

#: how long to wait for the banner after a soft reset (an Arduino may also be rebooting on open)
BANNER_TIMEOUT_S = 5.0


class Restarted(Exception):
    """A banner arrived while waiting for a reply: the controller restarted under us."""


class GrblLink:
    """One open port to a GRBL controller, read by a thread of its own."""

    def __init__(self, port: Port, *, url: str, where: str, response_timeout_s: float) -> None:
        self.port: Port | None = port
        self.url = url
        #: the port and baud rate, for messages
        self.where = where
        self.response_timeout_s = response_timeout_s
        self.cv = threading.Condition()
        self._write_lock = threading.Lock()
        self._closing = False
        # shared with the reader thread, guarded by cv
        self.responses: deque[Ok | ErrorReply] = deque()
        self.pushes: list[Message] = []
        self.messages: list[str] = []
        self.alarms: list[AlarmMessage] = []
        self.status: Status | None = None
        self.status_seq = 0
        self.banner: Banner | None = None
        self.banner_seq = 0
        self.error: BaseException | None = None
        self.garbage: list[str] = []
        self.locked = False
        #: a run is streaming: it waits for the banner of an abort's reset itself
        self.streaming = False
        self._reader = threading.Thread(target=self._read_loop, name="grbl-reader", daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._closing = True
        port, self.port = self.port, None
        self._reader.join(timeout=2.0)
        if port is not None:
            close_quietly(port, self.where)

    # --- reading ---------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        splitter = LineSplitter()
        port = self.port
        assert port is not None
        while not self._closing:
            try:
                data = port.read(max(1, int(getattr(port, "in_waiting", 0))))
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError…
                if not self._closing:
                    with self.cv:
                        self.error = exc
                        self.cv.notify_all()
                return
            if not data:
                continue
            try:
                lines = splitter.feed(data)
            except DeviceProtocolError as exc:
                lines = []
                self._note_garbage(str(exc))
            for raw in lines:
                try:
                    msg = parse_line(raw)
                except DeviceProtocolError as exc:
                    self._note_garbage(str(exc))
                    continue
                log.debug("%s <- %r", self.url, msg)
                self._dispatch(msg)

    def _note_garbage(self, text: str) -> None:
        log.warning("%s: %s", self.url, text)
        with self.cv:
            self.garbage.append(text)
            self.cv.notify_all()

    def _dispatch(self, msg: Message) -> None:
        with self.cv:
            if isinstance(msg, (Ok, ErrorReply)):
                self.responses.append(msg)
            elif isinstance(msg, Status):
                self.status = msg
                self.status_seq += 1
                self.locked = msg.state == "Alarm"
            elif isinstance(msg, AlarmMessage):
                self.alarms.append(msg)
                self.locked = True
            elif isinstance(msg, Banner):
                self.banner = msg
                self.banner_seq += 1
            elif isinstance(msg, Feedback) and msg.kind == "MSG":
                self.messages.append(msg.text)
                if "to unlock" in msg.text:
                    self.locked = True
                elif msg.text.startswith("Caution: Unlocked"):
                    self.locked = False
            else:
                self.pushes.append(msg)
            self.cv.notify_all()

    # --- writing and waiting ---------------------------------------------------------------------

    def write(self, data: bytes, *, emitted: bool = True) -> None:
        port = self.port
        if port is None:
            raise DeviceDisconnected(
                _("{url}: port is closed").format(url=self.url), may_have_emitted=emitted
            )
        log.debug("%s -> %r", self.url, data)
        try:
            with self._write_lock:
                port.write(data)
        except Exception as exc:
            raise DeviceDisconnected(
                _("{url}: write failed ({error}); the controller is gone").format(
                    url=self.url, error=exc
                ),
                may_have_emitted=emitted,
            ) from exc

    def check(self, emitted: bool) -> None:
        """Raise for a dead link (caller holds cv)."""
        if self.error is not None:
            raise DeviceDisconnected(
                _("{url}: connection lost ({error})").format(url=self.url, error=self.error),
                may_have_emitted=emitted,
            )

    def _wait(
        self, done: Callable[[], bool], deadline: float, on_timeout: DeviceError, emitted: bool
    ) -> None:
        """Wait (holding cv) until ``done()`` is true; raise ``on_timeout`` at the deadline."""
        while not done():
            self.check(emitted)
            left = deadline - time.monotonic()
            if left <= 0:
                raise on_timeout
            self.cv.wait(min(left, 0.1))

    def command(
        self, line: str, *, timeout: float | None = None
    ) -> tuple[Ok | ErrorReply, list[Message]]:
        """Send one line and wait for its reply (send-response); the push messages it produced."""
        limit = self.response_timeout_s if timeout is None else timeout
        with self.cv:
            self.responses.clear()
            self.pushes.clear()
            banner0 = self.banner_seq
        self.write(line.encode("ascii") + b"\n", emitted=False)
        deadline = time.monotonic() + limit
        with self.cv:
            while not self.responses:
                self.check(False)
                if self.banner_seq != banner0:
                    raise Restarted()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceTimeout(
                        _("{url}: no reply to '{line}' within {limit:g} s").format(
                            url=self.url, line=line, limit=limit
                        ),
                        may_have_emitted=False,
                    )
                self.cv.wait(min(left, 0.1))
            reply = self.responses.popleft()
            return reply, list(self.pushes)

    def soft_reset(self, *, emitted: bool, timeout: float = BANNER_TIMEOUT_S) -> None:
        """0x18 and wait for the banner: laser off, buffers empty (position kept unless moving)."""
        with self.cv:
            banner0 = self.banner_seq
        self.write(SOFT_RESET, emitted=emitted)
        late = DeviceTimeout(
            _(
                "{url}: no GRBL banner within {timeout:g} s after a soft reset "
                "(is a GRBL controller at {where}?)"
            ).format(url=self.url, timeout=timeout, where=self.where),
            may_have_emitted=emitted,
        )
        with self.cv:
            self._wait(
                lambda: self.banner_seq != banner0, time.monotonic() + timeout, late, emitted
            )
            self.responses.clear()

    def fail_reset(self, emitted: bool, *, quiet: bool = False) -> None:
        """Soft reset after a failure so nothing buffered keeps running; never raises."""
        try:
            self.soft_reset(emitted=emitted, timeout=1.0 if quiet else BANNER_TIMEOUT_S)
        except DeviceError as exc:
            log.warning("%s: reset after failure not confirmed: %s", self.url, exc)

    def query_status(self, *, emitted: bool = False) -> Status:
        with self.cv:
            seq0 = self.status_seq
        self.write(STATUS_QUERY, emitted=emitted)
        late = DeviceTimeout(
            _("{url}: no status report within {timeout:g} s").format(
                url=self.url, timeout=self.response_timeout_s
            ),
            may_have_emitted=emitted,
        )
        deadline = time.monotonic() + self.response_timeout_s
        with self.cv:
            self._wait(lambda: self.status_seq != seq0, deadline, late, emitted)
            assert self.status is not None
            return self.status

    def wait_banner(self, banner0: int) -> bool:
        """Wait until a banner after ``banner0`` arrived (the abort's reset took effect)."""
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        with self.cv:
            while self.banner_seq == banner0 and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("%s: no banner after the soft reset", self.url)
                    return False
                self.cv.wait(min(left, 0.05))
        return True
