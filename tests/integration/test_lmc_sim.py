"""The simulated LMC board: under pyusb, its status timing, emission, ledger, faults, capture."""

from __future__ import annotations

import errno
import math
from pathlib import Path
from typing import Any

import pytest
import usb.core
import usb.util

from markstation.devices.lmc.codec import (
    Cmd,
    Entry,
    Geometry,
    ListOp,
    Reply,
    command,
    decode_entries,
    frame_entries,
    job_to_entries,
    pack_list,
)
from markstation.devices.lmc.pcap import bulk_transfers, read_pcap
from markstation.devices.sim.faults import Fault, parse_fault
from markstation.devices.sim.ledger import read_jobs
from markstation.devices.sim.lmc.backend import SimLmcBackend, make_sim_backend
from markstation.devices.sim.lmc.board import LmcBoard, ManualClock
from markstation.devices.sim.lmc.replay import closed_strokes
from markstation.devices.sim.timing import INSTANT, parse_timing, scaled
from markstation.errors import ConfigError
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.profiles import MachineProfile, load_machine

pytestmark = pytest.mark.timeout(60)

VID, PID = 0x9588, 0x9899
SQUARE = Polyline(((0, 0), (10, 0), (10, 10), (0, 10), (0, 0)))


@pytest.fixture(scope="module")
def machine() -> MachineProfile:
    return load_machine("lmc-fiber-110")


def square_job(power: float = 50.0, *extra: Polyline | Dot) -> Job:
    p = MarkParams(speed_mm_s=1000.0, power_pct=power, frequency_khz=30.0)
    return Job((Layer("l", p, (SQUARE, *extra)),))


def long_job(lines: int) -> Job:
    p = MarkParams(speed_mm_s=1000.0, power_pct=50.0, frequency_khz=30.0)
    prims = tuple(Polyline(((-20, -20 + i * 0.01), (20, -20 + i * 0.01))) for i in range(lines))
    return Job((Layer("hatch", p, prims),))


# --- a minimal host, as the driver talks to the board -------------------------------------------------


class Host:
    def __init__(self, backend: SimLmcBackend, serial: str | None = None) -> None:
        match: Any = None if serial is None else (lambda d: d.serial_number == serial)
        dev = usb.core.find(idVendor=VID, idProduct=PID, backend=backend, custom_match=match)
        assert dev is not None
        dev.set_configuration()
        usb.util.claim_interface(dev, 0)
        self.dev = dev

    def ask(self, op: int, *words: int) -> Reply:
        self.dev.write(0x02, command(op, *words), 100)
        return Reply.decode(bytes(self.dev.read(0x88, 8, 100)))

    def stream(self, entries: list[Entry], *, wait_done: bool = True, polls: int = 10_000) -> None:
        packets = pack_list(entries)
        for n, packet in enumerate(packets, start=1):
            for _ in range(polls):
                if self.ask(Cmd.GET_VERSION).ready:
                    break
            else:
                raise AssertionError("board never READY")
            self.dev.write(0x02, packet, 100)
            self.ask(Cmd.SET_END_OF_LIST)
            if n == min(2, len(packets)):
                self.ask(Cmd.EXECUTE_LIST)
        if wait_done:
            for _ in range(polls):
                r = self.ask(Cmd.GET_VERSION)
                if r.ready and not r.busy:
                    return
            raise AssertionError("board never finished")

    def close(self) -> None:
        usb.util.dispose_resources(self.dev)


def sim(machine: MachineProfile, **options: str) -> tuple[SimLmcBackend, LmcBoard, Host]:
    backend, board = make_sim_backend(options, machine)
    return backend, board, Host(backend)


# --- faults.py and timing.py ------------------------------------------------------------------------


def test_parse_fault() -> None:
    assert parse_fault("timeout@3", ("timeout", "reset")) == Fault("timeout", 3)
    assert parse_fault(" Reset@12 ", ("timeout", "reset")) == Fault("reset", 12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout", "expected KIND@N"),
        ("@3", "expected KIND@N"),
        ("melt@3", "unknown fault 'melt'"),
        ("timeout@x", "whole number"),
        ("timeout@0", "whole number"),
        ("timeout@-2", "whole number"),
    ],
)
def test_parse_fault_refusals(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_fault(text, ("timeout", "reset"))
    assert f"fault={text}" in str(info.value)


def test_parse_timing() -> None:
    assert parse_timing("instant") == INSTANT and parse_timing("realtime") == 1.0
    assert parse_timing("25") == 25.0 and parse_timing("0.5") == 0.5
    assert scaled(2.0, 4.0) == 0.5 and scaled(2.0, INSTANT) == 0.0


@pytest.mark.parametrize("text", ["fast", "0", "-3", "nan", "inf", ""])
def test_parse_timing_refusals(text: str) -> None:
    with pytest.raises(ConfigError, match=f"timing={text}"):
        parse_timing(text)


# --- URL options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"speed": "1"}, "option 'speed' is unknown"),
        ({"timing": "warp"}, "timing=warp"),
        ({"fault": "explode@2"}, "unknown fault 'explode'"),
        ({"fault": "timeout"}, "fault=timeout"),
        ({"boards": "0"}, "boards=0"),
        ({"boards": "two"}, "boards=two"),
        ({"boards": "17"}, "boards=17"),
        ({"ledger": ""}, "ledger="),
        ({"capture": ""}, "capture="),
        ({"serial": ""}, "serial="),
    ],
)
def test_make_sim_backend_refusals(
    machine: MachineProfile, options: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_sim_backend(options, machine)


def test_capture_path_that_cannot_be_written_is_refused(
    machine: MachineProfile, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        make_sim_backend({"capture": str(blocker / "x.pcap")}, machine)


# --- pyusb sees a real-looking board -------------------------------------------------------------------


def test_descriptors_and_strings(machine: MachineProfile) -> None:
    backend, _board = make_sim_backend({"serial": "ABC123"}, machine)
    dev = usb.core.find(idVendor=VID, idProduct=PID, backend=backend)
    assert dev is not None
    assert (dev.product, dev.manufacturer, dev.serial_number) == (
        "USBLMCV2",
        "BJJCZ (simulated)",
        "ABC123",
    )
    assert dev.bcdUSB == 0x0200 and dev.bMaxPacketSize0 == 64
    cfg = dev.get_active_configuration()
    interfaces = list(cfg)  # must end: the backend refuses alternate setting 1
    assert len(interfaces) == 1 and interfaces[0].bInterfaceClass == 0xFF
    eps = {e.bEndpointAddress: e for e in interfaces[0]}
    assert sorted(eps) == [0x01, 0x02, 0x81, 0x88]
    assert all(e.bmAttributes == 0x02 and e.wMaxPacketSize == 512 for e in eps.values())
    ep_in = usb.util.find_descriptor(
        interfaces[0],
        custom_match=lambda e: (
            usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
            and e.bEndpointAddress == 0x88
        ),
    )
    assert ep_in is not None
    assert "9588:9899" in str(dev)
    usb.util.dispose_resources(dev)


def test_several_boards_enumerate_with_their_serials(machine: MachineProfile) -> None:
    backend, first = make_sim_backend({"boards": "3", "serial": "S"}, machine)
    found = list(usb.core.find(find_all=True, idVendor=VID, idProduct=PID, backend=backend))
    assert [d.serial_number for d in found] == ["S", "S-2", "S-3"]
    assert len({(d.bus, d.address) for d in found}) == 3
    assert backend.boards[0] is first
    host = Host(backend, serial="S-2")
    host.ask(Cmd.WRITE_PORT, 0x0100)
    assert backend.boards[1].red_pointer_on and not first.red_pointer_on


def test_queries_and_stale_reply_words(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    r = host.ask(Cmd.GET_VERSION, 1)
    assert (r.r0, r.r1, r.r2, r.status) == (0, 0x4C02, 0x0009, 0x0220)
    # a set-type command repeats the last query's words, as the real board does
    assert host.ask(Cmd.RESET_LIST).r1 == 0x4C02
    pos = host.ask(Cmd.GET_POSITION_XY)
    assert (pos.r1, pos.r2) == (0x8000, 0x8000)
    assert host.ask(Cmd.GOTO_XY, 0x9000, 0x7000).r1 == 0x8000
    pos = host.ask(Cmd.GET_POSITION_XY)
    assert (pos.r1, pos.r2) == (0x9000, 0x7000)
    assert host.ask(Cmd.FIBER_GET_ST_MO_AP).r1 == 0x0241
    s1 = host.ask(Cmd.GET_SERIAL_NO)
    assert (s1.r1, s1.r2) != (0, 0)
    assert host.ask(Cmd.READ_PORT).r1 == board.inputs()


def test_write_cor_line_gets_no_reply(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    host.ask(Cmd.WRITE_COR_TABLE, 1)
    for i in range(5):
        host.dev.write(0x02, command(Cmd.WRITE_COR_LINE, 3, 0x8002, 0 if i == 0 else 1), 100)
    with pytest.raises(usb.core.USBTimeoutError):
        host.dev.read(0x88, 8, 100)
    assert board.correction_enabled and board.correction_lines == 5
    assert host.ask(Cmd.GET_VERSION).ready


def test_odd_sized_write_stalls_and_is_recorded(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    with pytest.raises(usb.core.USBError) as info:
        host.dev.write(0x02, bytes(20), 100)
    assert info.value.errno == errno.EPIPE
    assert board.violations and "20-byte" in board.violations[0]


# --- inputs and outputs --------------------------------------------------------------------------------


def test_pedal_and_interlock_inputs(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    idle = host.ask(Cmd.READ_PORT).r1
    assert idle & 0x8000  # pedal up: the input floats high
    assert not idle & 0x4000  # interlock closed: active-low input held low
    board.press_pedal()
    assert not host.ask(Cmd.READ_PORT).r1 & 0x8000
    board.release_pedal()
    board.set_interlock(open=True)
    assert host.ask(Cmd.READ_PORT).r1 & 0xC000 == 0xC000
    board.set_interlock(open=False)
    assert host.ask(Cmd.READ_PORT).r1 == idle


def test_ports_and_emission_switches(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    host.ask(Cmd.WRITE_PORT, 0x0101)
    assert board.outputs == 0x0101 and board.red_pointer_on
    host.ask(Cmd.FIBER_SET_MO, 1)
    assert board.mo_open
    host.ask(Cmd.DISABLE_LASER)
    assert not board.laser_enabled
    host.ask(Cmd.ENABLE_LASER)
    assert board.laser_enabled


# --- lists, status, burn -----------------------------------------------------------------------------


def test_instant_job_burns_the_job_and_reports_done(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    job = square_job(50.0, Dot(5, 5, 0.002))
    host.ask(Cmd.FIBER_SET_MO, 1)
    host.stream(job_to_entries(job, machine))
    assert len(board.runs) == 1 and board.runs[0].complete
    want = decode_entries(job_to_entries(job, machine), Geometry.from_machine(machine))
    assert board.burned_strokes() == want.strokes
    assert closed_strokes(board.burned_strokes()) == 1
    assert board.burned_settings()[0].power_pct == pytest.approx(50.0, abs=0.02)
    assert board.position_mm == (0.0, 0.0)
    assert not board.running and not board.emitting
    ticks = host.ask(Cmd.GET_MARK_TIME, 3)
    assert ticks.value32 == round(want.duration_s * 1e5)
    assert board.violations == []


def test_ready_drops_for_one_reply_after_a_packet_in_instant_mode(machine: MachineProfile) -> None:
    _, _board, host = sim(machine)
    (packet,) = pack_list(job_to_entries(square_job(), machine))
    assert host.ask(Cmd.GET_VERSION).status == 0x0220
    host.dev.write(0x02, packet, 100)
    assert host.ask(Cmd.SET_END_OF_LIST).status == 0x0200
    assert host.ask(Cmd.GET_VERSION).status == 0x0220
    host.ask(Cmd.FIBER_SET_MO, 1)
    assert host.ask(Cmd.EXECUTE_LIST).status == 0x0224  # running: BUSY, and room for more
    assert host.ask(Cmd.GET_VERSION).status == 0x0220  # instant: done at the next poll


def test_packet_while_not_ready_is_a_recorded_violation(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    packet = pack_list([Entry(ListOp.READY_MARK)])[0]
    host.dev.write(0x02, packet, 100)
    host.dev.write(0x02, packet, 100)
    assert board.violations == ["list packet 2 sent while the board was not READY"]


def test_list_without_ready_mark_is_a_recorded_violation(machine: MachineProfile) -> None:
    _, board, host = sim(machine)
    host.stream([Entry(ListOp.JUMP_TO, 0x8000, 0x8000)])
    assert board.violations == ["list does not begin with ReadyMark (0x8051)"]


@pytest.mark.parametrize("setup", ["mo_closed", "laser_disabled", "zero_power"])
def test_no_emission_without_mo_laser_or_power(
    machine: MachineProfile, setup: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    _, board, host = sim(machine, ledger=str(ledger))
    if setup != "mo_closed":
        host.ask(Cmd.FIBER_SET_MO, 1)
    if setup == "laser_disabled":
        host.ask(Cmd.DISABLE_LASER)
    host.stream(job_to_entries(square_job(0.0 if setup == "zero_power" else 40.0), machine))
    assert board.runs[0].complete and board.burned_strokes() == []
    assert not ledger.exists() or read_jobs(ledger) == []


def test_red_pointer_trace_never_burns(machine: MachineProfile, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    _, board, host = sim(machine, ledger=str(ledger))
    host.ask(Cmd.FIBER_SET_MO, 1)  # even with the oscillator open, jumps do not fire
    host.ask(Cmd.WRITE_PORT, 0x0100)
    for _ in range(3):
        host.ask(Cmd.RESET_LIST)
        host.stream(frame_entries(square_job(), machine, repeats=5))
    assert board.burned_strokes() == []
    assert not ledger.exists()
    assert len(board.pointer_path) == 3 * (5 * 4 + 1)
    xs = [p[0] for p in board.pointer_path]
    assert min(xs) == pytest.approx(0, abs=0.002) and max(xs) == pytest.approx(10, abs=0.002)


def test_ledger_records_start_before_emission_and_end(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    _, board, host = sim(machine, ledger=str(ledger))
    host.ask(Cmd.FIBER_SET_MO, 1)
    host.stream(job_to_entries(square_job(), machine))
    host.stream(job_to_entries(square_job(), machine))
    jobs = read_jobs(ledger)
    assert [j.job for j in jobs] == [1, 2]
    assert all(j.complete for j in jobs)
    assert jobs[0].polylines[0] == [(round(x, 6), round(y, 6)) for x, y in board.runs[0].strokes[0]]


def realtime_board(
    machine: MachineProfile, ledger: Path | None = None
) -> tuple[LmcBoard, ManualClock]:
    from markstation.devices.sim.ledger import Ledger

    clock = ManualClock(100.0)
    board = LmcBoard(machine, speed=1.0, clock=clock, ledger=Ledger(ledger) if ledger else None)
    return board, clock


def load_and_start(board: LmcBoard, clock: ManualClock, entries: list[Entry]) -> None:
    for packet in pack_list(entries)[:2]:
        clock.advance(0.01)
        board.packet(packet)
        board.command(command(Cmd.SET_END_OF_LIST))
    clock.advance(0.01)
    board.command(command(Cmd.FIBER_SET_MO, 1))
    board.command(command(Cmd.EXECUTE_LIST))


def status(board: LmcBoard) -> Reply:
    raw = board.command(command(Cmd.GET_VERSION))
    assert raw is not None
    return Reply.decode(raw)


def test_realtime_runs_for_the_lists_duration(machine: MachineProfile, tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    board, clock = realtime_board(machine, ledger)
    entries = job_to_entries(square_job(), machine)
    duration = decode_entries(entries, Geometry.from_machine(machine)).duration_s
    load_and_start(board, clock, entries)
    assert status(board).busy
    assert not ledger.exists()  # jumped to the start, not yet fired
    clock.advance(duration * 0.5)
    assert status(board).busy and board.emitting
    records = ledger.read_text().splitlines()
    assert len(records) == 1 and '"start"' in records[0]
    clock.advance(duration * 0.6)
    r = status(board)
    assert r.ready and not r.busy and not board.emitting
    (job,) = read_jobs(ledger)
    assert job.complete and len(job.polylines) == 1


def test_stop_execute_aborts_mid_run(machine: MachineProfile, tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    board, clock = realtime_board(machine, ledger)
    entries = job_to_entries(square_job(), machine)
    duration = decode_entries(entries, Geometry.from_machine(machine)).duration_s
    load_and_start(board, clock, entries)
    clock.advance(duration * 0.5)
    assert status(board).busy and board.emitting
    board.command(command(Cmd.STOP_EXECUTE))
    assert not board.emitting and not status(board).busy
    clock.advance(10.0)
    (job,) = read_jobs(ledger)
    assert job.complete is False
    burned = sum(math.dist(s[i], s[i + 1]) for s in job.polylines for i in range(len(s) - 1))
    assert 0 < burned < 40.0  # part of the square, never the rest
    assert board.buffer == type(board.buffer)()  # the list is gone


def test_pause_and_resume(machine: MachineProfile) -> None:
    board, clock = realtime_board(machine)
    entries = job_to_entries(square_job(), machine)
    load_and_start(board, clock, entries)
    clock.advance(0.01)
    board.command(command(Cmd.STOP_LIST))
    done_before = len(board.buffer)
    clock.advance(100.0)
    assert status(board).status & 0x08 and len(board.buffer) == done_before
    board.command(command(Cmd.RESTART_LIST))
    clock.advance(100.0)
    assert not status(board).busy and board.runs[0].complete


def test_streaming_a_long_list_waits_for_ready(machine: MachineProfile) -> None:
    board, clock = realtime_board(machine)
    entries = job_to_entries(long_job(1500), machine)  # ~4500 entries, ~18 packets
    packets = pack_list(entries)
    assert len(packets) > board.buffer_packets + 2
    sent = 0
    started = False
    for _ in range(200_000):
        clock.advance(0.002)
        r = status(board)
        if sent < len(packets) and r.ready:
            board.packet(packets[sent])
            sent += 1
            board.command(command(Cmd.SET_END_OF_LIST))
            if sent == 2:
                board.command(command(Cmd.FIBER_SET_MO, 1))
                board.command(command(Cmd.EXECUTE_LIST))
                started = True
        elif started and sent == len(packets) and r.ready and not r.busy:
            break
    assert board.violations == []
    assert board.runs[0].complete and len(board.burned_strokes()) == 1500


def test_buffer_full_refuses_ready(machine: MachineProfile) -> None:
    board, clock = realtime_board(machine)
    packets = pack_list(job_to_entries(long_job(1500), machine))
    for packet in packets[: board.buffer_packets]:
        clock.advance(0.01)
        board.packet(packet)
    clock.advance(0.01)
    assert not status(board).ready
    board.packet(packets[board.buffer_packets])
    assert len(board.buffer) == board.buffer_packets * 256
    assert "not READY" in board.violations[0]


def test_faster_timing_divides_the_duration(machine: MachineProfile) -> None:
    clock = ManualClock()
    board = LmcBoard(machine, speed=10.0, clock=clock)
    entries = job_to_entries(square_job(), machine)
    duration = decode_entries(entries, Geometry.from_machine(machine)).duration_s
    load_and_start(board, clock, entries)
    clock.advance(duration / 10 * 0.8)
    assert status(board).busy
    clock.advance(duration / 10 * 0.3)
    assert not status(board).busy


def test_render_png(machine: MachineProfile, tmp_path: Path) -> None:
    from PIL import Image

    _, board, host = sim(machine)
    host.ask(Cmd.FIBER_SET_MO, 1)
    host.stream(job_to_entries(square_job(), machine))
    out = board.render_png(tmp_path / "burn.png", spot_mm=machine.spot_mm)
    with Image.open(out) as image:
        burned = image.width * image.height - image.histogram()[0]
        assert image.mode == "L" and 0 < burned < image.width * image.height / 4


# --- faults ----------------------------------------------------------------------------------------------


def test_fault_timeout_hangs_the_board_from_transfer_n(machine: MachineProfile) -> None:
    _, board, host = sim(machine, fault="timeout@3")
    host.ask(Cmd.GET_VERSION)  # transfers 1, 2
    with pytest.raises(usb.core.USBTimeoutError) as info:
        host.dev.write(0x02, command(Cmd.GET_VERSION), 100)  # 3
    assert info.value.backend_error_code == -7 and info.value.errno == errno.ETIMEDOUT
    with pytest.raises(usb.core.USBTimeoutError):
        host.ask(Cmd.GET_VERSION)
    assert board.commands == 1  # timed-out writes never reached the board


def test_fault_disconnect_runs_out_the_list_and_vanishes(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.jsonl"
    backend, _board = make_sim_backend(
        {"fault": "disconnect@12", "timing": "realtime", "ledger": str(ledger)}, machine
    )
    host = Host(backend)
    host.ask(Cmd.FIBER_SET_MO, 1)  # 1, 2
    with pytest.raises(usb.core.USBError) as info:
        host.stream(job_to_entries(square_job(), machine))
    assert info.value.errno == errno.ENODEV and info.value.backend_error_code == -4
    assert usb.core.find(idVendor=VID, idProduct=PID, backend=backend) is None
    (job,) = read_jobs(ledger)  # the powered board finished what it held
    assert job.complete is True and len(job.polylines) == 1
    with pytest.raises(usb.core.USBError):
        host.ask(Cmd.GET_VERSION)


def test_fault_reset_loses_all_state(machine: MachineProfile) -> None:
    _, board, host = sim(machine, fault="reset@5")
    host.ask(Cmd.WRITE_PORT, 0x0101)  # transfers 1, 2
    host.ask(Cmd.FIBER_SET_MO, 1)  # 3, 4
    with pytest.raises(usb.core.USBError) as info:
        host.ask(Cmd.GET_VERSION)  # 5
    assert info.value.errno == errno.ECONNRESET and info.value.backend_error_code == -1
    assert not board.mo_open and board.outputs == 0 and not board.red_pointer_on
    r = host.ask(Cmd.GET_VERSION)  # the reset board answers again, idle
    assert r.status == 0x0220


def test_board_reset_mid_run_ends_the_ledger_job_incomplete(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.jsonl"
    board, clock = realtime_board(machine, ledger)
    entries = job_to_entries(square_job(), machine)
    load_and_start(board, clock, entries)
    clock.advance(0.02)
    assert status(board).busy and board.emitting
    board.reset()
    assert not board.running and not board.mo_open and len(board.buffer) == 0
    (job,) = read_jobs(ledger)
    assert job.complete is False and job.polylines


def test_fault_interlock_opens_the_input(machine: MachineProfile) -> None:
    _, _board, host = sim(machine, fault="interlock@3")
    assert not host.ask(Cmd.READ_PORT).r1 & 0x4000  # transfers 1, 2
    assert host.ask(Cmd.READ_PORT).r1 & 0x4000  # transfer 3 sees it open


# --- capture -----------------------------------------------------------------------------------------------


def test_capture_writes_every_transfer_as_usbpcap(machine: MachineProfile, tmp_path: Path) -> None:
    cap = tmp_path / "sim.pcap"
    backend, board, host = sim(machine, capture=str(cap))
    host.ask(Cmd.FIBER_SET_MO, 1)
    host.stream(job_to_entries(square_job(), machine))
    with pytest.raises(usb.core.USBTimeoutError):
        host.dev.read(0x88, 8, 100)  # nothing pending: logged as a failed transfer
    backend.close()
    records = read_pcap(cap)
    assert cap.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")
    assert all(r.transfer == 3 for r in records) and len(records) % 2 == 0
    transfers = bulk_transfers(records)
    outs = [t for t in transfers if t.endpoint == 0x02]
    ins = [t for t in transfers if t.endpoint == 0x88]
    assert {len(t.payload) for t in outs} == {12, 3072} and {len(t.payload) for t in ins} == {8}
    assert len(outs) == board.commands + board.packets_received
    assert records[-1].status != 0 and records[-1].completion


def test_host_letting_go_mid_run_leaves_the_board_to_finish(
    machine: MachineProfile, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.jsonl"
    backend, board = make_sim_backend({"timing": "realtime", "ledger": str(ledger)}, machine)
    host = Host(backend)
    host.ask(Cmd.FIBER_SET_MO, 1)
    slow = Job(
        (Layer("l", MarkParams(speed_mm_s=5.0, power_pct=50.0, frequency_khz=30.0), (SQUARE,)),)
    )
    host.stream(job_to_entries(slow, machine), wait_done=False)  # an 8-second list
    assert board.running
    host.close()  # the driver is gone (crash, closed) without stopping the list
    assert not board.running
    (job,) = read_jobs(ledger)
    assert job.complete is True and len(job.polylines) == 1
