"""The station's estimate is the runner's: the device's timing model with its controller's settings."""

from __future__ import annotations

import time
from pathlib import Path

from _queue_fakes import FakeDriver, fast_builder, sample_rows, write_csv
from markstation.devices.estimate import device_estimate
from markstation.profiles import load_machine
from markstation.queue.batch import import_batch
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore
from markstation.station.adapter import Phase
from markstation.station.service import Station, StationConfig

GRBL = load_machine("grbl-marker")
#: what the controller reported on connect where it differs from the profile ($120/$121, $11)
ADOPTED = {120: 25.0, 121: 25.0, 11: 0.002}


class GrblWithItsOwnSettings(FakeDriver):
    protocol = "grbl"

    def __init__(self) -> None:
        super().__init__(machine=GRBL)

    @property
    def estimate_settings(self) -> dict[int, float]:
        return dict(ADOPTED)


def test_the_station_estimates_with_the_settings_the_controller_reported(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with SqliteStore(db) as store:
        import_batch(write_csv(tmp_path / "b.csv", sample_rows(1)), store, actor=Actor("s", "t"))
    config = StationConfig(db=db, device="fake://", station_name="t")
    station = Station(config, driver_factory=GrblWithItsOwnSettings, build=fast_builder)
    station.start()
    try:
        assert station.request_run("Juan")
        deadline, version = time.monotonic() + 10.0, -1
        while station.ui.phase is not Phase.SERIAL:  # the estimate is on screen from here on
            left = deadline - time.monotonic()
            assert left > 0, f"phase {station.ui.phase}"
            version = station.ui.wait_version(version, left)
        assert station.ui.item is not None
        built = station.built(station.ui.item.code)
        assert built is not None
        adopted = device_estimate(built.job, GRBL, settings=ADOPTED).seconds
        profile_only = device_estimate(built.job, GRBL).seconds
        assert adopted > profile_only * 1.2  # the slower acceleration shows
        assert station.ui.estimate_s is not None and abs(station.ui.estimate_s - adopted) < 1e-9
    finally:
        station.stop()
