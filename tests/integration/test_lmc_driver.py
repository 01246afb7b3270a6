"""The LMC driver against the simulated board (sim://lmc): the same code path as usb://lmc."""

from __future__ import annotations

import dataclasses
import errno
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import usb.core

from markstation.devices.base import DeviceState, Driver, RunResult
from markstation.devices.lmc.codec import Cmd, Entry, Geometry, ListOp, unpack_packet
from markstation.devices.lmc.correction import ENTRIES, encode_cor_v1, encode_cor_v2, parse_cor
from markstation.devices.lmc.driver import LmcDriver, discover
from markstation.devices.lmc.pcap import bulk_transfers, read_pcap
from markstation.devices.lmc.transport import LmcTransport, translate_usb_error
from markstation.devices.registry import open_device
from markstation.devices.sim.ledger import read_jobs
from markstation.errors import (
    Aborted,
    BackendUnavailable,
    ConfigError,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DevicePermissionError,
    DeviceReset,
    DeviceTimeout,
    InterlockOpen,
    SafetyLimitError,
)
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.profiles import MachineProfile, load_machine

PARAMS = MarkParams(speed_mm_s=300, power_pct=50, frequency_khz=30)
SLOW = MarkParams(speed_mm_s=20, power_pct=50, frequency_khz=30)


@pytest.fixture
def machine() -> MachineProfile:
    return load_machine("lmc-fiber-110")


def square(size: float = 10.0, params: MarkParams = PARAMS, x0: float = 0.0) -> Job:
    pts = ((x0, 0.0), (x0 + size, 0.0), (x0 + size, size), (x0, size), (x0, 0.0))
    return Job(layers=(Layer("square", params, (Polyline(pts),)),))


def long_job(lines: int = 10, points: int = 60) -> Job:
    """Lines of 10 mm in ``points`` points at 20 mm/s: 0.5 s and ``points + 2`` entries each."""
    prims = tuple(
        Polyline(tuple((-5.0 + 10.0 * k / (points - 1), -5.0 + i) for k in range(points)))
        for i in range(lines)
    )
    return Job(layers=(Layer("lines", SLOW, prims),))


def sim(machine: MachineProfile, query: str = "") -> LmcDriver:
    driver = open_device(f"sim://lmc?{query}" if query else "sim://lmc", machine)
    assert isinstance(driver, LmcDriver)
    return driver


def commands(capture: Path) -> list[Entry | str]:
    """The host-to-board conversation from a capture: 12-byte commands as Entries, packets as
    'packet', replies as 'reply'."""
    out: list[Entry | str] = []
    for t in bulk_transfers(read_pcap(capture)):
        if t.endpoint == 0x02 and len(t.payload) == 12:
            out.append(Entry.decode(t.payload))
        elif t.endpoint == 0x02:
            out.append("packet")
        elif t.endpoint == 0x88:
            out.append("reply")
    return out


def ops(conversation: list[Entry | str]) -> list[int | str]:
    return [c.op if isinstance(c, Entry) else c for c in conversation if c != "reply"]


INIT_OPS = [
    Cmd.GET_SERIAL_NO,
    Cmd.GET_VERSION,
    Cmd.FIBER_GET_ST_MO_AP,
    Cmd.RESET,
    Cmd.WRITE_COR_TABLE,
    Cmd.ENABLE_LASER,
    Cmd.SET_CONTROL_MODE,
    Cmd.SET_LASER_MODE,
    Cmd.SET_DELAY_MODE,
    Cmd.SET_TIMING,
    Cmd.SET_STANDBY,
    Cmd.SET_FIRST_PULSE_KILLER,
    Cmd.SET_PWM_HALF_PERIOD,
    Cmd.SET_PWM_PULSE_WIDTH,
    Cmd.FIBER_SET_MO,
    Cmd.GET_VERSION,
    Cmd.SET_FPK_PARAM_2,
    Cmd.SET_FLY_RES,
    Cmd.WRITE_PORT,
    Cmd.ENABLE_Z,
    Cmd.WRITE_ANALOG_PORT_1,
    Cmd.ENABLE_Z,
]


# --- open: the init sequence and the correction table --------------------------------------------


@pytest.mark.timeout(30)
def test_init_sequence_is_the_vendor_order(machine: MachineProfile, tmp_path: Path) -> None:
    cap = tmp_path / "open.pcap"
    with sim(machine, f"capture={cap}") as driver:
        board = driver.simulator
        assert board.correction_enabled is False
        assert board.laser_enabled and not board.mo_open and board.outputs == 0
    conv = commands(cap)
    # the init sequence, then close() makes sure emission is off
    assert ops(conv) == [*INIT_OPS, Cmd.FIBER_SET_MO, Cmd.WRITE_PORT]
    first = {c.op: c for c in conv if isinstance(c, Entry)}
    assert first[Cmd.WRITE_COR_TABLE].w1 == 0  # no table: correction off
    assert first[Cmd.SET_STANDBY].words[:2] == (2000, 20)
    assert first[Cmd.SET_FPK_PARAM_2].words[:4] == (0x0FFB, 1, 0x0199, 0x0064)
    # every command of the init sequence was answered and read
    assert conv.count("reply") == len(INIT_OPS) + 2


def ramp() -> list[tuple[int, int]]:
    return [((i // 65 - 32) * 5, (i % 65 - 32) * -7) for i in range(ENTRIES)]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.timeout(60)
def test_correction_table_upload(machine: MachineProfile, tmp_path: Path, version: int) -> None:
    data = encode_cor_v2(ramp(), 500.0) if version == 2 else encode_cor_v1(ramp(), 500.0)
    cor = tmp_path / f"lens{version}.cor"
    cor.write_bytes(data)
    with_cor = dataclasses.replace(
        machine, options={**machine.options, "correction_file": str(cor)}
    )
    cap = tmp_path / "cor.pcap"
    with sim(with_cor, f"capture={cap}") as driver:
        assert driver.simulator.correction_enabled is True
        assert driver.simulator.correction_lines == ENTRIES
        assert f"v{version}" in driver.info().extra["correction"]
    conv = commands(cap)
    start = next(
        i for i, c in enumerate(conv) if isinstance(c, Entry) and c.op == Cmd.WRITE_COR_TABLE
    )
    assert conv[start].w1 == 1 and conv[start + 1] == "reply"
    lines = conv[start + 2 : start + 2 + ENTRIES]
    # 4225 lines, no reply read between them, sign-magnitude words in file order, flag 0 then 1
    assert all(isinstance(c, Entry) and c.op == Cmd.WRITE_COR_LINE for c in lines)
    words = [(c.w1, c.w2) for c in lines if isinstance(c, Entry)]
    assert words == parse_cor(data).board_words()
    flags = [c.w3 for c in lines if isinstance(c, Entry)]
    assert flags[0] == 0 and set(flags[1:]) == {1}
    after = conv[start + 2 + ENTRIES]
    assert isinstance(after, Entry) and after.op == Cmd.ENABLE_LASER


def test_correction_file_relative_to_the_machine_profile(
    machine: MachineProfile, tmp_path: Path
) -> None:
    (tmp_path / "lens.cor").write_bytes(encode_cor_v2(ramp(), 595.0))
    moved = dataclasses.replace(
        machine,
        path=tmp_path / "m.toml",
        options={**machine.options, "correction_file": "lens.cor"},
    )
    with sim(moved) as driver:
        assert driver.simulator.correction_lines == ENTRIES


def test_bad_correction_file_is_refused_before_the_board_is_touched(
    machine: MachineProfile, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.cor"
    bad.write_bytes(b"not a table")
    broken = dataclasses.replace(machine, options={**machine.options, "correction_file": str(bad)})
    with pytest.raises(ConfigError, match=r"bad\.cor: not a lens correction file"):
        sim(broken)


# --- runs -------------------------------------------------------------------------------------------


class Recorder:
    """A listener that remembers what happened, and what the board looked like at that moment."""

    def __init__(self, driver: LmcDriver) -> None:
        self.driver = driver
        self.events: list[str] = []
        self.fractions: list[float] = []
        self.board_at_emission: tuple[bool, int, int] | None = None
        self.transfers_at_emission: int | None = None

    def on_started(self, job: Job) -> None:
        self.events.append("started")

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        self.fractions.append(fraction)

    def on_emission_possible(self) -> None:
        board = self.driver.simulator
        self.events.append("emission")
        self.board_at_emission = (board.mo_open, board.outputs, board.packets_received)
        backend = self.driver._backend
        self.transfers_at_emission = backend.devices[0].transfers

    def on_finished(self, result: RunResult) -> None:
        self.events.append("finished")


def assert_close(
    a: list[tuple[float, float]], b: tuple[tuple[float, float], ...], tol: float
) -> None:
    assert len(a) == len(b)
    for (x0, y0), (x1, y1) in zip(a, b, strict=True):
        assert math.isclose(x0, x1, abs_tol=tol) and math.isclose(y0, y1, abs_tol=tol)


@pytest.mark.timeout(30)
def test_a_job_runs_to_completion_and_burns_what_was_asked(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    job = Job(
        layers=(
            Layer("a", PARAMS, (Polyline(((0, 0), (10, 0), (10, 10), (0, 10), (0, 0))),)),
            Layer("b", MarkParams(500, 30, 40), (Dot(-5.0, 5.0, 0.002),)),
        )
    )
    with sim(machine, f"ledger={ledger}") as driver:
        rec = Recorder(driver)
        result = driver.run(job, rec)
        board = driver.simulator
        assert result.complete
        assert rec.events == ["started", "emission", "finished"]
        assert rec.fractions[-1] == 1.0 and rec.fractions == sorted(rec.fractions)
        # the board's own clock: its GetMarkTime answer, 10 µs ticks
        assert result.device_mark_time_s == pytest.approx(board.runs[-1].burn.duration_s, abs=2e-5)
        assert result.device_mark_time_s > 0
        strokes = board.burned_strokes()
        tol = 1.0 / Geometry.from_machine(machine).units_per_mm
        assert_close(strokes[0], job.layers[0].primitives[0].points, tol)
        assert_close(strokes[1], ((-5.0, 5.0),), tol)
        settings = board.burned_settings()
        assert settings[0].power_pct == pytest.approx(50, abs=0.05)
        assert settings[1].power_pct == pytest.approx(30, abs=0.05)
        assert settings[1].dwell_s == pytest.approx(0.002)
        assert board.violations == []
        # after the run: oscillator closed, laser-enable output off, board idle
        assert not board.mo_open and board.outputs == 0 and not board.running
        assert driver.state() is DeviceState.IDLE
    jobs = read_jobs(ledger)
    assert len(jobs) == 1 and jobs[0].complete is True and len(jobs[0].polylines) == 2


@pytest.mark.timeout(30)
def test_emission_is_announced_before_the_first_byte_that_could_fire(
    machine: MachineProfile,
) -> None:
    with sim(machine) as driver:
        rec = Recorder(driver)
        driver.run(square(), rec)
        # at that moment: oscillator closed, no laser-enable bit, no list packet sent yet
        assert rec.board_at_emission == (False, 0, 0)


@pytest.mark.timeout(60)
def test_run_conversation(machine: MachineProfile, tmp_path: Path) -> None:
    cap = tmp_path / "run.pcap"
    job = long_job(10)
    with sim(machine, f"capture={cap}") as driver:
        result = driver.run(job)
        assert result.detail["packets"] >= 3
        assert driver.simulator.violations == []  # no packet while not READY, ReadyMark first
    conv = ops(commands(cap))[len(INIT_OPS) : -2]  # without the emission-off of close()
    packets = [i for i, c in enumerate(conv) if c == "packet"]
    arm = conv.index(Cmd.FIBER_SET_MO)
    assert conv[:arm] == [Cmd.RESET_LIST, Cmd.READ_PORT, Cmd.WRITE_PORT]
    assert arm < packets[0]
    for i in packets:  # every packet is followed by SetEndOfList
        assert conv[i + 1] == Cmd.SET_END_OF_LIST
    # ExecuteList exactly once, right after the second packet and a fresh interlock read
    assert conv.count(Cmd.EXECUTE_LIST) == 1
    assert conv.index(Cmd.EXECUTE_LIST) == packets[1] + 3
    assert conv[packets[1] + 2] == Cmd.READ_PORT
    assert conv[-3:] == [Cmd.FIBER_SET_MO, Cmd.WRITE_PORT, Cmd.GET_MARK_TIME]
    # the list streamed is exactly the codec's list for the job
    from markstation.devices.lmc.codec import job_to_entries, pack_list

    sent = [
        t.payload
        for t in bulk_transfers(read_pcap(cap))
        if t.endpoint == 0x02 and len(t.payload) == 3072
    ]
    assert sent == pack_list(job_to_entries(job, machine))


@pytest.mark.timeout(30)
def test_single_packet_job_is_started_at_the_end(machine: MachineProfile, tmp_path: Path) -> None:
    cap = tmp_path / "small.pcap"
    with sim(machine, f"capture={cap}") as driver:
        driver.run(square())
    conv = ops(commands(cap))[len(INIT_OPS) :]
    assert conv.count("packet") == 1
    assert conv[conv.index("packet") + 2 :][:2] == [Cmd.READ_PORT, Cmd.EXECUTE_LIST]


@pytest.mark.timeout(60)
def test_sim_burn_matches_the_preview_of_the_same_code(machine: MachineProfile) -> None:
    layout_mod = pytest.importorskip("markstation.job.layout")
    from markstation.preview import job_strokes, overlap, rasterize
    from markstation.profiles import load_layout, load_material

    job = layout_mod.build_job(
        "PE-SUCAMEC-2016-000123",
        layout=load_layout("secondary-mark"),
        material=load_material("blued-steel"),
        machine=machine,
    )
    with sim(machine) as driver:
        driver.run(job)
        burned = driver.simulator.burned_strokes()
    box = job.bounds()
    assert box is not None
    bounds = (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1)
    kw: dict[str, Any] = {"spot_mm": machine.spot_mm, "bounds": bounds, "px_per_mm": 40.0}
    assert overlap(rasterize(burned, **kw), rasterize(job_strokes(job), **kw)) >= 0.98


# --- abort, interlock, pedal --------------------------------------------------------------------------


def wait_for(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


@pytest.mark.timeout(60)
def test_abort_from_another_thread_stops_emission_at_once(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    job = long_job(10)  # 5 s of marking in real time, 3 list packets
    with sim(machine, f"timing=realtime&ledger={ledger}") as driver:
        board = driver.simulator
        seen: dict[str, Any] = {}

        def operator() -> None:
            seen["emitting"] = wait_for(lambda: board.emitting)
            driver.abort()
            # abort() has returned: the board must already have stopped, not one poll later
            seen["after"] = (board.running, board.emitting, board.mo_open, board.outputs)
            seen["burned"] = sum(r.burn.burned_length_mm() for r in board.runs)

        helper = threading.Thread(target=operator)
        helper.start()
        with pytest.raises(Aborted) as info:
            driver.run(job)
        helper.join(10)
        assert seen["emitting"] is True
        assert seen["after"] == (False, False, False, 0)
        assert info.value.may_have_emitted is True
        # nothing burned after the abort returned; the job was cut short
        burned = sum(r.burn.burned_length_mm() for r in board.runs)
        assert burned == seen["burned"]
        assert 0 < burned < job.marked_length()
        assert board.runs[-1].complete is False and board.runs[-1].stopped is True
        assert driver.state() is DeviceState.ERROR
        # the driver is still usable: the next job runs to the end
        assert driver.run(square(2.0)).complete
    jobs = read_jobs(ledger)
    assert [j.complete for j in jobs] == [False, True]


@pytest.mark.timeout(30)
def test_abort_when_idle_is_harmless(machine: MachineProfile) -> None:
    with sim(machine) as driver:
        driver.abort()
        assert not driver.simulator.mo_open
        assert driver.run(square()).complete


@pytest.mark.timeout(30)
def test_interlock_open_before_start_refuses_without_firing(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with sim(machine, f"ledger={ledger}") as driver:
        board = driver.simulator
        board.set_interlock(open=True)
        assert driver.read_inputs().interlock_closed is False
        rec = Recorder(driver)
        with pytest.raises(InterlockOpen, match="nothing was fired") as info:
            driver.run(square(), rec)
        assert info.value.may_have_emitted is False
        assert "emission" not in rec.events
        assert board.packets_received == 0 and not board.mo_open and board.runs == []
        board.set_interlock(open=False)
        assert driver.run(square()).complete
    assert len(read_jobs(ledger)) == 1


@pytest.mark.timeout(60)
def test_interlock_opening_during_a_run_stops_it(machine: MachineProfile) -> None:
    with sim(machine, "timing=realtime") as driver:
        board = driver.simulator

        def door() -> None:
            wait_for(lambda: board.emitting)
            board.set_interlock(open=True)

        helper = threading.Thread(target=door)
        helper.start()
        with pytest.raises(InterlockOpen, match="during the run") as info:
            driver.run(long_job(10))
        helper.join(10)
        assert info.value.may_have_emitted is True
        assert not board.running and not board.emitting and not board.mo_open
        assert board.outputs & 1 == 0
        assert board.runs[-1].complete is False


def test_pedal_and_interlock_inputs(machine: MachineProfile) -> None:
    with sim(machine) as driver:
        board = driver.simulator
        idle = driver.read_inputs()
        assert idle.pedal_pressed is False and idle.interlock_closed is True
        board.press_pedal()
        pressed = driver.read_inputs()
        assert pressed.pedal_pressed is True and pressed.raw & 0x8000 == 0  # active low
        board.release_pedal()
        assert driver.read_inputs().pedal_pressed is False


def test_no_interlock_wired_reads_none(machine: MachineProfile) -> None:
    unwired = dataclasses.replace(machine, options={**machine.options, "interlock_bit": -1})
    with sim(unwired) as driver:
        assert driver.read_inputs().interlock_closed is None
        assert driver.run(square()).complete


# --- faults: the right exception, emission off, and the truth about may_have_emitted ---------------


def transfers_of_a_clean_run(machine: MachineProfile, job: Job) -> tuple[int, int]:
    """(transfers of open + run, transfers done before the first emission-capable one)."""
    with sim(machine) as driver:
        rec = Recorder(driver)
        driver.run(job, rec)
        total = driver._backend.devices[0].transfers
    assert rec.transfers_at_emission is not None
    return total, rec.transfers_at_emission


FAULT_CLASSES = {
    "timeout": DeviceTimeout,
    "disconnect": DeviceDisconnected,
    "reset": DeviceReset,
    "interlock": InterlockOpen,
}


def run_with_fault(
    machine: MachineProfile, kind: str, at: int, tmp_path: Path
) -> tuple[DeviceError | None, Any, list[Any]]:
    ledger = tmp_path / f"{kind}-{at}.jsonl"
    driver = sim(machine, f"fault={kind}@{at}&ledger={ledger}")
    board = driver.simulator
    error: DeviceError | None = None
    try:
        with driver:
            driver.run(long_job(6))
    except DeviceError as exc:
        error = exc
    return error, board, read_jobs(ledger)


@pytest.mark.parametrize("kind", sorted(FAULT_CLASSES))
@pytest.mark.timeout(300)
def test_every_fault_at_every_transfer(machine: MachineProfile, tmp_path: Path, kind: str) -> None:
    total, armed_after = transfers_of_a_clean_run(machine, long_job(6))
    assert 30 < armed_after < total
    for at in range(1, total + 2):
        error, board, jobs = run_with_fault(machine, kind, at, tmp_path)
        where = f"{kind}@{at} (armed after {armed_after}, {total} transfers)"
        if error is None:
            # only an interlock opening after the list has finished, or a fault past the end
            assert kind == "interlock" or at > total, where
            assert board.runs and board.runs[-1].complete, where
            continue
        assert isinstance(error, FAULT_CLASSES[kind]), f"{where}: {error!r}"
        # an interlock fault opens the input before transfer N; it is seen at the next ReadPort
        # reply, which the board composes at the write before it: one transfer earlier
        first_unsafe = armed_after if kind == "interlock" else armed_after + 1
        assert error.may_have_emitted is (at >= first_unsafe), f"{where}: {error!r}"
        if not error.may_have_emitted:
            # the independent record agrees: nothing fired
            assert jobs == [] and board.burned_strokes() == [], where
        # emission is off: nothing emits, and a board that still answers had its oscillator closed
        assert not board.emitting, where
        if kind in ("reset", "interlock"):
            assert not board.mo_open and board.outputs & 1 == 0, where


# --- refusals -------------------------------------------------------------------------------------


def test_limits_are_refused_before_any_byte(machine: MachineProfile) -> None:
    with sim(machine) as driver:
        board = driver.simulator
        before = (board.commands, board.packets_received)
        for job in (
            square(params=MarkParams(300, 95, 30)),  # power above the machine's 90 %
            square(params=MarkParams(9000, 50, 30)),  # speed
            square(x0=50.0),  # leaves the 110 mm field
        ):
            with pytest.raises(SafetyLimitError) as info:
                driver.run(job)
            assert info.value.may_have_emitted is False
        assert (board.commands, board.packets_received) == before


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://lmc?speed=3", "unknown option 'speed'"),
        ("usb://lmc?timing=instant", "unknown option 'timing'"),
        ("usb://lmc?serial=A&index=1", "not both"),
        ("usb://lmc?index=first", "'index=first' is not a whole number"),
        ("sim://lmc?fault=melt@3", "unknown fault 'melt'"),
        ("sim://lmc?timing=soon", "timing=soon"),
    ],
)
def test_url_refusals(machine: MachineProfile, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_device(url, machine)


@pytest.mark.timeout(30)
def test_board_selection_by_index_and_serial(machine: MachineProfile) -> None:
    with sim(machine, "boards=2&index=1") as driver:
        assert driver.info().serial == "SIM0001-2"
    with (
        pytest.raises(DeviceNotFound, match="index 5 asked, but 2 LMC board"),
        sim(machine, "boards=2&index=5"),
    ):
        pass


@pytest.mark.timeout(30)
def test_no_usb_board_here_is_device_not_found(machine: MachineProfile) -> None:
    # this machine has libusb (bundled) but no board: a clear refusal, nothing sent
    try:
        driver = open_device("usb://lmc?serial=NOPE", machine)
        with pytest.raises((DeviceNotFound, BackendUnavailable)) as info, driver:
            pass
    except BackendUnavailable:
        pytest.skip("no libusb on this platform")
    assert info.value.may_have_emitted is False


def test_discover_lists_the_simulators_without_raising() -> None:
    found = discover()  # no USB bus here: only the simulator, and no exception
    assert [d.url for d in found if d.protocol == "lmc"][-1] == "sim://lmc"
    sim_info = found[-1]
    assert sim_info.simulated and sim_info.firmware == "4C02.0009"


def test_info(machine: MachineProfile) -> None:
    with sim(machine, "serial=ABC123") as driver:
        info = driver.info()
    assert info.model == "LMC (BJJCZ)" and info.protocol == "lmc"
    assert info.firmware == "4C02.0009"  # the captured board's GetVersion words
    assert info.serial == "ABC123" and info.simulated
    assert info.extra["correction"] == "off" and len(info.extra["board_serial"]) == 8


# --- frame --------------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_frame_traces_with_the_pointer_and_never_fires(
    machine: MachineProfile, tmp_path: Path
) -> None:
    cap = tmp_path / "frame.pcap"
    ledger = tmp_path / "ledger.jsonl"
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    job = square(10.0, x0=-5.0)
    with sim(machine, f"capture={cap}&ledger={ledger}") as driver:
        board = driver.simulator
        assert driver.frame(job, stop) == 3
        path = board.pointer_path
        assert not board.red_pointer_on and not board.mo_open and not board.running
        assert board.burned_strokes() == []
    assert read_jobs(ledger) == []
    tol = 1.0 / Geometry.from_machine(machine).units_per_mm
    xs = [p[0] for p in path]
    ys = [p[1] for p in path]
    assert min(xs) == pytest.approx(-5.0, abs=tol) and max(xs) == pytest.approx(5.0, abs=tol)
    assert min(ys) == pytest.approx(0.0, abs=tol) and max(ys) == pytest.approx(10.0, abs=tol)
    sent = [
        e.op
        for t in bulk_transfers(read_pcap(cap))
        if t.endpoint == 0x02 and len(t.payload) == 3072
        for e in unpack_packet(t.payload)
    ]
    allowed = {ListOp.READY_MARK, ListOp.JUMP_SPEED, ListOp.JUMP_DELAY, ListOp.JUMP_TO}
    assert set(sent) <= allowed | {ListOp.END_OF_LIST}
    conv = [c for c in commands(cap) if isinstance(c, Entry)][len(INIT_OPS) :]
    # the oscillator is closed and the pointer bit set (laser-enable bit clear) before tracing
    assert (conv[0].op, conv[0].w1) == (Cmd.FIBER_SET_MO, 0)
    assert (conv[1].op, conv[1].w1) == (Cmd.WRITE_PORT, 0x0100)


@pytest.mark.timeout(60)
def test_abort_during_frame(machine: MachineProfile) -> None:
    with sim(machine, "timing=realtime") as driver:
        board = driver.simulator
        threading.Timer(0.2, driver.abort).start()
        with pytest.raises(Aborted) as info:
            driver.frame(long_job(2), lambda: False)
        assert info.value.may_have_emitted is False
        assert not board.red_pointer_on and not board.running


# --- transport: error translation and bounded retries -------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (usb.core.USBTimeoutError("timed out", -7, errno.ETIMEDOUT), DeviceTimeout),
        (usb.core.USBError("No such device", -4, errno.ENODEV), DeviceDisconnected),
        (usb.core.USBError("Pipe error", -9, errno.EPIPE), DeviceDisconnected),
        (usb.core.USBError("reset", -1, errno.ECONNRESET), DeviceReset),
        (usb.core.USBError("Access denied", -3, errno.EACCES), DevicePermissionError),
        (usb.core.USBError("Not supported", -12, errno.ENOSYS), DevicePermissionError),
        (usb.core.NoBackendError("No backend available"), BackendUnavailable),
    ],
)
def test_usb_errors_become_ours(exc: Exception, cls: type[DeviceError]) -> None:
    error = translate_usb_error(exc, "usb://lmc")
    assert type(error) is cls
    assert str(error).startswith("usb://lmc: ")
    if cls is DevicePermissionError:
        assert "70-markstation.rules" in str(error) and "WINDOWS.md" in str(error)


class FlakyDevice:
    """Times out ``failures`` times, then answers; counts every write."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.writes = 0

    def write(self, ep: int, data: bytes, timeout: int) -> int:
        self.writes += 1
        if self.failures > 0:
            self.failures -= 1
            raise usb.core.USBTimeoutError("timed out", -7, errno.ETIMEDOUT)
        return len(data)

    def read(self, ep: int, size: int, timeout: int) -> bytes:
        return bytes([0, 0, 1, 0, 2, 0, 0x20, 0x02])


def test_timeouts_are_retried_a_bounded_number_of_times() -> None:
    cmd = Entry(Cmd.READ_PORT).encode()
    dev = FlakyDevice(failures=2)
    t = LmcTransport(dev, where="usb://lmc", timeout_s=0.1, retries=2)
    assert t.command(cmd) is not None and dev.writes == 3
    dev = FlakyDevice(failures=3)
    t = LmcTransport(dev, where="usb://lmc", timeout_s=0.1, retries=2)
    with pytest.raises(DeviceTimeout):
        t.command(cmd)
    assert dev.writes == 3  # 1 + 2 retries, then it gives up


def test_commands_that_could_fire_and_list_packets_are_never_repeated() -> None:
    dev = FlakyDevice(failures=1)
    t = LmcTransport(dev, where="usb://lmc", timeout_s=0.1, retries=5)
    with pytest.raises(DeviceTimeout):
        t.command(Entry(Cmd.EXECUTE_LIST).encode(), retry=False)
    assert dev.writes == 1
    dev = FlakyDevice(failures=1)
    t = LmcTransport(dev, where="usb://lmc", timeout_s=0.1, retries=5)
    with pytest.raises(DeviceTimeout):
        t.write_packet(bytes(3072))
    assert dev.writes == 1


def test_driver_is_a_driver(machine: MachineProfile) -> None:
    assert issubclass(LmcDriver, Driver)
    assert sim(machine).simulator is not None


# --- completion is proven, not assumed (issue 16) ------------------------------------------------------


@pytest.mark.timeout(30)
def test_interlock_is_read_again_right_before_execute_list(
    machine: MachineProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "l.jsonl"
    with sim(machine, f"ledger={ledger}") as driver:
        sent = driver._packet

        def packet_then_open(packet: bytes) -> None:
            sent(packet)
            driver.simulator.set_interlock(open=True)  # after the last READY poll

        monkeypatch.setattr(driver, "_packet", packet_then_open)
        with pytest.raises(InterlockOpen) as raised:
            driver.run(square())
        assert raised.value.may_have_emitted  # armed: the source was enabled
        assert driver.simulator.runs == []  # ExecuteList never went out
    assert read_jobs(ledger) == []


@pytest.mark.timeout(30)
def test_ready_without_ever_busy_is_unknown(
    machine: MachineProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sim(machine) as driver:
        board = driver.simulator
        monkeypatch.setattr(board, "_start_run", lambda: None)  # the list never starts
        with pytest.raises(DeviceReset, match="without ever reporting BUSY") as raised:
            driver.run(square())
        assert raised.value.may_have_emitted


@pytest.mark.timeout(30)
@pytest.mark.parametrize("ticks", [0, 1000])
def test_a_mark_time_of_zero_or_far_below_the_estimate_is_unknown(
    machine: MachineProfile, monkeypatch: pytest.MonkeyPatch, ticks: int
) -> None:
    job = long_job(4)  # ~2 s estimated; 1000 ticks = 10 ms
    with sim(machine) as driver:
        board = driver.simulator
        real = board._do

        def do(e: Entry) -> tuple[int, int] | None:
            return (ticks, 0) if e.op == Cmd.GET_MARK_TIME else real(e)

        monkeypatch.setattr(board, "_do", do)
        with pytest.raises(DeviceReset, match=r"mark time|marking for a list") as raised:
            driver.run(job)
        assert raised.value.may_have_emitted


@pytest.mark.timeout(30)
def test_a_retried_timeout_during_the_run_breaks_the_session(
    machine: MachineProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a reply that timed out once and came on the retry: the conversation may be out of step
    with sim(machine, "timing=20") as driver:
        transport = driver.transport
        real = transport._read
        failed: list[bool] = []
        reads = [0]

        def read_once_late() -> bytes:
            reads[0] += driver._executing
            if reads[0] == 3 and not failed:  # a status poll while the list runs
                failed.append(True)
                raise DeviceTimeout("late reply")
            return real()

        monkeypatch.setattr(transport, "_read", read_once_late)
        with pytest.raises(DeviceError, match="a transfer failed during the run") as raised:
            driver.run(long_job(2))
        assert failed and raised.value.may_have_emitted
