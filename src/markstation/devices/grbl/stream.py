"""Streaming a G-code program to GRBL: character counting, or send-and-wait one line at a time.

Character counting: a line is written only while the bytes of all unanswered lines plus its own fit
the controller's receive buffer, and one entry leaves the count per ``ok`` or ``error:N``; bytes
beyond the buffer would be silently lost by the controller. ``?`` is polled for liveness and state.
A run is complete only when every line has its ``ok`` and a status report that arrived after the
last ``ok`` says Idle. Any error, alarm, reset banner, disconnect or abort ends the run with a soft
reset (the laser off at once) and the matching DeviceError. So does a lost ``ok``: lines still
unanswered while the controller has reported Idle, with no reply, for ``response_timeout_s`` (an
Idle controller answers a line within milliseconds; a full planner or a feed hold, which hold the
``ok`` back legitimately, are not Idle). So does a failure the driver saw on another thread during
the run (``fault``: the e-stop watcher's status query). Each of these is "unknown", never complete.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markstation.devices.base import RunListener
from markstation.devices.grbl.codec import (
    STATUS_QUERY,
    AlarmMessage,
    ErrorReply,
    Ok,
    Program,
    Status,
    alarm_text,
)
from markstation.devices.grbl.link import GrblLink
from markstation.errors import (
    Aborted,
    DeviceAlarm,
    DeviceDisconnected,
    DeviceError,
    DeviceProtocolError,
    DeviceReset,
    DeviceTimeout,
    InterlockOpen,
)
from markstation.i18n import _

STREAMING = ("counting", "send-response")

#: a failure to raise, and whether to soft-reset first
Failure = tuple[DeviceError, bool]


@dataclass
class Streamer:
    """Sends programs over ``link``; one instance per driver."""

    link: GrblLink
    rx_buffer: int
    status_interval_s: float
    response_timeout_s: float
    mode: str = "counting"
    #: True once the driver was asked to abort
    aborted: Callable[[], bool] = lambda: False
    #: a device error another thread met during this run (None: none)
    fault: Callable[[], DeviceError | None] = lambda: None

    @property
    def url(self) -> str:
        return self.link.url

    def stream(self, program: Program, listener: RunListener | None) -> dict[str, Any]:
        """Send ``program``; return once every line has its ``ok`` and the controller is Idle.

        Returns the run's figures: lines, bytes, receive buffer, mode, elapsed seconds.
        """
        link = self.link
        wire = program.wire()
        total = len(wire)
        counting = self.mode == "counting"
        rx = self.rx_buffer
        inflight: deque[int] = deque()  # byte counts of lines not yet answered
        in_bytes = sent = acked = 0
        emitted = False
        started = time.monotonic()
        last_poll = poll_at = 0.0
        poll_seq: int | None = None  # status count when the outstanding '?' went out
        done_seq: int | None = None  # status count when the last 'ok' arrived
        checked_seq = shown = -1
        # the lost-ok watch: since when the controller has been Idle with lines unanswered
        idle_since: float | None = None
        quiet_seq = 0  # status count at the last reply or write
        with link.cv:
            link.responses.clear()
            link.alarms.clear()
            link.garbage.clear()
            banner0 = link.banner_seq
            link.streaming = True
        try:
            while True:
                # 1. what came back
                with link.cv:
                    replies = list(link.responses)
                    link.responses.clear()
                    failure = self._event(banner0, emitted, acked, total)
                    status, status_seq = link.status, link.status_seq
                for reply in replies:
                    if not inflight:
                        failure = failure or (
                            DeviceProtocolError(
                                _(
                                    "{url}: got '{reply}' with no line waiting for it (the byte "
                                    "count drifted)"
                                ).format(url=self.url, reply=_reply_text(reply)),
                                may_have_emitted=emitted,
                            ),
                            True,
                        )
                        break
                    in_bytes -= inflight.popleft()
                    acked += 1
                    idle_since, quiet_seq = None, status_seq
                    if isinstance(reply, ErrorReply):
                        failure = failure or (
                            DeviceProtocolError(
                                _(
                                    "{url}: line {acked} of {total} '{line}' refused: "
                                    "error:{code} ({text}); the run was stopped with a soft reset"
                                ).format(
                                    url=self.url,
                                    acked=acked,
                                    total=total,
                                    line=program.lines[acked - 1],
                                    code=reply.code,
                                    text=reply.text,
                                ),
                                may_have_emitted=emitted,
                            ),
                            True,
                        )
                        break
                if failure is None and status is not None and status_seq != checked_seq:
                    checked_seq = status_seq
                    failure = self._status_failure(status, emitted, acked, total)
                    if status.state != "Idle" or not inflight:
                        idle_since = None
                    elif idle_since is None and status_seq > quiet_seq:
                        idle_since = time.monotonic()
                if (
                    failure is None
                    and inflight
                    and idle_since is not None
                    and time.monotonic() - idle_since > self.response_timeout_s
                ):
                    failure = (
                        DeviceTimeout(
                            _(
                                "{url}: the controller is Idle but {count} line(s) never got "
                                "their ok (answered {acked} of {sent} sent, {total} in all): "
                                "replies were lost; whether the program ran to its end is unknown"
                            ).format(
                                url=self.url,
                                count=len(inflight),
                                acked=acked,
                                sent=sent,
                                total=total,
                            ),
                            may_have_emitted=emitted,
                        ),
                        True,
                    )
                if failure is not None:
                    exc, reset = failure
                    if reset:
                        # a controller that stopped answering will not send a banner either
                        link.fail_reset(emitted, quiet=isinstance(exc, DeviceTimeout))
                    elif isinstance(exc, Aborted):
                        link.wait_banner(banner0)  # abort() sent the reset; let it land
                    raise exc
                # 2. completion: all answered, and a status sent after the last ok says Idle
                now = time.monotonic()
                if poll_seq is not None and status_seq > poll_seq:
                    poll_seq = None
                if acked == total:
                    if done_seq is None:
                        done_seq = status_seq
                        last_poll = 0.0  # ask now
                    elif status_seq > done_seq and status is not None:
                        if status.state == "Idle":
                            break
                        done_seq = status_seq  # still moving: ask again at the next interval
                # 3. send what fits the receive buffer (or one line at a time)
                while sent < total and (
                    (counting and in_bytes + len(wire[sent]) <= rx) or not inflight
                ):
                    if sent >= program.first_emission and not emitted:
                        if listener is not None:
                            listener.on_emission_possible()
                        emitted = True
                    link.write(wire[sent], emitted=emitted)
                    inflight.append(len(wire[sent]))
                    in_bytes += len(wire[sent])
                    sent += 1
                    idle_since, quiet_seq = None, status_seq
                # 4. status polling: liveness, state, completion
                if poll_seq is not None and now - poll_at > self.response_timeout_s:
                    link.fail_reset(emitted, quiet=True)
                    raise DeviceTimeout(
                        _(
                            "{url}: the controller stopped answering (no status report for "
                            "{timeout:g} s) at line {acked} of {total}"
                        ).format(
                            url=self.url, timeout=self.response_timeout_s, acked=acked, total=total
                        ),
                        may_have_emitted=emitted,
                    )
                if poll_seq is None and now - last_poll >= self.status_interval_s:
                    poll_seq, poll_at, last_poll = status_seq, now, now
                    link.write(STATUS_QUERY, emitted=emitted)
                if listener is not None and acked != shown:
                    shown = acked
                    listener.on_progress(acked / total if total else 1.0, now - started)
                # 5. sleep until something arrives (or the next poll is due)
                with link.cv:
                    if not link.responses and link.status_seq == status_seq:
                        due = last_poll + self.status_interval_s - time.monotonic()
                        link.cv.wait(min(max(due, 0.001), 0.25))
        finally:
            with link.cv:
                link.streaming = False
        return {
            "lines": total,
            "bytes": sum(len(w) for w in wire),
            "rx_buffer": rx,
            "streaming": self.mode,
            "elapsed_s": round(time.monotonic() - started, 6),
        }

    def _event(self, banner0: int, emitted: bool, acked: int, total: int) -> Failure | None:
        """A failure from what the reader saw (the caller holds the link's cv)."""
        link = self.link
        if link.error is not None:
            return DeviceDisconnected(
                _("{url}: connection lost at line {acked} of {total} ({error})").format(
                    url=self.url, acked=acked, total=total, error=link.error
                ),
                may_have_emitted=emitted,
            ), False
        fault = self.fault()
        if fault is not None:
            return type(fault)(
                _(
                    "{url}: a device error on another thread at line {acked} of {total} "
                    "({fault}); whether the program ran to its end is unknown"
                ).format(url=self.url, acked=acked, total=total, fault=fault),
                may_have_emitted=emitted,
            ), True
        if self.aborted():
            return Aborted(
                (
                    _(
                        "{url}: aborted at line {acked} of {total}; the laser was switched off by "
                        "a soft reset; the part may be partly marked"
                    )
                    if emitted
                    else _(
                        "{url}: aborted at line {acked} of {total}; the laser was switched off by "
                        "a soft reset"
                    )
                ).format(url=self.url, acked=acked, total=total),
                may_have_emitted=emitted,
            ), False
        if link.alarms:
            alarm = link.alarms[-1]
            return DeviceAlarm(
                alarm_message(self.url, alarm, acked, total), may_have_emitted=emitted
            ), True
        if link.banner_seq != banner0:
            return DeviceReset(
                _(
                    "{url}: the controller reset itself at line {acked} of {total} (banner "
                    "received); every line in flight was lost"
                ).format(url=self.url, acked=acked, total=total),
                may_have_emitted=emitted,
            ), False
        if link.garbage:
            return DeviceProtocolError(
                f"{self.url}: {link.garbage[-1]}", may_have_emitted=emitted
            ), True
        return None

    def _status_failure(
        self, status: Status, emitted: bool, acked: int, total: int
    ) -> Failure | None:
        if status.state == "Door":
            return InterlockOpen(
                _(
                    "{url}: safety door opened at line {acked} of {total}; the run was stopped "
                    "with a soft reset"
                ).format(url=self.url, acked=acked, total=total),
                may_have_emitted=emitted,
            ), True
        if status.state in ("Alarm", "Sleep"):
            return DeviceAlarm(
                alarm_message(self.url, None, acked, total), may_have_emitted=emitted
            ), True
        return None


def alarm_message(url: str, alarm: AlarmMessage | None, acked: int, total: int) -> str:
    what = (
        _("ALARM:{code} ({text})").format(code=alarm.code, text=alarm_text(alarm.code))
        if alarm
        else _("an alarm state")
    )
    return _(
        "{url}: GRBL raised {what} at line {acked} of {total}; the laser is off and "
        "the controller is locked: inspect the machine, then unlock ($X: GrblDriver.unlock()) "
        "or home it"
    ).format(url=url, what=what, acked=acked, total=total)


def _reply_text(reply: Ok | ErrorReply) -> str:
    return "ok" if isinstance(reply, Ok) else f"error:{reply.code}"
