"""The station process: one runner thread, one store thread for the web side, previews, sessions.

Thread model (one station process owns the device):

- **the runner thread** calls :func:`markstation.queue.runner.run_batch` — the same code as
  ``batch run`` — with :class:`~markstation.station.adapter.BrowserOperator` as the operator UI,
  one run at a time, each started by "Mark next". It has its own store object (SQLite
  connections belong to one thread) and takes the store's runner lock for the run, so a CLI
  ``batch run`` on the same store is refused and a station is refused while one runs, each with
  the other's pid, host and operator in the message. It blocks in the adapter while the browser
  decides; the device's abort path (``AbortGuard``) does not depend on any browser connection.
- **the store thread** (a one-worker executor) does every read and decision of the web side
  (campaign counts, attention, import, resolve, void, export, sign-in) on its own store object.
- **the preview thread** renders the PNG of the job the runner built — the very ``Job`` object
  that will be sent (the station hands the runner a caching job builder), so the picture is
  exactly what will be burned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from markstation.devices.base import Driver
from markstation.errors import MarkstationError
from markstation.job.ir import Job
from markstation.profiles import LayoutProfile, MachineProfile, MaterialProfile
from markstation.queue.keys import StationKey
from markstation.queue.location import open_store
from markstation.queue.models import Actor
from markstation.queue.store import Store
from markstation.station.adapter import BrowserOperator, StationClosing
from markstation.station.security import Sessions

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the largest registry file the import screen accepts (bytes)
UPLOAD_LIMIT = 5 * 1024 * 1024
#: preview resolution: the picture is shown at real scale (CSS millimetres)
PREVIEW_PX_PER_MM = 16.0
#: how many built jobs (and their previews) are kept
KEEP_JOBS = 8
#: how long stopping waits for the runner thread (an abort joins within ABORT_JOIN_S)
STOP_JOIN_S = 15.0


@dataclass
class StationConfig:
    db: str | Path  # an SQLite file or a postgresql:// URL
    device: str
    machine: str | None = None
    material: str | None = None
    layout: str = "secondary-mark"
    lang: str = "en"
    listen: str | None = None  # None: 127.0.0.1 only
    port: int = 8470
    station_name: str = ""
    upload_limit: int = UPLOAD_LIMIT
    local_operator: str = "operator"  # who acts when no operators exist (localhost only)
    #: signs the checkpoint at the end of every run and at every export (None: unsigned, warned)
    key: StationKey | None = None

    @property
    def host(self) -> str:
        return self.listen or "127.0.0.1"

    @property
    def signin_mandatory(self) -> bool:
        """With ``--listen`` anyone on the network could reach the station: sign-in always."""
        return self.listen is not None


@dataclass
class BuiltJob:
    job: Job
    layout: LayoutProfile
    material: MaterialProfile
    machine: MachineProfile
    preview: Future[tuple[bytes, float, float]] = field(default_factory=Future)
    #: each 2D code's decode result and verification grade, filled in with the preview
    grades: list[str] = field(default_factory=list)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class Station:
    """Everything one ``markstation station`` process holds; the web app is a face over it."""

    def __init__(
        self,
        config: StationConfig,
        *,
        driver_factory: Callable[[], Driver] | None = None,
        build: Callable[[str, LayoutProfile, MaterialProfile, MachineProfile], Job] | None = None,
    ) -> None:
        self.config = config
        self.ui = BrowserOperator()
        self.sessions = Sessions()
        self._driver_factory = driver_factory or self._open_device
        #: the device of the current run: the estimate reads what its controller reported
        self._driver: Driver | None = None
        self._build_inner = build
        self._jobs: OrderedDict[str, BuiltJob] = OrderedDict()
        self._jobs_lock = threading.Lock()
        self._tmp = Path(tempfile.mkdtemp(prefix="markstation-station-"))
        self._web_store: Store | None = None
        self._store_exec = ThreadPoolExecutor(1, thread_name_prefix="markstation-store")
        self._preview_exec = ThreadPoolExecutor(1, thread_name_prefix="markstation-preview")
        self._run_request = threading.Event()
        self._closing = False
        self._run_actor: Actor | None = None
        self._runner = threading.Thread(
            target=self._runner_loop, name="markstation-runner", daemon=True
        )
        self.recovered: list[str] = []

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the web side's store (crash recovery runs here) and start the runner thread."""
        self.recovered = self.call(lambda s: list(getattr(s, "recovered", [])))
        self._runner.start()

    def stop(self) -> None:
        """Stop: abort anything running, let the runner leave (driver closed, lock released)."""
        self._closing = True
        self.ui.abort("station stopped")
        self.ui.close()
        self._run_request.set()
        if self._runner.is_alive():
            self._runner.join(STOP_JOIN_S)
        self._preview_exec.shutdown(wait=True, cancel_futures=True)

        def close(store: Store) -> None:
            store.close()
            self._web_store = None

        if self._web_store is not None:
            self.call(close)
        self._store_exec.shutdown(wait=True)
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def actor_station(self) -> str:
        return self.config.station_name

    # --- the store thread --------------------------------------------------------------------------

    def _store(self) -> Store:
        if self._web_store is None:
            self._web_store = open_store(
                self.config.db, actor=Actor(self.config.local_operator, self.actor_station)
            )
        return self._web_store

    def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the store thread and wait for it (from a plain thread)."""
        return self._store_exec.submit(lambda: fn(self._store())).result()

    async def db(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the store thread (from the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_exec, lambda: fn(self._store()))

    # --- runs --------------------------------------------------------------------------------------

    def request_run(self, operator: str) -> bool:
        """Start a run for ``operator`` ("Mark next"); False when one is already going."""
        if self._closing or not self.ui.begin(operator):
            return False
        self._run_actor = Actor(operator, self.actor_station)
        self._run_request.set()
        return True

    def _open_device(self) -> Driver:
        from markstation.devices import open_device

        return open_device(self.config.device, self.config.machine)

    def _open_run_device(self) -> Driver:
        self._driver = driver = self._driver_factory()
        return driver

    def _runner_loop(self) -> None:
        from markstation.queue.runner import run_batch

        store: Store | None = None
        try:
            while True:
                self._run_request.wait()
                self._run_request.clear()
                if self._closing:
                    return
                actor = self._run_actor
                if actor is None:
                    continue
                try:
                    if store is None:
                        store = open_store(self.config.db, actor=actor)
                    run_batch(
                        store,
                        self._open_run_device,
                        operator=actor.operator,
                        station=actor.station,
                        ui=self.ui,
                        material=self.config.material,
                        build=self._build,
                        estimator=self._estimate,
                        key=self.config.key,
                    )
                except StationClosing:
                    pass
                except MarkstationError as exc:
                    self.ui.run_failed(str(exc))
                    continue
                except Exception as exc:  # a bug: say so on screen, keep the station up
                    log.exception("the run failed")
                    self.ui.run_failed(f"{type(exc).__name__}: {exc}")
                    continue
                self.ui.run_ended()
        finally:
            if store is not None:
                store.close()

    # --- jobs and previews ---------------------------------------------------------------------------

    def _build(
        self, code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
    ) -> Job:
        """The runner's job builder: the verified build, kept so its preview is drawn from it."""
        if self._build_inner is not None:
            job = self._build_inner(code, layout, material, machine)
        else:
            from markstation.queue.runner import default_builder

            job = default_builder(code, layout, material, machine)
        built = BuiltJob(job, layout, material, machine)
        with self._jobs_lock:
            self._jobs[code] = built
            self._jobs.move_to_end(code)
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        with contextlib.suppress(RuntimeError):  # shutting down
            self._preview_exec.submit(self._render, code, built)
        return job

    def _estimate(self, job: Job) -> float:
        """The runner's estimate (:func:`~markstation.queue.runner.driver_estimator`: the device's
        timing model with its controller's settings), on screen from the serial prompt on."""
        from markstation.job.estimate import estimate_seconds
        from markstation.queue.runner import driver_estimator

        driver = self._driver  # the runner estimates with its device open
        seconds = estimate_seconds(job) if driver is None else driver_estimator(driver)(job)
        self.ui.set_estimate(seconds)
        return seconds

    def _render(self, code: str, built: BuiltJob) -> None:
        if built.preview.done():
            return
        try:
            from markstation.preview import check_codes, render_png

            checks = check_codes(built.job, built.machine)
            built.grades[:] = [check.describe() for check in checks]
            path = self._tmp / f"preview-{abs(hash(code))}-{time.monotonic_ns()}.png"
            render_png(
                built.job,
                built.machine,
                path,
                px_per_mm=PREVIEW_PX_PER_MM,
                layout=built.layout,
                material_name=built.material.name,
                checks=checks,
            )
            data = path.read_bytes()
            path.unlink(missing_ok=True)
            width, height = png_size(data)
            built.preview.set_result((data, width / PREVIEW_PX_PER_MM, height / PREVIEW_PX_PER_MM))
        except BaseException as exc:
            built.preview.set_exception(exc)

    def built(self, code: str) -> BuiltJob | None:
        with self._jobs_lock:
            return self._jobs.get(code)

    async def preview(self, code: str) -> tuple[bytes, float, float] | None:
        """The PNG of the job built for ``code`` and its size in mm; None when none was built."""
        built = self.built(code)
        if built is None:
            return None
        return await asyncio.wrap_future(built.preview)

    def job_info(self, code: str) -> dict[str, Any] | None:
        built = self.built(code)
        if built is None:
            return None
        size: tuple[float, float] | None = None
        if built.preview.done() and built.preview.exception() is None:
            _data, w, h = built.preview.result()
            size = (w, h)
        return {
            "sha256": built.job.sha256(),
            "layout": built.layout.name,
            "material": built.material.name,
            "machine": built.machine.name,
            "preview_mm": size,
            "grades": list(built.grades),
        }
