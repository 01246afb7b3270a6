"""The simulated GRBL controller: wire behaviour, laser mode, buffers, faults, ledger, pty."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grbl_helpers import square_job
from markstation.devices.grbl.codec import (
    AlarmMessage,
    Banner,
    Geometry,
    Status,
    encode_job,
    parse_line,
)
from markstation.devices.sim.faults import Fault
from markstation.devices.sim.grbl.controller import GrblController as GrblSim
from markstation.devices.sim.grbl.options import build_controller as sim_from_options
from markstation.devices.sim.grbl.options import parse_settings
from markstation.devices.sim.ledger import Ledger, read_jobs
from markstation.errors import ConfigError
from markstation.job.ir import Job, Layer, MarkParams, Polyline

GEO = Geometry(300, 300, origin="lower-left", max_s=1000)
pytestmark = pytest.mark.timeout(30)


class Harness:
    """Drive a GrblSim line by line and collect what it says."""

    def __init__(self, **kwargs: object) -> None:
        self._out: list[bytes] = []
        self._lock = threading.Lock()
        self.sim = GrblSim(GEO, output=self._collect, **kwargs)  # type: ignore[arg-type]
        self.sim.start()
        self.sim.feed(b"\x18")
        assert any(line.startswith("Grbl ") for line in self.wait_for("Grbl "))

    def _collect(self, data: bytes) -> None:
        with self._lock:
            self._out.append(data)

    def take(self) -> list[str]:
        with self._lock:
            data, self._out = b"".join(self._out), []
        return [ln for ln in data.decode().split("\r\n") if ln]

    def wait_for(self, prefix: str, timeout: float = 5.0) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got += self.take()
            if any(ln.startswith(prefix) for ln in got):
                return got
            time.sleep(0.002)
        raise AssertionError(f"no {prefix!r} in {got}")

    def send(self, line: str) -> list[str]:
        """Send a line, return everything up to and including its reply."""
        self.sim.feed(line.encode() + b"\n")
        got: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got += self.take()
            if got and (got[-1] == "ok" or got[-1].startswith("error:")):
                return got
            time.sleep(0.001)
        raise AssertionError(f"no reply to {line!r}: {got}")

    def reply(self, line: str) -> str:
        return self.send(line)[-1]

    def status(self) -> Status:
        self.sim.feed(b"?")
        for ln in self.wait_for("<"):
            if ln.startswith("<"):
                msg = parse_line(ln)
                assert isinstance(msg, Status)
                return msg
        raise AssertionError("no status")

    def close(self) -> None:
        self.sim.stop()


@pytest.fixture
def grbl() -> object:
    h = Harness()
    yield h
    h.close()


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("G99", 20),  # unsupported G-code
        ("$Z", 2),  # unknown $ letter: bad number format
        ("$100", 3),  # setting without '='
        ("$HX", 5),  # homing disabled is checked first
        ("G1X1", 22),  # no feed rate yet
        ("G0G1X1", 21),  # two motion modes
        ("G1X1X2F10", 25),  # repeated word
        ("G4", 28),  # dwell without P
        ("G1X-", 2),  # bad number
        ("1X", 1),  # a number where a letter must be
        ("G1F-5X1", 4),  # negative feed
        ("M3.5", 23),  # M needs an integer
        ("M7", 20),  # no mist output in this build
        ("G80X1", 31),  # axis words with motion cancelled
        ("G0X1P2", 36),  # leftover word
        ("G2X1F100", 35),  # arc without offsets
        ("G2Z1F100", 32),  # arc without an axis of the plane
        ("G10L2P9X1", 29),  # no such coordinate system
        ("$30=-1", 4),  # negative setting
        ("$0=2", 6),  # step pulse too short
        ("$20=1", 10),  # soft limits need homing
        ("$999=1", 3),  # no such setting
        ("N99999999G0X1", 27),
        ("T300", 38),
        ("X" * 90, 11),  # longer than the line buffer
    ],
)
def test_error_codes_for_bad_input(grbl: Harness, line: str, code: int) -> None:
    assert grbl.reply(line) == f"error:{code}"


def test_line_rules(grbl: Harness) -> None:
    assert grbl.reply("") == "ok"
    assert grbl.reply("(just a comment)") == "ok"
    assert grbl.reply("g0 x1 y2 ; lower case, spaces and a comment") == "ok"
    assert grbl.reply("G0X1" + " " * 100) == "ok"  # spaces never reach the line buffer
    assert grbl.status().mpos == (1.0, 2.0, 0.0)
    # CR LF is two line ends: two oks
    grbl.sim.feed(b"G4P0\r\n")
    out = grbl.wait_for("ok")
    assert grbl.sim.wait_idle()
    time.sleep(0.02)
    assert (out + grbl.take()).count("ok") == 2


def test_queries(grbl: Harness) -> None:
    out = grbl.send("$I")
    assert out == ["[VER:1.1h.20190830:]", "[OPT:V,15,128]", "ok"]
    settings_lines = grbl.send("$$")
    assert (
        "$32=1" in settings_lines
        and "$30=1000" in settings_lines
        and "$100=250.000" in settings_lines
    )
    assert grbl.send("$G")[0] == "[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]"
    assert grbl.send("$#")[0] == "[G54:0.000,0.000,0.000]"
    assert grbl.send("$")[0].startswith("[HLP:")
    assert grbl.reply("$30=255") == "ok" and "$30=255" in grbl.send("$$")
    for line in settings_lines[:-1] + grbl.send("$#")[:-1]:
        parse_line(line)  # everything the simulator says parses


def test_alarm_lock_and_unlock() -> None:
    h = Harness(settings={22: 1})  # homing enabled: starts locked
    try:
        h.sim.feed(b"\x18")
        assert "[MSG:'$H'|'$X' to unlock]" in h.wait_for("[MSG")
        assert h.status().state == "Alarm"
        assert h.reply("G0X1") == "error:9"
        assert h.reply("$H") == "ok" and h.status().state == "Idle"
        assert h.reply("$SLP") == "ok" and h.status is not None
        h.sim.feed(b"\x18")
        h.wait_for("Grbl")
        assert h.send("$X") == ["[MSG:Caution: Unlocked]", "ok"]
        assert h.reply("G0X1") == "ok"
    finally:
        h.close()


def test_reset_while_moving_raises_alarm_3_and_idle_reset_does_not() -> None:
    h = Harness(speed=1.0)
    try:
        assert h.reply("G1X100F600M4S500") == "ok"
        time.sleep(0.05)
        assert h.status().state == "Run"
        h.sim.feed(b"\x18")
        out = h.wait_for("[MSG")
        assert out[0] == "ALARM:3" and out[1].startswith("Grbl ") and "unlock" in out[2]
        assert h.reply("G0X0") == "error:9"
        h.send("$X")
        h.sim.feed(b"\x18")
        assert not any(ln.startswith("ALARM") for ln in h.wait_for("Grbl"))
        assert h.status().state == "Idle"
    finally:
        h.close()


def test_feed_hold_and_resume_stop_the_beam() -> None:
    h = Harness(speed=2.0)
    try:
        h.reply("G1X20F600M4S500")  # 2 s real, 1 s here
        time.sleep(0.2)
        h.sim.feed(b"!")
        time.sleep(0.05)
        held = h.status()
        assert held.state == "Hold" and held.substate == 0
        burned_at_hold = h.sim.burns()
        time.sleep(0.2)
        assert h.sim.burns() == burned_at_hold  # nothing burns while held
        h.sim.feed(b"~")
        time.sleep(0.02)
        assert h.status().state == "Run"
        assert h.sim.wait_idle(5)
        x = [p[0] for s in h.sim.burns() for p in s]
        assert max(x) == pytest.approx(20 - 150)
    finally:
        h.close()


def test_realtime_bytes_act_inside_comments(grbl: Harness) -> None:
    grbl.sim.feed(b"(status? please)\n")
    out = grbl.wait_for("ok")
    assert any(ln.startswith("<Idle") for ln in out)


def test_status_report_fields() -> None:
    h = Harness(settings={10: 2})  # WPos and buffer state
    try:
        h.reply("G10L2P1X10Y5")
        h.reply("G0X1Y1")
        st_ = h.status()
        assert st_.wpos == (1.0, 1.0, 0.0) and st_.buffer == (15, 128)
        assert st_.feed == 0 and st_.mpos is None
        h.sim.feed(b"\x91")  # feed override +10 %
        for _ in range(3):
            st_ = h.status()
            if st_.overrides is not None:
                break
        assert st_.overrides == (110, 100, 100)
    finally:
        h.close()


def test_laser_mode_semantics(grbl: Harness) -> None:
    grbl.reply("G0X10Y10M3S1000")  # G0 never fires in laser mode
    grbl.reply("G1X20F600S0")  # S0: off
    grbl.reply("M5")
    grbl.reply("M4S500")
    grbl.reply("G4P0.001")  # M4 at rest: nothing
    assert grbl.sim.burns() == []
    grbl.reply("G1X30")  # fires
    grbl.reply("M3")
    grbl.reply("G4P0.001")  # M3 with G1 modal stays on at rest: a spot
    grbl.reply("M5")
    assert grbl.sim.burns() == [[(-130.0, -140.0), (-120.0, -140.0)], [(-120.0, -140.0)]]
    assert grbl.sim.max_burn_s == 500


def test_not_laser_mode_burns_during_travel() -> None:
    h = Harness(settings={32: 0})
    try:
        h.reply("M3S100")
        h.reply("G0X10")
        assert h.sim.burns() == [[(-150.0, -150.0), (-140.0, -150.0)]]
    finally:
        h.close()


def test_check_mode_burns_nothing(grbl: Harness) -> None:
    assert grbl.send("$C") == ["[MSG:Enabled]", "ok"]
    assert grbl.reply("G1X10F100M4S500") == "ok"
    assert grbl.reply("G99") == "error:20"
    assert grbl.status().state == "Check"
    grbl.sim.feed(b"$C\n")
    out = grbl.wait_for("Grbl")
    assert out[:2] == ["[MSG:Disabled]", "ok"]
    assert grbl.sim.burns() == []
    assert grbl.status().mpos == (0.0, 0.0, 0.0)


def test_arcs_and_startup_lines(grbl: Harness) -> None:
    grbl.reply("G1X10F1000M4S100")
    grbl.reply("G3X0Y10I-10")  # quarter circle about the start
    grbl.reply("M5")
    (stroke,) = grbl.sim.burns()
    radii = [((x + 150) ** 2 + (y + 150) ** 2) ** 0.5 for x, y in stroke[1:]]
    assert min(radii) > 9.99 and max(radii) < 10.01
    assert grbl.reply("G2X1Y1R0.1") == "error:34"
    assert grbl.reply("$N0=G21G90") == "ok"
    assert grbl.send("$N") == ["$N0=G21G90", "$N1=", "ok"]
    grbl.sim.feed(b"\x18")
    assert ">G21G90:ok" in grbl.wait_for(">")


def test_rx_overflow_is_lost_and_counted(grbl: Harness) -> None:
    lines = [f"G1X{i % 10}F6000M4S10\n".encode() for i in range(60)]
    blob = b"".join(lines)
    assert len(blob) > 128
    grbl.sim.feed(blob)  # written blindly: everything beyond 128 bytes is lost
    grbl.sim.wait_idle()
    time.sleep(0.05)
    replies = [ln for ln in grbl.take() if ln == "ok" or ln.startswith("error")]
    assert grbl.sim.overflow_bytes == len(blob) - 128
    assert len(replies) < len(lines)


def test_planner_full_holds_the_ok() -> None:
    h = Harness(speed=1.0)
    try:
        h.reply("M4S100")
        h.reply("F60")
        for i in range(15):  # 15 blocks of 1 s each fill the planner
            h.reply(f"G1X{i + 1}")
        h.sim.feed(b"G1X20\n")
        time.sleep(0.3)
        assert "ok" not in h.take()  # the 16th waits for room
        assert h.wait_for("ok", timeout=3)
        h.sim.feed(b"\x18")
    finally:
        h.close()


@settings(max_examples=15)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.floats(-100, 100).map(lambda v: round(v, 3)),
                st.floats(-100, 100).map(lambda v: round(v, 3)),
            ),
            min_size=2,
            max_size=6,
        ).filter(
            lambda pts: all(
                abs(a[0] - b[0]) + abs(a[1] - b[1]) > 0.1 for a, b in itertools.pairwise(pts)
            )
        ),
        min_size=1,
        max_size=5,
    )
)
def test_round_trip_encode_then_simulate(strokes: list[list[tuple[float, float]]]) -> None:
    job = Job(
        layers=(Layer("l", MarkParams(50, 30, 1), tuple(Polyline(tuple(s)) for s in strokes)),)
    )
    out: list[bytes] = []
    sim = GrblSim(GEO, output=out.append)
    sim.start()
    try:
        for wire in encode_job(job, GEO).wire():
            sim.feed(wire)
            assert sim.wait_idle()
        burns = sim.burns()
    finally:
        sim.stop()
    merged: list[list[tuple[float, float]]] = []
    for s in strokes:  # a stroke that starts where the last ended is one burn
        if merged and merged[-1][-1] == s[0]:
            merged[-1] += s[1:]
        else:
            merged.append(list(s))
    assert len(burns) == len(merged)
    for got, want in zip(burns, merged, strict=True):
        assert len(got) == len(want)
        for (gx, gy), (wx, wy) in zip(got, want, strict=True):
            assert abs(gx - wx) < 1e-6 and abs(gy - wy) < 1e-6


def test_ledger_jobs(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    h = Harness(ledger=ledger)
    try:
        for wire in encode_job(square_job(10), GEO).wire():
            h.reply(wire.decode().strip())
        h.reply("M4S100")
        h.reply("G1X1F100")  # a second job, cut short by a reset
        h.sim.feed(b"\x18")
        h.wait_for("Grbl")
    finally:
        h.close()
    jobs = read_jobs(tmp_path / "ledger.jsonl")
    assert [(j.job, j.complete) for j in jobs] == [(1, True), (2, False)]
    assert jobs[0].polylines == [[(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0), (-5.0, -5.0)]]


@pytest.mark.parametrize("kind", ["alarm", "reset", "disconnect", "stall"])
def test_faults(tmp_path: Path, kind: str) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    h = Harness(ledger=ledger, fault=Fault(kind, 8))
    try:
        wires = encode_job(square_job(10), GEO).wire()
        for wire in wires[:7]:
            h.reply(wire.decode().strip())
        h.sim.feed(wires[7])
        time.sleep(0.1)
        out = h.take()
        if kind == "alarm":
            assert out == ["ALARM:1", "[MSG:Reset to continue]"]
            h.sim.feed(b"?")
            time.sleep(0.05)
            assert h.take() == []  # a critical alarm answers nothing until a reset
        elif kind == "reset":
            assert any(ln.startswith("Grbl ") for ln in out)
        elif kind == "disconnect":
            assert h.sim.disconnected and out == []
        else:
            assert h.sim.stalled and out == []
            h.sim.feed(b"?\x18")
            time.sleep(0.05)
            assert h.take() == []
    finally:
        h.close()
    (job,) = read_jobs(tmp_path / "l.jsonl")
    assert job.complete is False and len(job.polylines) == 1


def test_options_refused() -> None:
    with pytest.raises(ConfigError, match="settings=32"):
        parse_settings("32", "here")
    with pytest.raises(ConfigError, match="link=fast"):
        sim_from_options({"link": "fast"}, "here")
    with pytest.raises(ConfigError, match="timing"):
        sim_from_options({"timing": "soon"}, "here")
    with pytest.raises(ConfigError, match="unknown fault"):
        sim_from_options({"fault": "fire@3"}, "here")


def test_banner_waits_for_the_first_host_byte() -> None:
    out: list[bytes] = []
    sim = GrblSim(GEO, output=out.append)
    sim.start()
    try:
        time.sleep(0.05)
        assert out == []  # a host's open() would have flushed it anyway
        sim.feed(b"?")
        sim.wait_idle()
        time.sleep(0.05)
        lines = [ln for ln in b"".join(out).decode().split("\r\n") if ln]
        assert isinstance(parse_line(lines[0]), Banner) and lines[1].startswith("<Idle")
    finally:
        sim.stop()


def test_alarm_message_parses() -> None:
    assert parse_line("ALARM:1") == AlarmMessage(1)


@pytest.mark.skipif(sys.platform == "win32", reason="pty mode is POSIX only")
@pytest.mark.timeout(20)
def test_pty_with_plain_pyserial_client() -> None:
    import serial

    from markstation.devices.sim.grbl.pty import serve_pty

    with serve_pty({"timing": "instant"}) as server:
        port = serial.Serial(server.path, 115200, timeout=2)
        try:
            port.write(b"\x18")
            assert port.read_until(b"help]\r\n").endswith(b"Grbl 1.1h ['$' for help]\r\n")
            port.write(b"$I\n")
            assert port.read_until(b"ok\r\n") == b"[VER:1.1h.20190830:]\r\n[OPT:V,15,128]\r\nok\r\n"
            port.write(b"G1X10F600M4S100\nM5\n")
            assert port.read_until(b"ok\r\nok\r\n") == b"ok\r\nok\r\n"
            port.write(b"?")
            assert port.read_until(b">\r\n").startswith(b"<Idle|MPos:10.000,0.000,0.000|")
        finally:
            port.close()
        assert server.sim is not None and server.sim.burns() == [
            [(-150.0, -150.0), (-140.0, -150.0)]
        ]


@pytest.mark.skipif(sys.platform == "win32", reason="pty mode is POSIX only")
@pytest.mark.timeout(30)
def test_cli_sim_grbl_pty(tmp_path: Path) -> None:
    import serial

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from markstation.cli import main; main()", "sim", "grbl", "--pty",
         "--ledger", str(tmp_path / "l.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().decode().strip()
        assert path.startswith("/dev/")
        port = serial.Serial(path, 115200, timeout=2)
        port.write(b"\x18")
        assert b"Grbl 1.1h" in port.read_until(b"help]\r\n")
        port.write(b"G1X5F600M4S100\nM5\n")
        assert port.read_until(b"ok\r\nok\r\n").count(b"ok") == 2
        port.close()
    finally:
        proc.send_signal(2)
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == 0
    (job,) = read_jobs(tmp_path / "l.jsonl")
    assert job.complete is True


def test_cli_sim_grbl_needs_pty() -> None:
    from click.testing import CliRunner

    from markstation.cli.sim_grbl import grbl as grbl_cmd

    result = CliRunner().invoke(grbl_cmd, [])
    assert result.exit_code != 0 and "--pty" in result.output


def test_render_png_draws_dots_as_wide_as_the_dot_model(tmp_path: Path) -> None:
    """Dots (the codec's short M4 move, or a G4 dwell under M3) at the diameter the job's dot model
    gives for the dwell and S share they burned with; a line at the spot."""
    from PIL import Image

    from markstation.devices.sim.render import burned_dot_mm
    from markstation.job.ir import Dot
    from markstation.profiles import load_material

    material = load_material("blued-steel-gantry")
    spot = 0.08
    line = Polyline(((-3.0, -3.0), (3.0, -3.0)))
    dots = (Dot(0.0, 0.0, 0.004), Dot(3.0, 0.0, 0.0005))
    job = Job((Layer("dots", MarkParams(20.0, 50.0, 1.0), (*dots, line)),))
    h = Harness()
    try:
        for wire in encode_job(job, GEO).wire():
            h.sim.feed(wire)
            assert h.sim.wait_idle()
        x, y = GEO.to_machine(-3.0, 0.0)
        for text in (f"G0X{x:.3f}Y{y:.3f}", "G1F100M3S250", "G4P0.004", "M5"):
            h.reply(text)  # a dwell at rest under M3: 4 ms at 25 %
        out = h.sim.render_png(
            tmp_path / "burn.png", spot_mm=spot, px_per_mm=200, material=material
        )
        burns = h.sim.burns()
    finally:
        h.close()
    pts = [p for s in burns for p in s]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    margin = max(1.0, 0.05 * max(max(xs) - min(xs), max(ys) - min(ys)))
    left, top = min(xs) - margin, max(ys) + margin
    with Image.open(out) as image:
        burned = np.asarray(image) > 127

    def run_mm(row_mm: float, x_mm: float, vertical: bool = False) -> float:
        r, c = round((top - row_mm) * 200), round((x_mm - left) * 200)
        cut = burned[r - 100 : r + 100, c] if vertical else burned[r, c - 100 : c + 100]
        return int(np.count_nonzero(cut)) / 200

    for dot, power in ((dots[0], 50.0), (dots[1], 50.0), (Dot(-3.0, 0.0, 0.004), 25.0)):
        model = spot + material.dot_growth_mm * power / 100 * math.sqrt(dot.dwell_s * 1e3)
        assert burned_dot_mm(dot.dwell_s, power, spot_mm=spot, material=material) == (
            pytest.approx(model)
        )
        assert run_mm(dot.y, dot.x) == pytest.approx(model, abs=2 / 200)
    assert run_mm(-3.0, 0.0, vertical=True) == pytest.approx(spot, abs=2 / 200)  # the line
