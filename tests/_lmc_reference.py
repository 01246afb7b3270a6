"""The scalar LMC list encoder, kept as the oracle of the vectorised one (issue 13).

This is the encoder ``markstation.devices.lmc.codec.job_to_entries`` was before it was vectorised,
one entry at a time, unchanged: ``tests/unit/test_lmc_vector_encoder.py`` checks with Hypothesis
that the vectorised encoder writes exactly these entries (and raises the same errors).
"""

from __future__ import annotations

from markstation.devices.lmc.codec import (
    END_DELAY_S,
    GALVO_CENTRE,
    MAX_DWELL_TICKS,
    Entry,
    Geometry,
    ListOp,
    distance_word,
    layer_settings,
    ticks_10us,
)
from markstation.errors import JobError
from markstation.job.ir import Dot, Job, Layer, Polyline
from markstation.profiles import MachineProfile


class _Emitter:
    """Appends motion entries, tracking the galvo position for the distance words."""

    def __init__(self, g: Geometry) -> None:
        self.g = g
        self.pos = (GALVO_CENTRE, GALVO_CENTRE)
        self.out: list[Entry] = []

    def jump(self, p: tuple[int, int]) -> None:
        self.out.append(Entry(ListOp.JUMP_TO, p[0], p[1], 0, distance_word(self.pos, p)))
        self.pos = p

    def polyline(self, line: Polyline) -> None:
        to_galvo = self.g.to_galvo
        self.jump(to_galvo(*line.points[0]))
        marked = False
        for x, y in line.points[1:]:
            p = to_galvo(x, y)
            if p == self.pos:
                continue  # a zero-distance MarkTo makes the board mark in pieces
            self.out.append(Entry(ListOp.MARK_TO, p[0], p[1], 0, distance_word(self.pos, p)))
            self.pos = p
            marked = True
        if not marked:
            # shorter than one galvo unit: still burn it, as a mark of the smallest distance
            self.out.append(Entry(ListOp.MARK_TO, self.pos[0], self.pos[1], 0, 1))
        self.out.append(Entry(ListOp.DELAY_TIME, ticks_10us(END_DELAY_S)))

    def dot(self, dot: Dot) -> None:
        self.jump(self.g.to_galvo(dot.x, dot.y))
        ticks = max(1, ticks_10us(dot.dwell_s))
        while ticks > 0:
            chunk = min(ticks, MAX_DWELL_TICKS)
            self.out.append(Entry(ListOp.LASER_ON_POINT, chunk))
            ticks -= chunk


def reference_job_to_entries(job: Job, machine: MachineProfile) -> list[Entry]:
    """The list for ``job``, one entry at a time (the scalar encoder)."""
    g = Geometry.from_machine(machine)
    em = _Emitter(g)
    em.out.append(Entry(ListOp.READY_MARK))
    for layer in job.layers:
        _emit_layer(em, layer, machine)
    em.jump((GALVO_CENTRE, GALVO_CENTRE))
    return em.out


def _emit_layer(em: _Emitter, layer: Layer, machine: MachineProfile) -> None:
    if not layer.primitives:
        return
    if layer.params.passes < 1:
        raise JobError(f"layer '{layer.name}': passes must be ≥ 1")
    em.out.extend(layer_settings(layer.params, machine, em.g))
    for _ in range(layer.params.passes):
        for prim in layer.primitives:
            if isinstance(prim, Dot):
                em.dot(prim)
            else:
                em.polyline(prim)
