"""Benchmark: laser time of every shipped layout on every shipped material, against its floor.

For each layout × material (galvo materials on ``lmc-fiber-110``, ``blued-steel-gantry`` on
``grbl-marker``) it builds the layout's example code and prints:

* **device** — :func:`markstation.devices.estimate.device_estimate`: the LMC list clocked by the
  board's timing model (what the simulated board's GetMarkTime reports), or GRBL's planner;
* **per-stroke** — the same with ``hatch_join = false`` (one stroke per scan line and run, the
  hatch before issue 14), for comparison;
* **floor** — what no stroke order can beat: per layer and pass, the job's marked length at the
  mark speed, plus one stroke's laser-on, laser-off, end-of-stroke delay (the codec's 300 µs
  DelayTime) and jump delay on LMC; the marked length at the mark speed on GRBL;
* **gap** — device − floor, in seconds and as a share of the device time.

Run: ``python benchmarks/bench_laser_time.py`` (a few seconds). Before issue 14 the secondary mark
on blued-steel took 6.44 s on the simulated board.
"""

from __future__ import annotations

import dataclasses

from markstation.devices.estimate import device_estimate
from markstation.devices.lmc.codec import END_DELAY_S
from markstation.job.ir import Job
from markstation.job.layout import build_job
from markstation.profiles import (
    LayoutProfile,
    MachineProfile,
    MaterialProfile,
    load_layout,
    load_machine,
    load_material,
)

LAYOUTS = ("secondary-mark", "import-mark", "text-only")
RUNS = (
    ("lmc-fiber-110", ("blued-steel", "stainless", "anodised-aluminium", "polymer-frame-tag")),
    ("grbl-marker", ("blued-steel-gantry",)),
)


def floor_seconds(job: Job, machine: MachineProfile) -> float:
    """The floor described in the module docstring."""
    total = 0.0
    for layer in job.layers:
        p = layer.params
        length = sum(prim.length() for prim in layer.primitives)
        one = length / p.speed_mm_s
        if machine.protocol == "lmc":
            one += max(0.0, p.laser_on_delay_s) + max(0.0, p.laser_off_delay_s)
            one += END_DELAY_S + p.jump_delay_s
        total += p.passes * one
    return total


def measure(
    layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
) -> tuple[float, float, float]:
    """(device, per-stroke device, floor) seconds for the layout's example code."""
    code = layout.code_example
    job = build_job(code, layout=layout, material=material, machine=machine)
    plain = dataclasses.replace(material, hatch_join=False)
    before = build_job(code, layout=layout, material=plain, machine=machine)
    return (
        device_estimate(job, machine).seconds,
        device_estimate(before, machine).seconds,
        floor_seconds(job, machine),
    )


def main() -> None:
    header = (
        f"{'layout':<15} {'material':<19} {'device s':>9} {'per-stroke s':>13} "
        f"{'floor s':>8} {'gap s':>7} {'gap %':>6}"
    )
    print(header)
    print("-" * len(header))
    for machine_name, materials in RUNS:
        machine = load_machine(machine_name)
        for layout_name in LAYOUTS:
            layout = load_layout(layout_name)
            for material_name in materials:
                material = load_material(material_name)
                device, before, floor = measure(layout, material, machine)
                gap = device - floor
                print(
                    f"{layout_name:<15} {material_name:<19} {device:9.3f} {before:13.3f} "
                    f"{floor:8.3f} {gap:7.3f} {100 * gap / device:6.1f}"
                )


if __name__ == "__main__":
    main()
