"""What the simulated GRBL burned: strokes in machine mm, grouped into ledger jobs.

A ledger job starts at the first burning move after the controller was idle with the laser off and
ends at ``M5``/``M2``/``M30`` (complete) or at a reset, alarm, disconnect or stall (incomplete). The
ledger format (:mod:`markstation.devices.sim.ledger`) is a contract; strokes go there in mm of the
field frame.
"""

from __future__ import annotations

import math

from markstation.devices.grbl.codec import DOT_MOVE_MM, Geometry
from markstation.devices.sim.grbl.gcode import Block
from markstation.devices.sim.ledger import Ledger
from markstation.job.ir import Point


class BurnRecorder:
    """Collects the strokes the beam traced; the caller holds the controller's lock."""

    def __init__(self, geometry: Geometry, ledger: Ledger | None) -> None:
        self.geometry = geometry
        self.ledger = ledger
        #: the highest S that burned (after override and the $30 clamp)
        self.max_burn_s = 0.0
        self.all_strokes: list[list[Point]] = []  # machine mm, every stroke since creation
        #: one per stroke of ``all_strokes``: (dwell s, S) of a dot, None for a line
        self.all_dots: list[tuple[float, float] | None] = []
        self._strokes: list[list[Point]] = []  # machine mm, closed strokes of the current job
        self._stroke: list[Point] | None = None
        #: the open stroke's time under the beam at the programmed feed (s), and its highest S
        self._stroke_on_s = 0.0
        self._stroke_s = 0.0
        self._job: int | None = None

    @property
    def job_open(self) -> bool:
        return self._job is not None

    def record(self, block: Block, f0: float, f1: float) -> None:
        """The part ``f0``..``f1`` of ``block`` ran: extend the open stroke or start one."""
        if block.burn_s <= 0 or f1 <= f0:
            # A beam-off move that goes nowhere (the codec's G0 to where the last stroke ended)
            # leaves no gap in the mark; GRBL's planner drops such empty blocks altogether.
            if block.burn_s <= 0 and block.length() == 0:
                return
            self.close_stroke()
            return
        self.max_burn_s = max(self.max_burn_s, block.burn_s)
        a, b = block.at(f0), block.at(f1)
        pa, pb = (a[0], a[1]), (b[0], b[1])
        if self._stroke and math.dist(self._stroke[-1], pa) < 1e-6:
            self._stroke.append(pb)
        else:
            self.close_stroke()
            self._stroke = [pa, pb]
        if block.feed_mm_min > 0:
            self._stroke_on_s += (f1 - f0) * block.length() / (block.feed_mm_min / 60.0)
        self._stroke_s = max(self._stroke_s, block.burn_s)

    def dot(self, x: float, y: float, s: float, dwell_s: float = 0.0) -> None:
        """The output is on at rest (a ``G4`` dwell of ``dwell_s``): a spot."""
        self.close_stroke()
        self.open_job()
        spot = [(x, y)]
        self._strokes.append(spot)
        self.all_strokes.append(spot)
        self.all_dots.append((dwell_s, s))
        self.max_burn_s = max(self.max_burn_s, s)

    def close_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        on_s, s, self._stroke_on_s, self._stroke_s = self._stroke_on_s, self._stroke_s, 0.0, 0.0
        if not stroke:
            return
        length = sum(math.dist(stroke[i], stroke[i + 1]) for i in range(len(stroke) - 1))
        dot: tuple[float, float] | None = None
        if length <= DOT_MOVE_MM * 1.5:  # a dot marked as a tiny move (see codec) is a dot
            xs = [p[0] for p in stroke]
            ys = [p[1] for p in stroke]
            stroke = [((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)]
            # under M4 the move delivers S for its programmed time: the dwell the codec asked for
            dot = (on_s, s)
        self._strokes.append(stroke)
        self.all_strokes.append(stroke)
        self.all_dots.append(dot)

    def open_job(self) -> None:
        if self._job is not None:
            return
        self._strokes = []
        self._job = self.ledger.start() if self.ledger is not None else 0

    def end_job(self, *, complete: bool) -> None:
        self.close_stroke()
        if self._job is None:
            return
        job, self._job = self._job, None
        if self.ledger is not None:
            self.ledger.end(
                job, complete=complete, polylines=[self.to_field(s) for s in self._strokes]
            )
        self._strokes = []

    def burns(self) -> list[list[Point]]:
        """Every stroke burned so far (the open one included), in mm of the field frame."""
        strokes = [*self.all_strokes]
        if self._stroke:
            strokes.append(list(self._stroke))
        return [self.to_field(s) for s in strokes]

    def dots(self) -> list[tuple[float, float] | None]:
        """One per stroke of :meth:`burns`: (dwell s, S) of a dot, None for a line."""
        return [*self.all_dots, None] if self._stroke else [*self.all_dots]

    def to_field(self, stroke: list[Point]) -> list[Point]:
        return [self.geometry.to_field(x, y) for x, y in stroke]
