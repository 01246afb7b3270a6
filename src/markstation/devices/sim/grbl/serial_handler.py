"""The ``sim://grbl`` transport: a pyserial-compatible port whose far end is the simulated GRBL.

The driver opens its real code path (reader thread, streaming) over this port; it gets it from
:data:`SIM_TRANSPORT` through :func:`markstation.devices.registry.simulated_transport`.

The link between host and controller is modelled (``link=real``, the default): every byte takes
10 bit times at the port's baud rate in each direction, plus 1 ms one-way latency of a USB-serial
adapter, and the controller spends 0.2 ms parsing each line. ``link=ideal`` removes all of that.
A ``fault=disconnect`` makes reads and writes fail like a pulled cable.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from serial import PortNotOpenError, SerialBase, SerialException

from markstation.devices.registry import SimulatedLink
from markstation.devices.sim.grbl.controller import GrblController
from markstation.devices.sim.grbl.options import (
    LINK_LATENCY_S,
    SIM_OPTIONS,
    build_controller,
    check_options,
)
from markstation.devices.url import DeviceURL
from markstation.profiles import MachineProfile

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class Serial(SerialBase):
    """A ``serial.Serial``-compatible port to a simulated GRBL controller.

    ``options`` are the ``sim://grbl`` URL options (see :mod:`.options`); the controller is built
    and started when the port opens and powered off when it closes.
    """

    def __init__(
        self,
        *args: Any,
        options: Mapping[str, str] | None = None,
        machine: MachineProfile | str | None = None,
        **kwargs: Any,
    ) -> None:
        self.simulator: GrblController | None = None
        self._options = dict(options or {})
        self._machine = machine
        self._rx: deque[tuple[float, bytes]] = deque()
        self._cv = threading.Condition()
        self._latency = 0.0
        self._real_link = False
        self._in_free_at = 0.0
        self._out_free_at = 0.0
        self._cancelled = False
        super().__init__(*args, **kwargs)

    # --- life cycle ------------------------------------------------------------------------------

    def open(self) -> None:
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        sim, real = build_controller(
            self._options, f"device URL '{self.port}'", output=self._deliver, machine=self._machine
        )
        self._real_link = real
        self._latency = LINK_LATENCY_S if real else 0.0
        self._rx.clear()
        self.simulator = sim
        sim.start()
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            if self.simulator is not None:
                self.simulator.stop()
            with self._cv:
                self._cv.notify_all()

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        pass  # the byte time is read from the baud rate on every write

    def _byte_time(self) -> float:
        baud = int(self.baudrate or 0)
        return 10.0 / baud if (self._real_link and baud > 0) else 0.0

    # --- controller -> host ----------------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        with self._cv:
            now = time.monotonic()
            start = max(now + self._latency, self._out_free_at)
            ready = start + len(data) * self._byte_time()
            self._out_free_at = ready
            self._rx.append((ready, data))
            self._cv.notify_all()

    def _check_link(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        if self.simulator is not None and self.simulator.disconnected:
            raise SerialException("device reports readiness to read but returned no data")

    def _ready(self, now: float) -> int:
        return sum(len(d) for t, d in self._rx if t <= now)

    @property
    def in_waiting(self) -> int:
        self._check_link()
        with self._cv:
            return self._ready(time.monotonic())

    def read(self, size: int = 1) -> bytes:
        self._check_link()
        limit = self.timeout
        deadline = None if limit is None else time.monotonic() + limit
        out = bytearray()
        with self._cv:
            self._cancelled = False
            while len(out) < size:
                now = time.monotonic()
                while self._rx and self._rx[0][0] <= now and len(out) < size:
                    ready, data = self._rx.popleft()
                    take = size - len(out)
                    out += data[:take]
                    if len(data) > take:
                        self._rx.appendleft((ready, data[take:]))
                if (
                    len(out) >= size
                    or self._cancelled
                    or (deadline is not None and now >= deadline)
                ):
                    break
                if self.simulator is not None and self.simulator.disconnected:
                    if out:
                        break
                    raise SerialException("device disconnected (simulated)")
                if not self.is_open:
                    break
                wait = None if deadline is None else deadline - now
                if self._rx:
                    gap = self._rx[0][0] - now
                    wait = gap if wait is None else min(wait, gap)
                self._cv.wait(0.05 if wait is None else max(0.0, min(wait, 0.05)))
        return bytes(out)

    def cancel_read(self) -> None:
        with self._cv:
            self._cancelled = True
            self._cv.notify_all()

    # --- host -> controller ----------------------------------------------------------------------

    def write(self, b: ReadableBuffer, /) -> int:
        self._check_link()
        payload = bytes(b)
        if self.simulator is None:
            raise PortNotOpenError()
        bt = self._byte_time()
        with self._cv:
            now = time.monotonic()
            start = max(now + self._latency, self._in_free_at)
            self._in_free_at = start + len(payload) * bt
        self.simulator.feed(payload, start_at=start, byte_time=bt)
        return len(payload)

    def flush(self) -> None:
        self._check_link()

    def reset_input_buffer(self) -> None:
        self._check_link()
        with self._cv:
            now = time.monotonic()
            while self._rx and self._rx[0][0] <= now:
                self._rx.popleft()

    def reset_output_buffer(self) -> None:
        self._check_link()

    @property
    def out_waiting(self) -> int:
        return 0

    # modem lines: nothing is wired on the simulated board
    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True


class GrblSimTransport:
    """``sim://grbl`` as the registry offers it to the GRBL driver."""

    options: tuple[str, ...] = SIM_OPTIONS

    def check_options(self, url: DeviceURL, options: Mapping[str, str]) -> None:
        check_options(options, f"device URL '{url.raw}'")

    def open(
        self, url: DeviceURL, options: Mapping[str, str], machine: MachineProfile
    ) -> SimulatedLink:
        """Start a simulated controller for ``options`` and open a port to it."""
        port = Serial(url.raw, options=options, machine=machine)
        return SimulatedLink(transport=port, simulator=port.simulator)


SIM_TRANSPORT = GrblSimTransport()
