"""How long a job takes to mark, from its speeds, delays, dwells and passes.

The model (the same one a galvo controller's list executes, without acceleration):

* **marking**: every polyline is traced at the layer's mark speed: ``length / speed_mm_s``;
* **dwell**: every dot fires in place for its ``dwell_s``;
* **delays**: every primitive (stroke or dot) costs the laser-on delay before and the laser-off
  delay after it (negative delays overlap the motion and cost nothing); every interior corner of a
  polyline costs the polygon delay; every jump of non-zero length costs the jump delay (mirror
  settling);
* **jumps**: travel between primitives at the layer's jump speed, starting from the field centre,
  in the job's order;
* **passes**: a layer with ``passes = n`` is marked n times in a row; the jump from the end of one
  pass back to the start of the next counts like any other jump.

Times for a layer are summed over its passes; the job total is the sum of its layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markstation.job.ir import Dot, Job, Layer, Point


@dataclass(frozen=True, slots=True)
class LayerEstimate:
    """Seconds spent on one layer, all passes included."""

    name: str
    passes: int
    mark_s: float
    dwell_s: float
    jump_s: float
    delay_s: float
    marked_mm: float
    jump_mm: float

    @property
    def total_s(self) -> float:
        return self.mark_s + self.dwell_s + self.jump_s + self.delay_s


@dataclass(frozen=True, slots=True)
class Estimate:
    """Estimated marking time of a job, by kind of work and by layer (all passes included)."""

    layers: tuple[LayerEstimate, ...]

    @property
    def mark_s(self) -> float:
        return sum(layer.mark_s for layer in self.layers)

    @property
    def dwell_s(self) -> float:
        return sum(layer.dwell_s for layer in self.layers)

    @property
    def jump_s(self) -> float:
        return sum(layer.jump_s for layer in self.layers)

    @property
    def delay_s(self) -> float:
        return sum(layer.delay_s for layer in self.layers)

    @property
    def total_s(self) -> float:
        return sum(layer.total_s for layer in self.layers)

    @property
    def marked_mm(self) -> float:
        return sum(layer.marked_mm for layer in self.layers)

    @property
    def jump_mm(self) -> float:
        return sum(layer.jump_mm for layer in self.layers)


def _layer_estimate(layer: Layer, start: Point) -> tuple[LayerEstimate, Point]:
    p = layer.params
    passes = max(1, p.passes)
    on_off = max(0.0, p.laser_on_delay_s) + max(0.0, p.laser_off_delay_s)
    marked = 0.0
    dwell = 0.0
    corners = 0
    for prim in layer.primitives:
        if isinstance(prim, Dot):
            dwell += prim.dwell_s
        else:
            marked += prim.length()
            corners += len(prim.points) - 2
    per_pass_delay = len(layer.primitives) * on_off + corners * p.polygon_delay_s
    jump_mm = 0.0
    jumps = 0
    pos = start
    for _ in range(passes):
        for prim in layer.primitives:
            d = math.dist(pos, prim.start)
            if d > 1e-9:
                jump_mm += d
                jumps += 1
            pos = prim.end
    est = LayerEstimate(
        name=layer.name,
        passes=passes,
        mark_s=passes * marked / p.speed_mm_s,
        dwell_s=passes * dwell,
        jump_s=jump_mm / p.jump_speed_mm_s,
        delay_s=passes * per_pass_delay + jumps * p.jump_delay_s,
        marked_mm=passes * marked,
        jump_mm=jump_mm,
    )
    return est, pos


def estimate(job: Job) -> Estimate:
    """Estimate the marking time of ``job`` (see the module docstring for the model)."""
    pos: Point = (0.0, 0.0)
    layers: list[LayerEstimate] = []
    for layer in job.layers:
        est, pos = _layer_estimate(layer, pos)
        layers.append(est)
    return Estimate(tuple(layers))


def estimate_seconds(job: Job) -> float:
    """The job's estimated marking time in seconds: what progress bars, watchdogs and journals use."""
    return float(estimate(job).total_s)


def format_duration(seconds: float) -> str:
    """'0.84 s', '12.3 s', '2 min 05 s' — how the preview and the CLI print a time."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"
