"""Serve the simulated GRBL on a pseudo-terminal, so any GRBL sender can connect to it (POSIX).

The controller writes straight to the pty's master side; what a sender writes to the slave path
is fed to the controller as it arrives. The slave stays open here, so senders may come and go.
The banner is printed on the first byte a sender writes (its ``open()`` flushed anything earlier),
or on the soft reset most senders send first.
"""

from __future__ import annotations

import os
import select
import threading

from markstation.devices.sim.grbl.controller import GrblController
from markstation.devices.sim.grbl.options import build_controller
from markstation.errors import BackendUnavailable
from markstation.i18n import _


class PtyServer:
    """A pty pair in raw mode with a thread that feeds the controller."""

    def __init__(self) -> None:
        self._master = -1
        self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.sim: GrblController | None = None
        self.path = ""

    def send(self, data: bytes) -> None:
        """The controller's output: written to the master side (blocks while the pty is full)."""
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], 0.1)
                continue
            except OSError:
                return
            view = view[n:]

    def start(self, sim: GrblController) -> str:
        """Open the pty, start the controller; returns the path a sender opens."""
        try:
            import tty
        except ImportError as exc:
            raise BackendUnavailable(
                _("pty mode needs a POSIX system ({exc})").format(exc=exc)
            ) from exc
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.sim = sim
        sim.start()
        self._thread = threading.Thread(target=self._pump, name="grbl-pty", daemon=True)
        self._thread.start()
        return self.path

    def _pump(self) -> None:
        assert self.sim is not None
        while not self._stop.is_set():
            ready, _w, _x = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                continue  # no sender attached right now
            if data:
                self.sim.feed(data)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.sim is not None:
            self.sim.stop()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> PtyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_pty(options: dict[str, str], *, machine: str | None = None) -> PtyServer:
    """A running pty server for a simulator built from URL-style ``options``."""
    server = PtyServer()
    sim, _server_sim = build_controller(options, "sim grbl", output=server.send, machine=machine)
    server.start(sim)
    return server
