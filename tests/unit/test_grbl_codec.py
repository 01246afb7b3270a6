"""GRBL codec: G-code generation (golden files), coordinate mapping, and the reply parser."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _golden import Golden
from grbl_helpers import square_job, write_profiles
from markstation.devices.grbl import codec
from markstation.devices.grbl.codec import (
    AlarmMessage,
    Banner,
    BuildOptions,
    ErrorReply,
    Feedback,
    Geometry,
    LineSplitter,
    Ok,
    Probe,
    Setting,
    StartupBlock,
    StartupResult,
    Status,
    VersionInfo,
    WordError,
    encode_frame,
    encode_job,
    fmt,
    parse_line,
    split_words,
)
from markstation.errors import DeviceProtocolError, JobError
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.profiles import load_machine

GEO = Geometry(300, 300, origin="lower-left", max_s=1000)


def test_fmt_is_compact_and_deterministic() -> None:
    assert fmt(600.0) == "600"
    assert fmt(1.5) == "1.5"
    assert fmt(-0.0001) == "0"
    assert fmt(0.1234567) == "0.123"
    assert fmt(150.0005) in ("150", "150.001")
    with pytest.raises(JobError):
        fmt(float("nan"))


def test_golden_square_10mm(golden: Golden) -> None:
    program = encode_job(square_job(10.0), Geometry.from_machine(load_machine("grbl-marker")))
    golden.check("grbl_square10.gcode", "\n".join(program.lines) + "\n", what="the G-code")
    assert program.lines[program.first_emission].startswith("G1")
    assert all(not ln.startswith("G1") for ln in program.lines[: program.first_emission])


def test_golden_full_secondary_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, golden: Golden
) -> None:
    from markstation.job import layout as job_builder
    from markstation.profiles import load_layout, load_material

    root = write_profiles(tmp_path)
    monkeypatch.setenv("MARKSTATION_PROFILES", str(root))
    machine = load_machine("grbl-marker")
    job = job_builder.build_job(
        "PE-SUCAMEC-2016-000123",
        layout=load_layout("secondary-mark"),
        material=load_material("grbl-test-steel"),
        machine=machine,
    )
    program = encode_job(job, Geometry.from_machine(machine))
    # the job's digest first: a job-builder change is named as such, not as a G-code change
    golden.check("grbl_secondary_mark.job-sha256", job.sha256() + "\n", what="the built job")
    golden.check("grbl_secondary_mark.gcode", "\n".join(program.lines) + "\n", what="the G-code")
    assert max(len(w) for w in program.wire()) <= 80
    assert program.marked_primitives == job.primitive_count()


def test_program_shape() -> None:
    params = MarkParams(50, 40, 1, passes=2, jump_speed_mm_s=200)
    job = Job(layers=(Layer("l", params, (Polyline(((0, 0), (1, 0))), Dot(2, 2, 0.001))),))
    program = encode_job(job, GEO)
    lines = program.lines
    assert lines[:5] == ("G21", "G90", "G94", "M5", "M4S0")
    assert lines[-3:] == ("M5", "G0X150Y150", "G4P0.01")
    # two passes: every primitive twice; F and S written only when they change
    assert sum(ln.startswith("G1") for ln in lines) == 4
    assert lines.count("G0X150Y150") == 3
    assert sum("S400" in ln for ln in lines) == 1
    # a dot is a 0.02 mm G1 whose feed makes its duration the dwell: 0.02 mm / 1 ms = 1200 mm/min
    assert "G0X151.99Y152" in lines and "G1X152.01Y152F1200" in lines
    for wire in program.wire():
        assert wire.endswith(b"\n") and not wire.endswith(b"\r\n")
        assert all(32 <= b < 127 for b in wire[:-1])


def test_no_emission_without_power() -> None:
    job = Job(layers=(Layer("l", MarkParams(50, 0, 1), (Polyline(((0, 0), (1, 0))),)),))
    program = encode_job(job, GEO)
    assert program.first_emission == len(program.lines)


@pytest.mark.parametrize(
    "flags", [(False, False, False), (True, False, False), (True, True, True), (False, True, False)]
)
@given(x=st.floats(-150, 150), y=st.floats(-100, 100))
def test_geometry_round_trip(flags: tuple[bool, bool, bool], x: float, y: float) -> None:
    swap, fx, fy = flags
    for origin in ("center", "lower-left"):
        geo = Geometry(300, 200, swap_xy=swap, flip_x=fx, flip_y=fy, origin=origin)
        bx, by = geo.to_field(*geo.to_machine(x, y))
        assert abs(bx - x) < 1e-9 and abs(by - y) < 1e-9


def test_geometry_lower_left_and_swap() -> None:
    assert Geometry(300, 200, origin="lower-left").to_machine(0, 0) == (150, 100)
    assert Geometry(300, 200, origin="lower-left", swap_xy=True).to_machine(0, 0) == (100, 150)
    assert Geometry(300, 200, flip_y=True).to_machine(1, 2) == (1, -2)


def test_frame_program() -> None:
    off = encode_frame((-5, -2, 5, 2), GEO)
    assert not any(ln.startswith("G1") or "M4" in ln for ln in off.lines)
    assert off.first_emission == len(off.lines)
    lit = encode_frame((-5, -2, 5, 2), GEO, pointer_s=20, feed_mm_min=600)
    g1 = [ln for ln in lit.lines if ln.startswith("G1")]
    assert len(g1) == 4 and "S20" in g1[0] and "F600" in g1[0]
    assert lit.lines[-2:] == ("M5", "G4P0.01")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ok", Ok()),
        ("error:20", ErrorReply(20)),
        ("ALARM:3", AlarmMessage(3)),
        ("Grbl 1.1h ['$' for help]", Banner("Grbl", "1.1h", "'$' for help")),
        (
            "GrblHAL 1.1f ['$' or '$HELP' for help]",
            Banner("GrblHAL", "1.1f", "'$' or '$HELP' for help"),
        ),
        ("[MSG:'$H'|'$X' to unlock]", Feedback("MSG", "'$H'|'$X' to unlock")),
        (
            "[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]",
            Feedback("GC", "G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0"),
        ),
        ("[HLP:$$ $# $G $I $N]", Feedback("HLP", "$$ $# $G $I $N")),
        ("[echo:G1X1]", Feedback("echo", "G1X1")),
        ("[G54:1.000,2.000,0.000]", Feedback("G54", "1.000,2.000,0.000")),
        ("[VER:1.1h.20190830:my laser]", VersionInfo("1.1h", "20190830", "my laser")),
        ("[OPT:V,15,128]", BuildOptions("V", 15, 128)),
        ("[OPT:VNMHL,35,1024,3,0]", BuildOptions("VNMHL", 35, 1024, ("3", "0"))),
        ("[PRB:1.000,2.000,-3.500:1]", Probe((1.0, 2.0, -3.5), True)),
        ("$30=1000", Setting(30, "1000")),
        ("$N0=G21G90", StartupBlock(0, "G21G90")),
        (">G21G90:ok", StartupResult("G21G90", None)),
        (">G99:error:20", StartupResult("G99", 20)),
    ],
)
def test_parse_messages(line: str, expected: object) -> None:
    assert parse_line(line) == expected
    assert parse_line(line.encode() + b"\r\n") == expected


def test_parse_status_all_fields() -> None:
    st_ = parse_line(
        "<Hold:1|MPos:3.220,1.168,0.000|Bf:14,128|Ln:99|FS:481,401|Pn:XD|WCO:1.000,0.000,0.000|"
        "Ov:100,90,110|A:CF|H:1>"
    )
    assert isinstance(st_, Status)
    assert (st_.state, st_.substate, st_.mpos, st_.buffer, st_.line_number) == (
        "Hold",
        1,
        (3.22, 1.168, 0.0),
        (14, 128),
        99,
    )
    assert (st_.feed, st_.speed, st_.pins, st_.wco, st_.overrides, st_.accessories) == (
        481,
        401,
        "XD",
        (1.0, 0.0, 0.0),
        (100, 90, 110),
        "CF",
    )
    assert st_.extra == (("H", "1"),)
    idle = parse_line("<Idle|WPos:0.000,0.000,0.000|F:0>")
    assert isinstance(idle, Status) and idle.wpos == (0, 0, 0) and idle.feed == 0


@pytest.mark.parametrize(
    "line",
    ["", "okay", "error:x", "ALARM:", "<Bogus|MPos:0,0,0>", "<Idle|MPos:a,b,c>", "<Idle|Bf:1>",
     "[MSG no colon]", "[OPT:V,x,128]", "$x=1", "$30", ">G21", "Grbl", "<Idle|FS:1,2,3>",
     "[PRB:1,2,3:7]", "ok\x00"],
)  # fmt: skip
def test_parse_refuses(line: str) -> None:
    with pytest.raises(DeviceProtocolError):
        parse_line(line)


def test_parse_refuses_non_ascii() -> None:
    with pytest.raises(DeviceProtocolError, match="non-ASCII"):
        parse_line(b"ok\xe2\x80\x94")


@given(st.binary(max_size=200))
def test_parser_never_raises_anything_else(data: bytes) -> None:
    for raw in LineSplitter().feed(data + b"\n"):
        with contextlib.suppress(DeviceProtocolError):
            parse_line(raw)


@given(st.text(alphabet="<>[]|:,.$=-0123456789okerrorALARMIdleRunMPosWPosFSBfOvGrbl ", max_size=80))
def test_parser_on_near_miss_text(text: str) -> None:
    with contextlib.suppress(DeviceProtocolError):
        parse_line(text)


@given(
    st.lists(
        st.sampled_from(["ok", "error:9", "<Idle|MPos:0.000,0.000,0.000|FS:0,0>", "ALARM:1"]),
        max_size=20,
    ),
    st.data(),
)
def test_splitter_any_chunking(lines: list[str], data: st.DataObject) -> None:
    stream = b"".join(ln.encode() + b"\r\n" for ln in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    splitter = LineSplitter()
    got: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        got += splitter.feed(stream[prev:cut])
        prev = cut
    assert [g.decode() for g in got] == lines


def test_splitter_refuses_endless_line() -> None:
    with pytest.raises(DeviceProtocolError, match="without a line end"):
        LineSplitter(max_line=100).feed(b"x" * 200)


def test_split_words() -> None:
    assert [(w[0], w[1]) for w in split_words("G1X-1.5Y.5F600")] == [
        ("G", 1),
        ("X", -1.5),
        ("Y", 0.5),
        ("F", 600),
    ]
    with pytest.raises(WordError) as e1:
        split_words("1G")
    assert e1.value.code == 1
    with pytest.raises(WordError) as e2:
        split_words("GX1")
    assert e2.value.code == 2


def test_tables_cover_the_common_codes() -> None:
    assert all(n in codec.ERRORS for n in range(1, 39))
    assert all(n in codec.ALARMS for n in range(1, 11))
    assert {30, 31, 32, 110, 130}.issubset(codec.SETTINGS)
    assert codec.error_text(99) == "unknown error 99"
    assert re.search("hard limit", codec.alarm_text(1))
