"""The vectorised list execution (``ListExecutor.run_words``, what the simulated board runs whole
buffers with when it has no clock to keep) against the entry-at-a-time one (``ListExecutor.step``,
the oracle, which realtime timing still uses): the same burn, the same state, the same replies,
ledger calls and pointer path, on random entry lists and on real jobs (issue 13)."""

from __future__ import annotations

import copy
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markstation.devices.lmc import codec
from markstation.devices.lmc.codec import Cmd, Entry, Geometry, ListExecutor, ListOp
from markstation.devices.sim.ledger import Ledger
from markstation.devices.sim.lmc.board import LmcBoard
from markstation.devices.sim.timing import INSTANT
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.job.layout import build_job
from markstation.profiles import load_layout, load_machine, load_material

# many random lists through both executors: the full run, not the quick loop
pytestmark = pytest.mark.slow

MACHINE = load_machine("lmc-fiber-110")
GEOMETRY = Geometry.from_machine(MACHINE)
POINTER = 1 << MACHINE.lmc.red_pointer_bit
#: the machine's field, and mirrored or swapped ones of another scale
GEOMETRIES = [
    GEOMETRY,
    Geometry(65535 / 70.0, swap_xy=True),
    Geometry(65535 / 300.0, flip_x=True),
    Geometry(65535 / 110.0, swap_xy=True, flip_x=True, flip_y=True),
]

# a coarse grid of galvo positions: repeated points, zero-length marks, dots at one place
position = st.sampled_from([0, 0x7FFF, 0x8000, 0x8001, 0x8100, 0xFFFF])
WORDS: dict[int, tuple[st.SearchStrategy[int], st.SearchStrategy[int]]] = {
    ListOp.JUMP_TO: (position, position),
    ListOp.MARK_TO: (position, position),
    ListOp.END_OF_LIST: (st.just(0), st.just(0)),
    ListOp.LASER_ON_POINT: (st.sampled_from([0, 1, 60000]), st.just(0)),
    ListOp.DELAY_TIME: (st.sampled_from([0, 30, 0xFFFF]), st.just(0)),
    ListOp.JUMP_SPEED: (st.sampled_from([0, 1, 595, 0xFFFF]), st.just(0)),
    ListOp.MARK_SPEED: (st.sampled_from([0, 1, 595, 0xFFFF]), st.just(0)),
    ListOp.LASER_ON_DELAY: (st.sampled_from([0, 100, 0xFFFF]), st.sampled_from([0, 0x8000])),
    ListOp.LASER_OFF_DELAY: (st.sampled_from([0, 120, 0xFFFF]), st.sampled_from([0, 0x8000])),
    ListOp.POLYGON_DELAY: (st.sampled_from([0, 5, 0xFFFF]), st.just(0)),
    ListOp.JUMP_DELAY: (st.sampled_from([0, 20, 0xFFFF]), st.just(0)),
    ListOp.MARK_CURRENT: (st.sampled_from([0, 1, 0x800, 0xFFF]), st.just(0)),
    ListOp.Q_SWITCH_PERIOD: (st.sampled_from([0, 667, 1000]), st.just(0)),
    ListOp.FIBER_OPEN_MO: (st.sampled_from([0, 1]), st.just(0)),
    ListOp.WRITE_PORT: (st.sampled_from([0, POINTER, 0xFFFF & ~POINTER]), st.just(0)),
    ListOp.READY_MARK: (st.just(0), st.just(0)),
    ListOp.MARK_FREQ: (st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),  # ignored by both
    0x80AA: (st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),  # unknown: no effect, no time
}


def _entry(op: int) -> st.SearchStrategy[Entry]:
    return st.builds(Entry, st.just(int(op)), WORDS[op][0], WORDS[op][1])


#: a list is made of pieces: runs of marks (strokes), a dot of one or more LaserOnPoint, a jump
#: and then a few marks, a setting between marks (a stroke broken or not), marks and speed
#: changes, any single entry;
#: about one piece in 30 is an EndOfList, so lists run on across packets
piece = st.one_of(
    st.lists(_entry(ListOp.MARK_TO), min_size=1, max_size=8),
    st.lists(_entry(ListOp.LASER_ON_POINT), min_size=1, max_size=3),
    st.tuples(_entry(ListOp.JUMP_TO), _entry(ListOp.MARK_TO), _entry(ListOp.MARK_TO)).map(list),
    st.tuples(
        _entry(ListOp.MARK_TO),
        st.sampled_from([op for op in WORDS if op != ListOp.END_OF_LIST]).flatmap(_entry),
        _entry(ListOp.MARK_TO),
    ).map(list),
    # the one setting that changes a stroke's settings without ending it
    st.lists(_entry(ListOp.MARK_SPEED) | _entry(ListOp.MARK_TO), min_size=2, max_size=6),
    st.sampled_from([op for op in WORDS if op != ListOp.END_OF_LIST])
    .flatmap(_entry)
    .map(lambda e: [e]),
)
entries = st.lists(
    st.one_of(*[piece] * 29, st.just([Entry(ListOp.END_OF_LIST)])), min_size=4, max_size=40
).map(lambda pieces: [e for p in pieces for e in p])


def _state(ex: ListExecutor) -> dict[str, Any]:
    """Everything the executor keeps and burned (the settings cache aside)."""
    state = {k: v for k, v in vars(ex).items() if k not in ("clock", "burn", "_now", "_now_key")}
    state["clock"] = {k: getattr(ex.clock, k) for k in type(ex.clock).__slots__}
    state["burn"] = (ex.burn.strokes, ex.burn.settings, ex.burn.duration_s, ex.burn.ended)
    return copy.deepcopy(state)


def _words(chunk: list[Entry]) -> codec.Words:
    return np.array([(e.op, *e.words) for e in chunk], dtype=np.uint16).reshape(-1, 6)


@settings(max_examples=300)
@given(
    entries,
    st.lists(st.integers(1, 12) | st.integers(1, 60), min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
    st.tuples(position, position),
    st.sampled_from(GEOMETRIES),
)
def test_run_words_is_step_by_step(
    listed: list[Entry],
    cuts: list[int],
    mo_open: bool,
    laser: bool,
    start: tuple[int, int],
    geometry: Geometry,
) -> None:
    """Any list, cut anywhere (strokes and dots across the cuts), from any starting state, on
    any field orientation."""
    scalar = ListExecutor(geometry, mo_open=mo_open, laser_enabled=laser)
    vector = ListExecutor(geometry, mo_open=mo_open, laser_enabled=laser)
    scalar.pos = vector.pos = start  # a GotoXY: the executor moved, the clock did not
    at = 0
    for size in [*cuts, len(listed)]:
        chunk = listed[at : at + size]
        at += size
        seconds: list[float] = []
        for e in chunk:
            seconds.append(scalar.step(e))
            if scalar.burn.ended:
                break
        done = vector.run_words(_words(chunk))
        assert done.count == len(seconds)
        assert done.seconds.tolist() == seconds  # each entry's time, bit for bit
        assert _state(vector) == _state(scalar)
        if scalar.burn.ended:
            break
    assert scalar.finish() == vector.finish()


# --- the board: the same replies, ledger, pointer path, runs -------------------------------------------


class RecordingLedger:
    """Stands in for the simulator ledger: the calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self) -> int:
        self.calls.append(("start",))
        return len(self.calls)

    def end(self, job: int, *, complete: bool, polylines: Any) -> None:
        self.calls.append(("end", job, complete, copy.deepcopy(polylines)))


def _boards() -> tuple[tuple[LmcBoard, RecordingLedger], tuple[LmcBoard, RecordingLedger]]:
    made = []
    for vectorised in (False, True):
        ledger = RecordingLedger()
        board = LmcBoard(MACHINE, speed=INSTANT, ledger=cast(Ledger, ledger), vectorised=vectorised)
        made.append((board, ledger))
    return made[0], made[1]


def _board_state(board: LmcBoard) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "runs": [(r.burn, r.complete, r.stopped, r.ledger_job) for r in board.runs],
            "pointer": board.pointer_path,
            "outputs": board.outputs,
            "buffer": board.buffer.peek().tolist(),
            "executor": _state(board.executor),
            "running": board.running,
            "emitting": board.emitting,
            "violations": board.violations,
        }
    )


def _drive(board: LmcBoard, actions: list[tuple[Any, ...]], packets: list[bytes]) -> list[Any]:
    out: list[Any] = []
    sent = 0
    for action in actions:
        kind = action[0]
        if kind == "packet":
            if sent < len(packets):
                board.packet(packets[sent])
                sent += 1
            out.append(board.command(codec.command(Cmd.SET_END_OF_LIST)))
        elif kind == "cmd":
            out.append(board.command(codec.command(*action[1:])))
        elif kind == "run_out":
            board.run_out()
        elif kind == "reset":
            board.reset()
        out.append(_board_state(board))
    return out


host_command = st.one_of(
    st.just(("cmd", Cmd.EXECUTE_LIST)),
    st.just(("cmd", Cmd.GET_MARK_TIME)),
    st.just(("cmd", Cmd.GET_POSITION_XY)),
    st.just(("cmd", Cmd.READ_PORT)),
    st.just(("cmd", Cmd.STOP_LIST)),
    st.just(("cmd", Cmd.RESTART_LIST)),
    st.just(("cmd", Cmd.STOP_EXECUTE)),
    st.just(("cmd", Cmd.ENABLE_LASER)),
    st.just(("cmd", Cmd.DISABLE_LASER)),
    st.tuples(st.just("cmd"), st.just(Cmd.FIBER_SET_MO), st.sampled_from([0, 1])),
    st.tuples(st.just("cmd"), st.just(Cmd.WRITE_PORT), st.sampled_from([0, POINTER])),
    st.tuples(st.just("cmd"), st.just(Cmd.GOTO_XY), position, position),
    st.just(("run_out",)),
    st.just(("reset",)),
)
actions = st.lists(
    st.one_of(st.just(("packet",)), st.just(("packet",)), st.just(("packet",)), host_command),
    max_size=30,
)


#: a list long enough to span packets: a random list repeated, with or without its EndOfLists
long_entries = st.tuples(entries, st.integers(1, 12), st.booleans()).map(
    lambda t: [e for e in t[0] * t[1] if t[2] or e.op != ListOp.END_OF_LIST]
)


@settings(max_examples=150)
@given(st.lists(long_entries, min_size=1, max_size=3), actions)
def test_board_runs_the_same_either_way(lists: list[list[Entry]], script: list[Any]) -> None:
    """Random lists (each tail-filled with EndOfList), packets and host commands in any order:
    every reply (status, mark time, position) and everything the board keeps, after every step."""
    packets = [p for listed in lists for p in codec.pack_list(listed)]
    script = [
        ("cmd", Cmd.FIBER_SET_MO, 1),
        ("cmd", Cmd.WRITE_PORT, POINTER),
        ("packet",),
        ("cmd", Cmd.EXECUTE_LIST),
        *script,
        *[("packet",)] * len(packets),
        ("cmd", Cmd.GET_MARK_TIME),
        ("cmd", Cmd.EXECUTE_LIST),
        ("cmd", Cmd.GET_MARK_TIME),
        ("run_out",),
    ]
    (scalar, scalar_ledger), (vector, vector_ledger) = _boards()
    assert _drive(vector, script, packets) == _drive(scalar, script, packets)
    assert vector_ledger.calls == scalar_ledger.calls


def _driver_session(board: LmcBoard, words: codec.Words) -> list[Any]:
    """The LMC driver's conversation for one job (``devices/lmc/driver.py`` ``_run_armed``)."""
    packets = codec.pack_words(words)
    ask = [Entry(Cmd.RESET_LIST), Entry(Cmd.READ_PORT), Entry(Cmd.WRITE_PORT, 1)]
    out: list[Any] = [board.command(e.encode()) for e in ask]
    out.append(board.command(codec.command(Cmd.FIBER_SET_MO, 1)))
    for n, packet in enumerate(packets, start=1):
        while True:
            reply = board.command(codec.command(Cmd.READ_PORT))
            out.append(reply)
            assert reply is not None
            if codec.Reply.decode(reply).ready:
                break
        board.packet(packet)
        out.append(board.command(codec.command(Cmd.SET_END_OF_LIST)))
        if n == min(2, len(packets)):
            out.append(board.command(codec.command(Cmd.EXECUTE_LIST)))
    for _ in range(10):
        reply = board.command(codec.command(Cmd.READ_PORT))
        out.append(reply)
        assert reply is not None
        r = codec.Reply.decode(reply)
        if r.ready and not r.busy:
            break
    out.append(board.command(codec.command(Cmd.FIBER_SET_MO, 0)))
    out.append(board.command(codec.command(Cmd.GET_MARK_TIME, 3)))
    out.append(_board_state(board))
    return out


def _layout_job(layout: str) -> Job:
    lay = load_layout(layout)
    material = load_material(MACHINE.default_material, machine=MACHINE)
    return build_job(lay.code_example, layout=lay, material=material, machine=MACHINE)


DOTS = Job(
    (
        Layer(
            "dots",
            MarkParams(speed_mm_s=1000.0, power_pct=40.0, frequency_khz=30.0, passes=2),
            (
                Dot(0.0, 0.0, 0.0),
                Dot(0.0, 0.0, 1.3),  # split over three LaserOnPoint entries, one dot
                Dot(1.0, 1.0, 0.0005),
                Polyline(((1.0, 1.0), (2.0, 1.0), (2.0, 1.0000001), (2.0, 2.0))),
                Polyline(((3.0, 3.0), (3.0000001, 3.0))),  # shorter than one galvo unit
            ),
        ),
        Layer(
            "zero", MarkParams(1000.0, 0.0, 20.0), (Polyline(((0, 0), (5, 5))), Dot(1, 1, 0.001))
        ),
    )
)


@pytest.mark.parametrize("layout", ["secondary-mark", "import-mark", "text-only", None])
def test_real_jobs_burn_the_same(layout: str | None) -> None:
    job = DOTS if layout is None else _layout_job(layout)
    words = codec.job_to_words(job, MACHINE)
    (scalar, scalar_ledger), (vector, vector_ledger) = _boards()
    got = _driver_session(vector, words)
    assert got == _driver_session(scalar, words)
    assert vector_ledger.calls == scalar_ledger.calls
    assert vector.runs[0].complete and vector.burned_strokes()
    assert len(vector.buffer) == 0  # the fill after EndOfList is gone


def test_frame_traces_the_same_pointer_path() -> None:
    job = Job((Layer("t", MarkParams(1000, 50, 30), (Polyline(((0, 0), (9, 4))),)),))
    frame = codec.frame_entries(job, MACHINE, 3)
    (scalar, _), (vector, _) = _boards()
    for board in (scalar, vector):
        board.command(codec.command(Cmd.WRITE_PORT, POINTER))
        for packet in codec.pack_list(frame):
            board.packet(packet)
            board.command(codec.command(Cmd.EXECUTE_LIST))
        board.command(codec.command(Cmd.READ_PORT))
    assert vector.pointer_path == scalar.pointer_path and len(vector.pointer_path) == 13
    assert _board_state(vector) == _board_state(scalar)
