"""GRBL settings on connect (issue 13, item 3), against sim://grbl: ``$$`` is read and compared
with the machine profile; a setting that changes power or speed is refused before any byte of the
job, one that changes only time is adopted for the estimate; the Door state refuses at once."""

from __future__ import annotations

import time

import pytest

from grbl_helpers import PARAMS, square_job
from markstation.devices.estimate import device_estimate
from markstation.devices.grbl.driver import GrblDriver
from markstation.devices.registry import open_device
from markstation.errors import InterlockOpen, SafetyLimitError
from markstation.job.ir import MarkParams

pytestmark = pytest.mark.timeout(60)


def _open(url: str) -> GrblDriver:
    driver = open_device(url, "grbl-marker")
    assert isinstance(driver, GrblDriver)
    driver.open()
    return driver


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ("30:500", "$30=500 but machine 'grbl-marker'"),
        ("32:0", "laser mode is off ($32=0)"),
        ("31:100", "$31=100 (min spindle speed)"),
        # the square's 50 mm/s = 3000 mm/min: GRBL would clamp it to 2000
        ("110:2000", "$110=2000 mm/min is below the feed of 3000 mm/min"),
        ("111:2000", "$111=2000 mm/min is below the feed of 3000 mm/min"),
    ],
)
def test_a_setting_that_changes_power_or_speed_is_refused(settings: str, named: str) -> None:
    d = _open(f"sim://grbl?link=ideal&settings={settings}")
    with d:
        sim = d.simulator
        lines_before = sim.gcode_lines
        started = time.monotonic()
        with pytest.raises(SafetyLimitError) as err:
            d.run(square_job(5))
        assert time.monotonic() - started < 1.0
        message = str(err.value)
        assert named in message and "\n" not in message
        assert err.value.may_have_emitted is False
        assert sim.burns() == []
        # not one line of the job: only the M5 every refusal ends with
        assert sim.gcode_lines - lines_before == 1 and sim.modal.spindle == "M5"


def test_time_only_settings_are_adopted_for_the_estimate() -> None:
    slow = "120:200,121:200,11:0.02"
    d = _open(f"sim://grbl?link=ideal&settings={slow}")
    with d:
        assert d.settings_problem() is None
        assert d.estimate_settings == {120: 200.0, 121: 200.0, 11: 0.02}
        job = square_job(5)
        assert d.run(job).complete
        adopted = device_estimate(job, d.machine, settings=d.estimate_settings).seconds
        profile = device_estimate(job, d.machine).seconds
        assert adopted > profile  # slower acceleration: a longer, honest estimate


def test_a_max_rate_above_the_job_feed_only_changes_time() -> None:
    # 6000 mm/min X/Y rates: G0 travel is slower, the 3000 mm/min marks are not clamped
    d = _open("sim://grbl?link=ideal&settings=110:6000,111:6000")
    with d:
        assert d.estimate_settings == {110: 6000.0, 111: 6000.0}
        assert d.run(square_job(5)).complete
        fast = MarkParams(
            speed_mm_s=150.0, power_pct=PARAMS.power_pct, frequency_khz=1.0, jump_speed_mm_s=200.0
        )
        with pytest.raises(SafetyLimitError, match=r"\$110=6000 mm/min"):
            d.run(square_job(5, fast))


def test_the_door_state_is_refused_at_once() -> None:
    d = _open("sim://grbl?link=ideal")
    with d:
        d.simulator.feed(b"\x84")  # the safety-door input
        d.simulator.wait_idle(2.0)
        started = time.monotonic()
        with pytest.raises(InterlockOpen, match="the safety door is open") as err:
            d.run(square_job(5))
        refused = time.monotonic() - started
        assert err.value.may_have_emitted is False
        assert d.simulator.burns() == []
        closing = time.monotonic()
    closed = time.monotonic() - closing
    # not the 5 s response timeout: the Door state is recognised and the laser is off by it
    assert refused < 0.5 and closed < 0.5


def test_a_door_opened_mid_run_ends_it_at_once() -> None:
    import threading

    from grbl_helpers import zigzag_job

    d = _open("sim://grbl?link=ideal&timing=5&settings=110:6000,111:6000")
    with d:
        box: dict[str, object] = {}

        def work() -> None:
            try:
                d.run(zigzag_job(100))
            except InterlockOpen as exc:
                box["error"], box["at"] = exc, time.monotonic()

        worker = threading.Thread(target=work)
        worker.start()
        deadline = time.monotonic() + 10
        while not d.simulator.burns() and time.monotonic() < deadline:
            time.sleep(0.01)
        opened = time.monotonic()
        d.simulator.feed(b"\x84")
        worker.join(10)
        assert "safety door opened" in str(box["error"])
        assert float(box["at"]) - opened < 1.0  # type: ignore[arg-type]
        closing = time.monotonic()
    assert time.monotonic() - closing < 0.5
