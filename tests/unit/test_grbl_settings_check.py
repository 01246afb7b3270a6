"""The pure comparison of a GRBL ``$$`` table with the machine profile (devices/grbl/settings_check)."""

from __future__ import annotations

import re

import pytest

from markstation import i18n
from markstation.devices.grbl.codec import Geometry
from markstation.devices.grbl.planner import PlannerSettings
from markstation.devices.grbl.settings_check import check_settings
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.profiles import load_machine

URL = "sim://grbl"
MACHINE = load_machine("grbl-marker")
GEO = Geometry.from_machine(MACHINE)


def _settings(**changes: str) -> dict[int, str]:
    """What a stock controller configured like the profile reports, with ``s30="500"`` etc."""
    table = {
        30: "1000",
        31: "0",
        32: "1",
        11: "0.010",
        110: "12000.000",
        111: "12000.000",
        112: "500.000",
        120: "1000.000",
        121: "1000.000",
        122: "10.000",
    }
    table.update({int(k[1:]): v for k, v in changes.items()})
    return table


def _job(speed_mm_s: float, *prims: Polyline | Dot) -> Job:
    params = MarkParams(speed_mm_s=speed_mm_s, power_pct=50.0, frequency_khz=1.0)
    return Job(layers=(Layer("text", params, prims or (Polyline(((0, 0), (10, 0))),)),))


def test_a_controller_like_the_profile_passes_and_adopts_nothing() -> None:
    check = check_settings(_settings(), MACHINE, url=URL)
    assert check.refusal is None and dict(check.adopted) == {}
    assert check.planner == PlannerSettings.from_machine(MACHINE)
    assert check.job_problem(_job(200.0), GEO) is None


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"s32": "0"}, r"laser mode is off \(\$32=0\)"),
        ({"s30": "500"}, r"\$30=500 but machine 'grbl-marker' has grbl.max_s = 1000"),
        ({"s30": "x"}, r"\$30=x but"),
        ({"s31": "10"}, r"\$31=10 \(min spindle speed\)"),
    ],
)
def test_a_setting_that_changes_power_is_refused_in_one_line(
    changes: dict[str, str], names: str
) -> None:
    check = check_settings(_settings(**changes), MACHINE, url=URL)
    assert check.refusal is not None and "\n" not in check.refusal
    assert check.refusal.startswith(URL + ": ")
    assert check.job_problem(_job(1.0), GEO) == check.refusal
    assert re.search(names, check.refusal)


def test_missing_settings_are_refused() -> None:
    table = _settings()
    del table[32]
    assert "$32=missing" in (check_settings(table, MACHINE, url=URL).refusal or "")
    table = _settings()
    del table[30]
    assert "$30=missing" in (check_settings(table, MACHINE, url=URL).refusal or "")


def test_time_only_settings_are_adopted_for_the_estimate() -> None:
    check = check_settings(
        _settings(s110="9000", s111="8000", s120="400", s121="300", s11="0.02"), MACHINE, url=URL
    )
    assert check.refusal is None
    assert dict(check.adopted) == {110: 9000.0, 111: 8000.0, 120: 400.0, 121: 300.0, 11: 0.02}
    p = check.planner
    assert p.max_rate_mm_min[:2] == (9000.0, 8000.0) and p.accel_mm_s2[:2] == (400.0, 300.0)
    assert p.junction_deviation_mm == 0.02 and p.laser_mode
    assert check.job_problem(_job(100.0), GEO) is None  # 6000 mm/min: below both rates


def test_a_max_rate_below_the_job_feed_is_refused_naming_the_axis() -> None:
    check = check_settings(_settings(s110="3000", s111="12000"), MACHINE, url=URL)
    along_x = _job(100.0, Polyline(((0, 0), (10, 0))))
    along_y = _job(100.0, Polyline(((0, 0), (0, 10))))
    problem = check.job_problem(along_x, GEO)
    assert problem is not None and "$110=3000 mm/min is below the feed of 6000 mm/min" in problem
    assert "layer 'text'" in problem and "\n" not in problem
    assert check.job_problem(along_y, GEO) is None  # a Y-only stroke is not clamped by $110
    check = check_settings(_settings(s111="3000"), MACHINE, url=URL)
    assert "$111=3000" in (check.job_problem(along_y, GEO) or "")
    # a diagonal at 100 mm/s needs 4243 mm/min per axis
    diagonal = _job(100.0, Polyline(((0, 0), (10, 10))))
    assert "$111=3000" in (check.job_problem(diagonal, GEO) or "")
    assert (
        check_settings(_settings(s111="4300"), MACHINE, url=URL).job_problem(diagonal, GEO) is None
    )


def test_a_dot_feed_is_checked_against_the_x_rate() -> None:
    # a dot is a 0.02 mm move along X lasting the dwell: 0.1 ms -> 12000 mm/min
    job = _job(10.0, Dot(0.0, 0.0, 0.0001))
    assert check_settings(_settings(), MACHINE, url=URL).job_problem(job, GEO) is None
    slow = check_settings(_settings(s110="6000"), MACHINE, url=URL)
    assert "$110=6000" in (slow.job_problem(job, GEO) or "")


def test_the_refusal_is_in_the_language_of_the_run() -> None:
    i18n.set_language("es")
    try:
        check = check_settings(_settings(s30="500"), MACHINE, url=URL)
    finally:
        i18n.set_language("en")
    assert check.refusal is not None and "la potencia sería incorrecta" in check.refusal
