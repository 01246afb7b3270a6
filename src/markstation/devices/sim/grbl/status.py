"""The simulated GRBL's real-time bytes (``?`` ``!`` ``~`` door, jog cancel, overrides) and status reports.

Real-time bytes act the moment they arrive on the UART, even inside a comment; each is one handler
in :data:`REALTIME`. Soft reset (0x18) is handled by the controller itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from markstation.devices.grbl.codec import fmt
from markstation.devices.sim.grbl.settings import PLANNER_BLOCKS, RX_BUFFER, triple

if TYPE_CHECKING:
    from markstation.devices.sim.grbl.controller import GrblController

#: feed override steps (0x90 resets to 100 %), then spindle (laser power) override steps
_FEED_STEPS = {0x91: 10, 0x92: -10, 0x93: 1, 0x94: -1}
_RAPID = {0x95: 100, 0x96: 50, 0x97: 25}
_SPINDLE_STEPS = {0x9A: 10, 0x9B: -10, 0x9C: 1, 0x9D: -1}


def state_text(sim: GrblController) -> str:
    if sim.sleeping:
        return "Sleep"
    if sim.alarm is not None:
        return "Alarm"
    if sim.door:
        return "Door:0"
    if sim.hold:
        return "Hold:0"
    if sim.cur is not None and sim.cur.jog:
        return "Jog"
    if sim.moving():
        return "Run"
    if sim.check_mode:
        return "Check"
    return "Idle"


def status_report(sim: GrblController, t: float) -> str:
    """``<State|MPos|Bf|FS|Pn|WCO|Ov|A>``: WCO and Ov only now and then, as GRBL does."""
    mpos = sim.machine_pos(t)
    wco = sim.wco()
    mask = int(sim.settings[10])
    fields = [state_text(sim)]
    if mask & 1:
        fields.append("MPos:" + triple(list(mpos)))
    else:
        fields.append("WPos:" + triple([mpos[i] - wco[i] for i in range(3)]))
    if mask & 2:
        used = len(sim.planner) + (sim.cur is not None)
        fields.append(f"Bf:{PLANNER_BLOCKS - used},{RX_BUFFER - len(sim.ring)}")
    feed = 0.0
    power = 0.0
    if sim.cur is not None and not sim.hold:
        pct = sim.overrides[1] if sim.cur.rapid else sim.overrides[0]
        feed = sim.cur.feed_mm_min * pct / 100
        power = sim.cur.burn_s
    elif sim.modal.spindle == "M3" and sim.modal.motion in ("1", "2", "3"):
        power = sim.laser_s()  # M3 with G1 modal keeps the output on at rest
    fields.append(f"FS:{fmt(feed, 0)},{fmt(power, 0)}")
    if sim.door:
        fields.append("Pn:D")
    busy = sim.moving()
    sim.report_count += 1
    if sim.wco_due or sim.report_count % (30 if busy else 10) == 0:
        fields.append("WCO:" + triple(wco))
        sim.wco_due = False
    elif sim.ov_due or sim.report_count % (20 if busy else 10) == 1:
        fields.append("Ov:" + ",".join(str(v) for v in sim.overrides))
        acc = {"M3": "S", "M4": "C"}.get(sim.modal.spindle, "")
        acc += "F" if "M8" in sim.modal.coolant else ""
        if acc:
            fields.append("A:" + acc)
        sim.ov_due = False
    return "<" + "|".join(fields) + ">"


# --- real-time bytes ---------------------------------------------------------------------------


def _status_query(sim: GrblController, b: int, t: float) -> None:
    if not (sim.critical or sim.sleeping):
        sim.emit(status_report(sim, sim.clock()))


def feed_hold(sim: GrblController, t: float) -> None:
    if sim.alarm is not None or sim.sleeping or sim.hold:
        return
    sim.interrupt_motion(t)  # decelerates at once in this model: Hold:0 right away
    sim.hold = True


def _feed_hold(sim: GrblController, b: int, t: float) -> None:
    feed_hold(sim, t)


def _cycle_start(sim: GrblController, b: int, t: float) -> None:
    if not sim.hold:
        return
    sim.door = False
    sim.hold = False
    if sim.cur is not None:
        sim.cur_t0 = t


def _door(sim: GrblController, b: int, t: float) -> None:
    if not sim.door:
        sim.door = True
        feed_hold(sim, t)
        sim.emit("[MSG:Check Door]")


def _jog_cancel(sim: GrblController, b: int, t: float) -> None:
    cur = sim.cur
    if cur is not None and cur.jog:
        sim.interrupt_motion(t)
        sim.pos = list(cur.at(sim.cur_frac0))
        sim.cur = None
        sim.motion_free_at = t
        sim.planner = deque(blk for blk in sim.planner if not blk.jog)


def _override(sim: GrblController, b: int, t: float) -> None:
    feed, rapid, spindle = sim.overrides
    if b == 0x90:
        feed = 100
    elif b in _FEED_STEPS:
        feed += _FEED_STEPS[b]
    elif b in _RAPID:
        rapid = _RAPID[b]
    elif b == 0x99:
        spindle = 100
    elif b in _SPINDLE_STEPS:
        spindle += _SPINDLE_STEPS[b]
    new = [min(200, max(10, feed)), rapid, min(200, max(10, spindle))]
    if new != sim.overrides:
        sim.overrides = new
        sim.ov_due = True


Realtime = Callable[["GrblController", int, float], None]

#: real-time byte -> handler; the motion is brought up to the byte's arrival time first
REALTIME: dict[int, Realtime] = {
    0x3F: _status_query,  # ?
    0x21: _feed_hold,  # !
    0x7E: _cycle_start,  # ~
    0x84: _door,
    0x85: _jog_cancel,
}
#: overrides change rates only; they do not need the motion brought up to date
OVERRIDES: dict[int, Realtime] = {b: _override for b in range(0x90, 0x9E)}
