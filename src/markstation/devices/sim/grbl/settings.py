"""The simulated GRBL's ``$`` settings and ``$`` system commands (``$$``, ``$I``, ``$X``, ``$H`` …).

Each ``$`` command is one handler in :data:`COMMANDS`, keyed by the letter after ``$``; a handler
returns an error code, None for ``ok``, or :data:`HANDLED` when it wrote its own reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from markstation.devices.grbl.codec import Geometry
from markstation.devices.sim.grbl.gcode import HANDLED, execute, gc_report, jog

if TYPE_CHECKING:
    from markstation.devices.sim.grbl.controller import GrblController

VERSION = "1.1h"
BUILD = "20190830"
HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"
RX_BUFFER = 128
PLANNER_BLOCKS = 15

#: GRBL 1.1h generic defaults ($N -> value)
DEFAULT_SETTINGS: dict[int, float] = {
    0: 10, 1: 25, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
    20: 0, 21: 0, 22: 0, 23: 0, 24: 25.0, 25: 500.0, 26: 250, 27: 1.0,
    30: 1000, 31: 0, 32: 0,
    100: 250.0, 101: 250.0, 102: 250.0, 110: 500.0, 111: 500.0, 112: 500.0,
    120: 10.0, 121: 10.0, 122: 10.0, 130: 200.0, 131: 200.0, 132: 200.0,
}  # fmt: skip
#: settings printed without decimals by ``$$`` (integers and masks, and $30/$31 with 0 decimals)
INT_SETTINGS = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}
BOOL_SETTINGS = {4, 5, 6, 13, 20, 21, 22, 32}


def marker_settings(geometry: Geometry, overrides: dict[int, float] | None) -> dict[int, float]:
    """A correctly set-up marker for ``geometry``, then the caller's overrides.

    Max rates of 12000 mm/min = 200 mm/s: the grbl-marker profile's speed limit.
    """
    settings = dict(DEFAULT_SETTINGS)
    settings.update(
        {
            30: geometry.max_s,
            32: 1,
            110: 12000.0,
            111: 12000.0,
            120: 1000.0,
            121: 1000.0,
            130: geometry.width_mm,
            131: geometry.height_mm,
        }
    )
    if overrides:
        settings.update(overrides)
    return settings


def store_setting(settings: dict[int, float], body: str) -> int | None:
    """``$N=V``: validate and store, GRBL's error codes otherwise."""
    num, sep, value = body.partition("=")
    try:
        n = float(num)
    except ValueError:
        return 2
    if not sep:
        return 3
    try:
        v = float(value)
    except ValueError:
        return 2
    if n != int(n) or int(n) not in DEFAULT_SETTINGS:
        return 3
    key = int(n)
    if v < 0:
        return 4
    if key == 0 and v < 3:
        return 6
    if key == 20 and v and not settings[22]:
        return 10
    if key in BOOL_SETTINGS:
        v = 1.0 if v else 0.0
    elif key in INT_SETTINGS:
        v = float(int(v))
    settings[key] = v
    return None


def setting_text(settings: dict[int, float], n: int) -> str:
    v = settings[n]
    return str(int(v)) if n in INT_SETTINGS else f"{v:.3f}"


def triple(v: list[float]) -> str:
    return ",".join(f"{x:.3f}" for x in v)


# --- $ commands ----------------------------------------------------------------------------------

Command = Callable[["GrblController", str, float], int | None]


def _help(sim: GrblController, text: str, now: float) -> int | None:
    sim.emit(HELP)
    return None


def _jog(sim: GrblController, text: str, now: float) -> int | None:
    if sim.alarm is not None or sim.hold or (sim.moving() and not sim.jogging()):
        return 8
    if text[2:3] != "=":
        return 3
    return jog(sim, text[3:], now)


def _dump(sim: GrblController, text: str, now: float) -> int | None:
    if sim.moving() or sim.hold:
        return 8
    for n in sorted(sim.settings):
        sim.emit(f"${n}={setting_text(sim.settings, n)}")
    return None


def _parser_state(sim: GrblController, text: str, now: float) -> int | None:
    sim.emit(gc_report(sim))
    return None


def _check_mode(sim: GrblController, text: str, now: float) -> int | None:
    if sim.check_mode:
        sim.emit("[MSG:Disabled]")
        sim.emit("ok")
        sim.check_mode = False
        sim.soft_reset(now)
        return HANDLED
    if sim.alarm is not None or sim.moving() or sim.hold:
        return 8
    sim.check_mode = True
    sim.emit("[MSG:Enabled]")
    return None


def _unlock(sim: GrblController, text: str, now: float) -> int | None:
    if sim.alarm is None:
        return None
    if sim.door:
        return 13
    sim.critical = False
    sim.emit("[MSG:Caution: Unlocked]")
    sim.alarm = None
    return None


def _offsets(sim: GrblController, text: str, now: float) -> int | None:
    if len(text) != 2:
        return 3
    for n in range(6):
        sim.emit(f"[G{54 + n}:{triple(sim.offsets[n])}]")
    sim.emit(f"[G28:{triple(sim.stored[28])}]")
    sim.emit(f"[G30:{triple(sim.stored[30])}]")
    sim.emit(f"[G92:{triple(sim.g92)}]")
    sim.emit(f"[TLO:{sim.modal.tlo:.3f}]")
    sim.emit("[PRB:0.000,0.000,0.000:0]")
    return None


def _home(sim: GrblController, text: str, now: float) -> int | None:
    if not sim.settings[22]:
        return 5
    if len(text) != 2:
        return 3  # single-axis homing is not in this build
    sim.pos = [0.0, 0.0, 0.0]
    sim.motion_free_at = now
    sim.alarm = None
    sim.run_startup_lines(now)
    return None


def _sleep(sim: GrblController, text: str, now: float) -> int | None:
    if text != "$SLP":
        return 3
    sim.burn.end_job(complete=False)
    sim.clear_buffers()
    sim.sleeping = True
    sim.emit("[MSG:Sleeping]")
    return None


def _info(sim: GrblController, text: str, now: float) -> int | None:
    if len(text) == 2:
        sim.emit(f"[VER:{VERSION}.{BUILD}:]")
        sim.emit(f"[OPT:V,{PLANNER_BLOCKS},{RX_BUFFER}]")
        return None
    return None if text[2] == "=" else 3


def _restore(sim: GrblController, text: str, now: float) -> int | None:
    if text[:5] != "$RST=" or len(text) != 6 or text[5] not in "$#*":
        return 3
    if text[5] in "$*":
        sim.settings = dict(DEFAULT_SETTINGS)
    if text[5] in "#*":
        sim.offsets = {n: [0.0, 0.0, 0.0] for n in range(6)}
    sim.emit("[MSG:Restoring defaults]")
    sim.emit("ok")
    sim.soft_reset(now)
    return HANDLED


def _startup_lines(sim: GrblController, text: str, now: float) -> int | None:
    if len(text) == 2:
        for n in (0, 1):
            sim.emit(f"$N{n}={sim.startup_lines.get(n, '')}")
        return None
    num, sep, rest = text[2:].partition("=")
    if not sep or num not in ("0", "1"):
        return 3
    if rest:
        err = execute(sim, rest, now)
        if err is not None:
            return err
    sim.startup_lines[int(num)] = rest
    return None


#: allowed in any state (as exactly two characters)
_ANYTIME: dict[str, Command] = {"$": _dump, "G": _parser_state, "C": _check_mode, "X": _unlock}
#: allowed when idle or in alarm
_IDLE: dict[str, Command] = {
    "#": _offsets,
    "H": _home,
    "S": _sleep,
    "I": _info,
    "R": _restore,
    "N": _startup_lines,
}


def system_command(sim: GrblController, text: str, now: float) -> int | None:
    """One ``$`` line: an error code, None for ``ok``, or HANDLED."""
    if text == "$":
        return _help(sim, text, now)
    key = text[1]
    if key == "J":
        return _jog(sim, text, now)
    anytime = _ANYTIME.get(key)
    if anytime is not None:
        return 3 if len(text) != 2 else anytime(sim, text, now)
    if not sim.idle_or_alarm():
        return 8
    idle = _IDLE.get(key)
    if idle is not None:
        return idle(sim, text, now)
    return store_setting(sim.settings, text[1:])
