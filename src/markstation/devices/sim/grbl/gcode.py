"""The simulated GRBL's G-code interpreter: one line -> planned blocks and waiting steps.

A line is read into words, resolved against the modal state and checked completely before anything
is committed (GRBL's error codes, in GRBL's order). The non-modal commands (G4, G10, G28, G30, G53,
G92 …) and the motion modes (G0, G1, G2/G3, G80) are tables of handlers: :data:`NON_MODAL` and
:data:`MOTIONS`. G38 probing and G93 inverse time are not modelled (``error:20``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from markstation.devices.grbl.codec import fmt, split_words
from markstation.devices.sim.timing import scaled
from markstation.errors import WordError

if TYPE_CHECKING:
    from markstation.devices.sim.grbl.controller import GrblController

#: returned by a command that already wrote its own reply (or none, as after an alarm)
HANDLED = -1

_MODAL_GROUPS: dict[str, int] = {
    # G non-modal (0), motion (1), plane (2), distance (3), arc distance (4), feed mode (5),
    # units (6), cutter comp (7), tool length (8), coordinate system (12), control mode (13)
    **{k: 0 for k in ("4", "10", "28", "28.1", "30", "30.1", "53", "92", "92.1")},
    **{k: 1 for k in ("0", "1", "2", "3", "38.2", "38.3", "38.4", "38.5", "80")},
    **{k: 2 for k in ("17", "18", "19")},
    "90": 3, "91": 3, "91.1": 4, "93": 5, "94": 5, "20": 6, "21": 6, "40": 7,
    "43.1": 8, "49": 8, **{str(n): 12 for n in range(54, 60)}, "61": 13,
}  # fmt: skip
_M_GROUPS = {0: 4, 1: 4, 2: 4, 30: 4, 3: 7, 4: 7, 5: 7, 8: 8, 9: 8}
_VALUE_WORDS = set("FIJKLNPRSTXYZ")
_PROBES = ("38.2", "38.3", "38.4", "38.5")
_PLANES = {"17": (0, 1, "IJ"), "18": (2, 0, "KI"), "19": (1, 2, "JK")}

Vec = list[float] | tuple[float, ...]


def _gkey(value: float) -> str:
    return fmt(value, 1)


def v3(seq: Vec) -> tuple[float, float, float]:
    return (float(seq[0]), float(seq[1]), float(seq[2]))


@dataclass
class Block:
    """One planned straight move in machine coordinates (mm)."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    feed_mm_min: float
    rapid: bool
    #: effective S while this block runs (0 = beam off)
    burn_s: float
    jog: bool = False
    queued_at: float = 0.0

    def length(self) -> float:
        return math.dist(self.start, self.end)

    def at(self, frac: float) -> tuple[float, float, float]:
        f = min(1.0, max(0.0, frac))
        s, e = self.start, self.end
        return (s[0] + (e[0] - s[0]) * f, s[1] + (e[1] - s[1]) * f, s[2] + (e[2] - s[2]) * f)


Step = tuple[str, object]


@dataclass
class Pending:
    """A line that waits before its reply: planner room, a sync (motion drained), a dwell."""

    steps: list[Step]
    reply: bool = True


@dataclass
class Modal:
    """The G-code parser state that survives between lines (reset by a soft reset)."""

    motion: str = "0"
    plane: str = "17"
    absolute: bool = True
    inches: bool = False
    coord: int = 0  # 0 = G54
    feed: float = 0.0  # mm/min
    s: float = 0.0
    spindle: str = "M5"
    coolant: set[str] = field(default_factory=set)
    tool: int = 0
    tlo: float = 0.0


@dataclass
class Line:
    """One parsed line, resolved against the modal state but not yet committed."""

    gs: dict[int, str]
    ms: dict[int, int]
    values: dict[str, float]
    axis_words: set[str] = field(default_factory=set)
    inches: bool = False
    unit: float = 1.0
    absolute: bool = True
    plane: str = "17"
    motion: str = "0"
    feed: float = 0.0
    coord: int = 0
    wco: list[float] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    target: list[float] = field(default_factory=list)
    used: set[str] = field(default_factory=lambda: {"N", "F", "S", "T"})
    blocks: list[Block] = field(default_factory=list)

    @property
    def nonmodal(self) -> str | None:
        return self.gs.get(0)

    @property
    def motion_word(self) -> str | None:
        return self.gs.get(1)


# --- parsing -------------------------------------------------------------------------------------


def _parse(text: str) -> Line | int:
    """Words -> a Line, or the error code of the first bad word."""
    try:
        words = split_words(text)
    except WordError as exc:
        return exc.code
    line = Line({}, {}, {})
    for letter, value, _ in words:
        if letter == "G":
            key = _gkey(value)
            if key not in _MODAL_GROUPS:
                return 23 if value != int(value) and _gkey(int(value)) in _MODAL_GROUPS else 20
            group = _MODAL_GROUPS[key]
            if group in line.gs:
                return 21
            line.gs[group] = key
        elif letter == "M":
            if value != int(value):
                return 23
            code = int(value)
            if code not in _M_GROUPS:
                return 20
            if _M_GROUPS[code] in line.ms:
                return 21
            line.ms[_M_GROUPS[code]] = code
        elif letter in _VALUE_WORDS:
            if letter in line.values:
                return 25
            if letter in "FNPST" and value < 0:
                return 4
            line.values[letter] = value
        else:
            return 20
    return line


# --- non-modal commands: check (before commit), apply (after the modal state is committed) --------


@dataclass(frozen=True)
class NonModal:
    check: Callable[[GrblController, Line], int | None] = lambda sim, ln: None
    apply: Callable[[GrblController, Line], None] = lambda sim, ln: None
    #: its axis words are parameters, not a move
    uses_axes: bool = False
    #: its axis words are machine coordinates (G53)
    machine: bool = False


def _check_dwell(sim: GrblController, ln: Line) -> int | None:
    if "P" not in ln.values:
        return 28
    ln.used.add("P")
    return None


def _check_g10(sim: GrblController, ln: Line) -> int | None:
    v = ln.values
    if "L" not in v or "P" not in v:
        return 28
    if v["L"] not in (2, 20):
        return 20
    if v["P"] != int(v["P"]) or v["P"] > 6:
        return 29
    if not ln.axis_words:
        return 26
    ln.used |= {"L", "P"}
    return None


def _apply_g10(sim: GrblController, ln: Line) -> None:
    p = int(ln.values["P"])
    idx = sim.modal.coord if p == 0 else p - 1
    for i, a in enumerate("XYZ"):
        if a in ln.values:
            v = ln.values[a] * ln.unit
            if ln.values["L"] == 2:
                sim.offsets[idx][i] = v
            else:
                sim.offsets[idx][i] = ln.start[i] - v - sim.g92[i]
    sim.wco_due = True


def _check_axes_given(sim: GrblController, ln: Line) -> int | None:
    return None if ln.axis_words else 26


def _apply_g92(sim: GrblController, ln: Line) -> None:
    for i, a in enumerate("XYZ"):
        if a in ln.values:
            sim.g92[i] = ln.start[i] - sim.offsets[ln.coord][i] - ln.values[a] * ln.unit
    sim.wco_due = True


def _apply_g92_1(sim: GrblController, ln: Line) -> None:
    sim.g92 = [0.0, 0.0, 0.0]
    sim.wco_due = True


def _apply_store(sim: GrblController, ln: Line) -> None:
    assert ln.nonmodal is not None
    sim.stored[int(float(ln.nonmodal))] = list(ln.start)


def _apply_go_stored(sim: GrblController, ln: Line) -> None:
    assert ln.nonmodal is not None
    via = list(ln.start)
    for i, a in enumerate("XYZ"):
        if a in ln.values:
            via[i] = ln.values[a] * ln.unit + (ln.wco[i] if ln.absolute else ln.start[i])
    home = sim.stored[int(ln.nonmodal)]
    rate = sim.rapid_rate(ln.start, home)
    ln.blocks += [
        Block(v3(ln.start), v3(via), rate, True, 0.0),
        Block(v3(via), v3(home), rate, True, 0.0),
    ]


def _check_g53(sim: GrblController, ln: Line) -> int | None:
    return 30 if ln.motion not in ("0", "1") else None


NON_MODAL: dict[str, NonModal] = {
    "4": NonModal(check=_check_dwell),
    "10": NonModal(check=_check_g10, apply=_apply_g10, uses_axes=True),
    "28": NonModal(apply=_apply_go_stored, uses_axes=True),
    "30": NonModal(apply=_apply_go_stored, uses_axes=True),
    "28.1": NonModal(apply=_apply_store),
    "30.1": NonModal(apply=_apply_store),
    "53": NonModal(check=_check_g53, machine=True),
    "92": NonModal(check=_check_axes_given, apply=_apply_g92, uses_axes=True),
    "92.1": NonModal(apply=_apply_g92_1),
}
_NONE = NonModal()


# --- motion modes: check (before commit), plan (the blocks of the move) ---------------------------


@dataclass(frozen=True)
class Motion:
    check: Callable[[GrblController, Line], int | None]
    plan: Callable[[GrblController, Line], list[Block]]


def _needs_feed(sim: GrblController, ln: Line) -> int | None:
    return 22 if ln.feed <= 0 else None


def _plan_rapid(sim: GrblController, ln: Line) -> list[Block]:
    rate = sim.rapid_rate(ln.start, ln.target)
    return [Block(v3(ln.start), v3(ln.target), rate, True, sim.burn_for("0"))]


def _plan_linear(sim: GrblController, ln: Line) -> list[Block]:
    rate = sim.clamp_feed(ln.start, ln.target, ln.feed)
    return [Block(v3(ln.start), v3(ln.target), rate, False, sim.burn_for("1"))]


def _check_arc(sim: GrblController, ln: Line) -> int | None:
    err = _needs_feed(sim, ln)
    if err is not None:
        return err
    a0, a1, offs = _PLANES[ln.plane]
    start, target, values = ln.start, ln.target, ln.values
    if not ln.axis_words:
        return 26
    if "XYZ"[a0] not in ln.axis_words and "XYZ"[a1] not in ln.axis_words:
        return 32
    ln.used |= {"I", "J", "K", "R"}
    # the check converts with the units in force before this line (as it always has)
    unit = 25.4 if sim.modal.inches else 1.0
    if "R" in values:
        if start[a0] == target[a0] and start[a1] == target[a1]:
            return 33
        x, y = target[a0] - start[a0], target[a1] - start[a1]
        r = values["R"] * unit
        return 34 if 4 * r * r - x * x - y * y < 0 else None
    if offs[0] not in values and offs[1] not in values:
        return 35
    ci = start[a0] + values.get(offs[0], 0.0) * unit
    cj = start[a1] + values.get(offs[1], 0.0) * unit
    r0 = math.hypot(start[a0] - ci, start[a1] - cj)
    r1 = math.hypot(target[a0] - ci, target[a1] - cj)
    delta = abs(r1 - r0)
    if delta > 0.005 and (delta > 0.5 or delta > 0.001 * r0):
        return 33
    return None


def _plan_arc(sim: GrblController, ln: Line) -> list[Block]:
    """Chords within ``$12`` (arc tolerance) of the circle, as GRBL's mc_arc cuts them."""
    a0, a1, offs = _PLANES[ln.plane]
    start, target, values, unit = ln.start, ln.target, ln.values, ln.unit
    cw = ln.motion == "2"
    if "R" in values:
        r = values["R"] * unit
        x, y = target[a0] - start[a0], target[a1] - start[a1]
        h = -math.sqrt(max(0.0, 4 * r * r - x * x - y * y)) / math.hypot(x, y)
        if not cw:
            h = -h
        if r < 0:
            h, r = -h, -r
        ci = start[a0] + 0.5 * (x - y * h)
        cj = start[a1] + 0.5 * (y + x * h)
    else:
        ci = start[a0] + values.get(offs[0], 0.0) * unit
        cj = start[a1] + values.get(offs[1], 0.0) * unit
        r = math.hypot(start[a0] - ci, start[a1] - cj)
    t0 = math.atan2(start[a1] - cj, start[a0] - ci)
    t1 = math.atan2(target[a1] - cj, target[a0] - ci)
    sweep = t1 - t0
    if cw and sweep >= -1e-9:
        sweep -= 2 * math.pi
    elif not cw and sweep <= 1e-9:
        sweep += 2 * math.pi
    tol = sim.settings[12] or 0.002
    seg_angle = 2 * math.acos(max(-1.0, 1 - tol / r)) if r > tol else math.pi / 4
    n = max(1, math.ceil(abs(sweep) / max(seg_angle, 1e-3)))
    blocks: list[Block] = []
    prev = list(start)
    burn = sim.burn_for(ln.motion)
    lin = 3 - a0 - a1
    for k in range(1, n + 1):
        if k == n:
            nxt = list(target)
        else:
            ang = t0 + sweep * k / n
            nxt = list(prev)
            nxt[a0] = ci + r * math.cos(ang)
            nxt[a1] = cj + r * math.sin(ang)
            nxt[lin] = start[lin] + (target[lin] - start[lin]) * k / n
        rate = sim.clamp_feed(prev, nxt, ln.feed)
        blocks.append(Block(v3(prev), v3(nxt), rate, False, burn))
        prev = nxt
    return blocks


MOTIONS: dict[str, Motion] = {
    "0": Motion(check=lambda sim, ln: None, plan=_plan_rapid),
    "1": Motion(check=_needs_feed, plan=_plan_linear),
    "2": Motion(check=_check_arc, plan=_plan_arc),
    "3": Motion(check=_check_arc, plan=_plan_arc),
}


# --- the line ----------------------------------------------------------------------------------


def _resolve(sim: GrblController, ln: Line, spec: NonModal) -> None:
    """Fill in the modal values and the move's target (nothing is committed)."""
    m = sim.modal
    gs, values = ln.gs, ln.values
    ln.axis_words = {a for a in "XYZ" if a in values}
    ln.inches = {"20": True, "21": False}.get(gs.get(6, ""), m.inches)
    ln.unit = 25.4 if ln.inches else 1.0
    ln.absolute = {"90": True, "91": False}.get(gs.get(3, ""), m.absolute)
    ln.plane = gs.get(2, m.plane)
    ln.motion = ln.motion_word if ln.motion_word is not None else m.motion
    ln.feed = values["F"] * ln.unit if "F" in values else m.feed
    ln.coord = int(gs[12]) - 54 if 12 in gs else m.coord
    ln.wco = [sim.offsets[ln.coord][i] + sim.g92[i] + (m.tlo if i == 2 else 0.0) for i in range(3)]


def _target(sim: GrblController, ln: Line, spec: NonModal) -> None:
    ln.start = sim.planned_end()
    ln.target = list(ln.start)
    if ln.axis_words and not spec.uses_axes:
        for i, a in enumerate("XYZ"):
            if a in ln.values:
                v = ln.values[a] * ln.unit
                if spec.machine:
                    ln.target[i] = v
                elif ln.absolute:
                    ln.target[i] = v + ln.wco[i]
                else:
                    ln.target[i] = ln.start[i] + v


def _check(sim: GrblController, ln: Line) -> int | None:
    """Every refusal GRBL makes before it commits anything, in GRBL's order."""
    v = ln.values
    if "N" in v and not (0 <= v["N"] <= 9999999):
        return 27
    if "T" in v and (v["T"] != int(v["T"]) or v["T"] > 255):
        return 23 if v["T"] != int(v["T"]) else 38
    if ln.nonmodal in _PROBES or ln.motion_word in _PROBES:
        return 20  # probing: not modelled
    if ln.gs.get(5) == "93":
        return 20  # inverse-time feed: not modelled
    return None


def execute(sim: GrblController, text: str, now: float) -> int | None:
    """Execute one G-code line; an error code, or None (then maybe ``sim.pending``)."""
    ln = _parse(text)
    if isinstance(ln, int):
        return ln
    err = _check(sim, ln)
    if err is not None:
        return err
    spec = NON_MODAL.get(ln.nonmodal or "", _NONE)
    _resolve(sim, ln, spec)
    if spec.uses_axes and ln.motion_word is not None and ln.axis_words:
        return 24
    err = spec.check(sim, ln)
    if err is not None:
        return err
    _target(sim, ln, spec)
    moves = bool(ln.axis_words) and not spec.uses_axes
    motion = MOTIONS.get(ln.motion)
    if ln.motion == "80":
        if ln.axis_words:
            return 31
        moves = False
    elif (moves or ln.motion_word is not None) and motion is not None:
        err = motion.check(sim, ln)
        if err is not None:
            return err
    if set(ln.values) - ln.used - ln.axis_words:
        return 36
    spindle_change = _commit_modal(sim, ln)
    spec.apply(sim, ln)
    if moves and motion is not None:
        if sim.soft_limit_hit(ln.target):
            sim.raise_alarm(2, now, critical=True)
            return HANDLED
        ln.blocks.extend(motion.plan(sim, ln))
    _queue_steps(sim, ln, spindle_change)
    return None


def _commit_modal(sim: GrblController, ln: Line) -> bool:
    """Commit the modal state of a valid line; True when the laser state changed."""
    m, values, ms = sim.modal, ln.values, ln.ms
    m.inches, m.absolute, m.plane, m.coord = ln.inches, ln.absolute, ln.plane, ln.coord
    if ln.motion_word is not None:
        m.motion = ln.motion_word
    if "F" in values:
        m.feed = ln.feed
    if "T" in values:
        m.tool = int(values["T"])
    if "S" in values:
        m.s = values["S"]
    spindle_change = False
    if 7 in ms and f"M{ms[7]}" != m.spindle:
        # the planner carries the laser state with each block, so it changes here; the line
        # still waits for the motion before it (laser mode syncs on M3/M4/M5 changes)
        m.spindle = f"M{ms[7]}"
        spindle_change = True
    if 8 in ms:
        if ms[8] == 9:
            m.coolant.clear()
        else:
            m.coolant.add(f"M{ms[8]}")
    if ln.gs.get(8) == "43.1":
        m.tlo = values.get("Z", 0.0) * ln.unit
    elif ln.gs.get(8) == "49":
        m.tlo = 0.0
    return spindle_change


def _queue_steps(sim: GrblController, ln: Line, spindle_change: bool) -> None:
    """What the line waits for before its ``ok``: a sync, the dwell, planner room, program end."""
    m = sim.modal
    blocks = [] if sim.check_mode else ln.blocks
    dwell = ln.values.get("P", 0.0) if ln.nonmodal == "4" else None
    steps: list[Step] = []
    if spindle_change or dwell is not None:

        def before_motion(t: float) -> None:
            if dwell is None or sim.check_mode:
                return
            s = sim.laser_s()
            if s > 0 and (
                not sim.settings[32] or (m.spindle == "M3" and m.motion in ("1", "2", "3"))
            ):
                sim.burn.dot(sim.pos[0], sim.pos[1], s, dwell)  # the output is on at rest: a spot
            end = t + scaled(dwell, sim.speed)
            if end > t and sim.pending is not None:
                sim.pending.steps.insert(1, ("dwell", end))

        steps.append(("sync", before_motion))
    if blocks:
        steps.append(("plan", blocks))
    if ln.ms.get(4) in (2, 30):

        def program_end(t: float) -> None:
            m.spindle = "M5"
            m.coolant.clear()
            m.motion, m.absolute, m.coord, m.plane = "1", True, 0, "17"
            sim.g92 = [0.0, 0.0, 0.0]
            sim.emit("[MSG:Pgm End]")

        steps.append(("sync", program_end))
    if steps:
        sim.pending = Pending(steps)


def gc_report(sim: GrblController) -> str:
    """``$G``: the parser state."""
    m = sim.modal
    words = [
        f"G{m.motion}",
        f"G{54 + m.coord}",
        f"G{m.plane}",
        "G20" if m.inches else "G21",
        "G90" if m.absolute else "G91",
        "G94",
        m.spindle,
        "M8" if "M8" in m.coolant else "M9",
        f"T{m.tool}",
        f"F{fmt(m.feed / 25.4 if m.inches else m.feed, 0)}",
        f"S{fmt(m.s, 0)}",
    ]
    return f"[GC:{' '.join(words)}]"


def jog(sim: GrblController, body: str, now: float) -> int | None:
    """``$J=…``: one jog block (error:16 for anything a jog may not carry)."""
    try:
        words = split_words(body)
    except WordError as exc:
        return exc.code
    values: dict[str, float] = {}
    inches, absolute, machine = sim.modal.inches, sim.modal.absolute, False
    for letter, value, _ in words:
        if letter == "G":
            key = _gkey(value)
            if key in ("20", "21"):
                inches = key == "20"
            elif key in ("90", "91"):
                absolute = key == "90"
            elif key == "53":
                machine = True
            else:
                return 16
        elif letter in "XYZFN":
            if letter in values:
                return 25
            values[letter] = value
        else:
            return 16
    if "F" not in values:
        return 22
    if not any(a in values for a in "XYZ"):
        return 26
    unit = 25.4 if inches else 1.0
    start = sim.planned_end()
    wco = sim.wco()
    target = list(start)
    for i, a in enumerate("XYZ"):
        if a in values:
            v = values[a] * unit
            target[i] = v if machine else (v + wco[i] if absolute else start[i] + v)
    if sim.soft_limit_hit(target):
        return 15
    rate = sim.clamp_feed(start, target, values["F"] * unit)
    burn = sim.burn_for("1", jog=True)
    if not sim.check_mode:
        block = Block(v3(start), v3(target), rate, False, burn, jog=True)
        sim.pending = Pending([("plan", [block])])
    return None
