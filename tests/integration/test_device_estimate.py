"""The device estimate against the simulated devices' own time, for every shipped layout.

LMC: the board's GetMarkTime (the simulated board clocks the list with the same timing model).
GRBL: the planner-timed motion of the simulated controller, sped up ``GRBL_TIMING`` times over an
ideal link (host round trips are not sped up, so a much larger factor starves the planner), on
the second of two runs so that both start where a batch leaves the head (the field centre).
"""

from __future__ import annotations

import pytest

from markstation.devices.estimate import device_estimate
from markstation.devices.registry import open_device
from markstation.job.layout import build_job
from markstation.profiles import load_layout, load_machine, load_material

LAYOUTS = ("secondary-mark", "import-mark", "text-only")
GRBL_TIMING = 5.0
TOLERANCE = 0.05

pytestmark = pytest.mark.timeout(300)


def _job(machine_name: str, layout_name: str):  # type: ignore[no-untyped-def]
    machine = load_machine(machine_name)
    layout = load_layout(layout_name)
    material = load_material(machine.default_material, machine=machine)
    return machine, build_job(
        layout.code_example, layout=layout, material=material, machine=machine
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lmc_estimate_matches_the_board(layout: str) -> None:
    machine, job = _job("lmc-fiber-110", layout)
    estimate = device_estimate(job, machine).seconds
    with open_device("sim://lmc?timing=instant", machine) as driver:
        result = driver.run(job)
    assert result.complete and result.device_mark_time_s is not None
    assert estimate / result.device_mark_time_s == pytest.approx(1.0, abs=TOLERANCE)


@pytest.mark.parametrize("layout", ["import-mark", "text-only"])
def test_grbl_estimate_matches_the_controller(layout: str) -> None:
    machine, job = _job("grbl-marker", layout)
    estimate = device_estimate(job, machine).seconds
    with open_device(f"sim://grbl?timing={GRBL_TIMING:g}&link=ideal", machine) as driver:
        assert driver.run(job).complete  # from power-up at machine zero: not counted
        sim = driver._simulator  # type: ignore[attr-defined]
        before = sim.motion_s
        assert driver.run(job).complete
        device = sim.motion_s - before + 0.01  # + the program's closing G4 P0.01
    assert estimate / device == pytest.approx(1.0, abs=TOLERANCE)
