"""Serving the station: uvicorn in the foreground (the command) or on a thread (tests, benchmark).

Ctrl-C in the station's terminal aborts a running mark through the run's ``AbortGuard`` first,
then stops the server; the runner thread then leaves its run (driver closed, store lock released).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import uvicorn

from markstation.devices.abort import CTRL_C
from markstation.i18n import _
from markstation.station.app import create_app
from markstation.station.service import Station

#: how long a stopping server waits for open connections (SSE streams end at once)
GRACEFUL_S = 2.0


class _StationServer(uvicorn.Server):
    """uvicorn's server, with Ctrl-C going to the abort guard before the shutdown."""

    def __init__(self, config: uvicorn.Config, station: Station) -> None:
        super().__init__(config)
        self.station = station

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT:
            self.station.ui.abort(CTRL_C)
        self.station.ui.close()  # every SSE stream ends; the runner's waits return
        # not re-raised after the shutdown (uvicorn's default): the command ends normally
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def _config(station: Station, port: int | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(station),
        host=station.config.host,
        port=station.config.port if port is None else port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(GRACEFUL_S),
        server_header=False,
    )


def serve(station: Station, *, on_ready: Any = None) -> None:
    """Run the station in the foreground until Ctrl-C / SIGTERM, then stop it."""
    server = _StationServer(_config(station), station)
    station.start()
    if on_ready is not None:
        watcher = threading.Thread(target=_when_started, args=(server, on_ready), daemon=True)
        watcher.start()
    try:
        server.run()
    finally:
        station.stop()


def _when_started(server: uvicorn.Server, on_ready: Any) -> None:
    while not server.started and not server.should_exit:
        threading.Event().wait(0.05)
    if server.started:
        on_ready()


class BackgroundStation:
    """The station served from a thread on 127.0.0.1 with a free port (tests, the benchmark)."""

    def __init__(self, station: Station, *, start_timeout_s: float = 15.0) -> None:
        self.station = station
        self.server = _StationServer(_config(station, port=0), station)
        self._thread = threading.Thread(target=self._serve, name="markstation-http", daemon=True)
        self.start_timeout_s = start_timeout_s
        self.port = 0

    def _serve(self) -> None:
        import asyncio

        asyncio.run(self.server.serve())  # not the main thread: no signal handlers

    def __enter__(self) -> BackgroundStation:
        self.station.start()
        self._thread.start()
        ready = threading.Event()
        deadline = self.start_timeout_s
        while not self.server.started and self._thread.is_alive() and deadline > 0:
            ready.wait(0.02)
            deadline -= 0.02
        if not self.server.started:
            self.station.stop()
            raise RuntimeError(_("the station's server did not start"))
        sockets = self.server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.station.ui.close()
        self.server.should_exit = True
        self._thread.join(GRACEFUL_S + 5.0)
        self.station.stop()
