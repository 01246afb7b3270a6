"""The LMC codec: words, entries, replies, packets, unit conversions, Job → list → burn."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _golden import Golden
from markstation.devices.lmc.codec import (
    END_DELAY_S,
    GALVO_CENTRE,
    MAX_DWELL_TICKS,
    PACKET_BYTES,
    PACKET_ENTRIES,
    Cmd,
    Entry,
    Geometry,
    ListOp,
    Reply,
    command,
    decode_entries,
    delay_words,
    dump_entries,
    frame_entries,
    frequency_khz,
    job_to_entries,
    pack_list,
    power_pct,
    power_word,
    qswitch_word,
    speed_word,
    ticks_10us,
    unpack_packet,
)
from markstation.errors import DeviceProtocolError, JobError, SafetyLimitError
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.profiles import MachineProfile, load_machine

WORD = st.integers(0, 0xFFFF)
MOTION = (ListOp.JUMP_TO, ListOp.MARK_TO)


@pytest.fixture(scope="module")
def machine() -> MachineProfile:
    return load_machine("lmc-fiber-110")


def params(**kw: float) -> MarkParams:
    base: dict[str, float] = {"speed_mm_s": 500.0, "power_pct": 60.0, "frequency_khz": 30.0}
    base.update(kw)
    return MarkParams(**base)  # type: ignore[arg-type]


def one_layer(*prims: Polyline | Dot, **kw: float) -> Job:
    return Job((Layer("l", params(**kw), tuple(prims)),))


# --- enums ---------------------------------------------------------------------------------------


def test_opcode_values_from_the_fact_sheet() -> None:
    assert ListOp.JUMP_TO == 0x8001 and ListOp.END_OF_LIST == 0x8002
    assert ListOp.Q_SWITCH_PERIOD == 0x801B and ListOp.MARK_CURRENT == 0x8012
    assert ListOp.FIBER_YLPM_PULSE_WIDTH == 0x8026 and ListOp.READY_MARK == 0x8051
    assert Cmd.GET_VERSION == 0x0007 and Cmd.WRITE_COR_LINE == 0x0010
    assert Cmd.SET_END_OF_LIST == 0x0019 and Cmd.STOP_EXECUTE == 0x001F
    assert Cmd.FIBER_SET_MO == 0x0033 and Cmd.GET_MARK_TIME == 0x0041
    assert all(op >= 0x8000 for op in ListOp) and all(op < 0x8000 for op in Cmd)
    assert len(ListOp) == 32 and len(Cmd) == 56


# --- entries, replies, packets ----------------------------------------------------------------------


@given(st.builds(Entry, WORD, WORD, WORD, WORD, WORD, WORD))
def test_entry_round_trip(e: Entry) -> None:
    raw = e.encode()
    assert len(raw) == 12
    assert Entry.decode(raw) == e


@given(st.builds(Reply, WORD, WORD, WORD, WORD))
def test_reply_round_trip(r: Reply) -> None:
    assert Reply.decode(r.encode()) == r
    assert r.ready == bool(r.status & 0x20) and r.busy == bool(r.status & 0x04)


def test_entry_layout_is_six_little_endian_words() -> None:
    assert Entry(0x8001, 0x1234, 0xABCD).encode() == bytes.fromhex("01803412cdab") + bytes(6)
    assert command(Cmd.FIBER_SET_MO, 1) == bytes.fromhex("330001000000000000000000")


def test_reply_status_is_the_last_word() -> None:
    r = Reply.decode(bytes.fromhex("0000faff00002002"))
    assert (r.r1, r.status, r.ready, r.busy) == (0xFFFA, 0x0220, True, False)
    assert Reply(0, 0x5872, 0x0001, 0).value32 == 0x15872


@pytest.mark.parametrize("length", [0, 11, 13, 24])
def test_entry_decode_refuses_wrong_length(length: int) -> None:
    with pytest.raises(DeviceProtocolError, match="12 bytes"):
        Entry.decode(bytes(length))


@pytest.mark.parametrize("length", [0, 7, 9])
def test_reply_decode_refuses_wrong_length(length: int) -> None:
    with pytest.raises(DeviceProtocolError, match="8 bytes"):
        Reply.decode(bytes(length))


@pytest.mark.parametrize(
    "bad", [Entry(0x8001, 0x10000), Entry(-1), Entry(0x8005, 0, 0, 0, 0, 70000)]
)
def test_entry_encode_refuses_words_out_of_range(bad: Entry) -> None:
    with pytest.raises(ValueError, match=r"0\.\.0xFFFF"):
        bad.encode()


def test_reply_encode_refuses_words_out_of_range() -> None:
    with pytest.raises(ValueError):
        Reply(0, 0, 0, 0x10000).encode()


LIST_ENTRIES = st.lists(
    st.builds(
        Entry,
        st.sampled_from([op for op in ListOp if op != ListOp.END_OF_LIST]),
        WORD,
        WORD,
        WORD,
        WORD,
        WORD,
    ),
    max_size=700,
)


@given(LIST_ENTRIES)
def test_packets_round_trip_with_tail_fill(entries: list[Entry]) -> None:
    packets = pack_list(entries)
    assert all(len(p) == PACKET_BYTES for p in packets)
    back = [e for p in packets for e in unpack_packet(p)]
    assert back[: len(entries)] == entries
    tail = back[len(entries) :]
    assert tail and all(e == Entry(ListOp.END_OF_LIST) for e in tail)
    # only the last packet holds fill: every earlier one is full of real entries
    assert len(packets) == len(entries) // PACKET_ENTRIES + 1


def test_packet_that_fills_exactly_gets_a_terminating_packet() -> None:
    entries = [Entry(ListOp.JUMP_TO, 1, 2)] * PACKET_ENTRIES
    packets = pack_list(entries)
    assert len(packets) == 2
    assert set(unpack_packet(packets[1])) == {Entry(ListOp.END_OF_LIST)}


def test_empty_list_is_one_packet_of_fill() -> None:
    (packet,) = pack_list([])
    assert packet == bytes.fromhex("028000000000000000000000") * PACKET_ENTRIES


def test_pack_list_refuses_a_bad_word() -> None:
    with pytest.raises(ValueError, match="list entry 1"):
        pack_list([Entry(ListOp.READY_MARK), Entry(ListOp.JUMP_TO, 0x10000)])


@pytest.mark.parametrize("length", [0, 12, 3060, 3084])
def test_unpack_packet_refuses_wrong_length(length: int) -> None:
    with pytest.raises(DeviceProtocolError, match="3072"):
        unpack_packet(bytes(length))


def test_describe_names_the_opcode() -> None:
    assert Entry(ListOp.MARK_TO, 0x9746, 0x8000, 0, 0x1746).describe() == (
        "8005 MarkTo               9746 8000 0000 1746 0000"
    )
    assert "op_7777" in Entry(0x7777).describe()


# --- units -------------------------------------------------------------------------------------------


def test_conversions_match_the_fact_sheet(machine: MachineProfile) -> None:
    g = Geometry.from_machine(machine)
    assert g.units_per_mm == pytest.approx(595.77, abs=0.01)
    assert speed_word(2000, g) == 0x04A7  # MeerK40t golden test, 110 mm lens
    assert speed_word(15, g) == 0x0008
    assert power_word(100) == 0x0FFF and power_word(50) == 0x0800 and power_word(0) == 0
    assert qswitch_word(20) == 0x03E8 and qswitch_word(30) == 0x029B
    assert frequency_khz(0x03E8) == 20.0 and power_pct(0x0FFF) == 100.0
    assert delay_words(-100e-6) == (0x0064, 0x8000)
    assert delay_words(100e-6) == (0x0064, 0) and delay_words(0.0) == (0, 0)
    assert ticks_10us(8e-3) == 0x0320 and ticks_10us(300e-6) == 0x001E


@pytest.mark.parametrize(
    "call",
    [
        lambda: power_word(100.5),
        lambda: power_word(-1),
        lambda: power_word(math.nan),
        lambda: qswitch_word(0),
        lambda: qswitch_word(0.1),
        lambda: speed_word(0, Geometry(595.0)),
        lambda: delay_words(0.07),
        lambda: ticks_10us(-1e-3),
    ],
)
def test_conversions_refuse_what_a_word_cannot_hold(call: object) -> None:
    with pytest.raises(SafetyLimitError):
        call()  # type: ignore[operator]


FLAGS = st.tuples(st.booleans(), st.booleans(), st.booleans())
FIELD_POINT = st.floats(-54.9, 54.9, allow_nan=False)


@given(FLAGS, FIELD_POINT, FIELD_POINT)
def test_geometry_round_trip_within_one_unit(
    flags: tuple[bool, bool, bool], x: float, y: float
) -> None:
    g = Geometry(65535 / 110, *flags)
    gx, gy = g.to_galvo(x, y)
    assert 0 <= gx <= 0xFFFF and 0 <= gy <= 0xFFFF
    bx, by = g.to_mm(gx, gy)
    q = 0.5 / g.units_per_mm + 1e-12
    assert abs(bx - x) <= q and abs(by - y) <= q


def test_geometry_axes() -> None:
    s = 65535 / 110
    assert Geometry(s).to_galvo(0, 0) == (GALVO_CENTRE, GALVO_CENTRE)
    assert Geometry(s).to_galvo(10, 0)[0] > GALVO_CENTRE
    assert Geometry(s, swap_xy=True).to_galvo(10, 0) == (GALVO_CENTRE, GALVO_CENTRE + round(10 * s))
    assert Geometry(s, flip_y=True).to_galvo(0, 10)[1] < GALVO_CENTRE
    assert Geometry(s, flip_x=True).to_galvo(10, 0)[0] < GALVO_CENTRE


def test_field_edges_encode_and_beyond_is_refused(machine: MachineProfile) -> None:
    g = Geometry.from_machine(machine)
    assert g.to_galvo(55, -55) == (0xFFFF, 1)  # centre 0x8000: 32768 units below, 32767 above
    with pytest.raises(SafetyLimitError, match="outside the galvo range"):
        g.to_galvo(55.01, 0)
    with pytest.raises(SafetyLimitError):
        g.to_galvo(0, math.inf)


# --- Job → entries -----------------------------------------------------------------------------------

SQUARE = Polyline(((0, 0), (10, 0), (10, 10), (0, 10), (0, 0)))


def test_job_entries_structure(machine: MachineProfile) -> None:
    entries = job_to_entries(one_layer(SQUARE), machine)
    ops = [e.op for e in entries]
    assert ops[0] == ListOp.READY_MARK
    first_mark = ops.index(ListOp.MARK_TO)
    settings = {
        ListOp.JUMP_SPEED,
        ListOp.Q_SWITCH_PERIOD,
        ListOp.MARK_CURRENT,
        ListOp.MARK_SPEED,
        ListOp.LASER_ON_DELAY,
        ListOp.LASER_OFF_DELAY,
        ListOp.POLYGON_DELAY,
        ListOp.JUMP_DELAY,
    }
    assert settings <= set(ops[:first_mark])
    assert ops[1:4] == [ListOp.JUMP_SPEED, ListOp.Q_SWITCH_PERIOD, ListOp.MARK_CURRENT]
    assert ListOp.END_OF_LIST not in ops
    assert ops[first_mark - 1] == ListOp.JUMP_TO
    assert entries[-1].op == ListOp.JUMP_TO and entries[-1].words[:2] == (GALVO_CENTRE,) * 2
    assert all(e.w4 > 0 for e in entries if e.op == ListOp.MARK_TO)
    end_delay = Entry(ListOp.DELAY_TIME, ticks_10us(END_DELAY_S))
    assert entries[entries.index(end_delay) - 1].op == ListOp.MARK_TO


def test_zero_length_segments_are_dropped_but_tiny_strokes_still_burn(
    machine: MachineProfile,
) -> None:
    line = Polyline(((0, 0), (0, 0), (1, 0), (1, 0), (1, 1)))
    marks = [e for e in job_to_entries(one_layer(line), machine) if e.op == ListOp.MARK_TO]
    assert len(marks) == 2 and all(e.w4 > 0 for e in marks)
    tiny = Polyline(((0, 0), (0.0001, 0)))
    marks = [e for e in job_to_entries(one_layer(tiny), machine) if e.op == ListOp.MARK_TO]
    assert len(marks) == 1 and marks[0].w4 == 1
    assert (
        len(
            decode_entries(
                job_to_entries(one_layer(tiny), machine), Geometry.from_machine(machine)
            ).strokes
        )
        == 1
    )


def test_mopa_pulse_width_only_on_a_mopa_machine(machine: MachineProfile) -> None:
    job = one_layer(SQUARE, pulse_width_ns=20.0)
    with pytest.raises(SafetyLimitError, match="not a MOPA source"):
        job_to_entries(job, machine)
    mopa = dataclasses.replace(machine, pulse_width_ns=(4.0, 20.0))
    entries = job_to_entries(job, mopa)
    assert Entry(ListOp.FIBER_YLPM_PULSE_WIDTH, 20) in entries
    assert ListOp.FIBER_YLPM_PULSE_WIDTH not in [
        e.op for e in job_to_entries(one_layer(SQUARE), mopa)
    ]


def test_point_outside_the_galvo_range_is_refused_not_clipped(machine: MachineProfile) -> None:
    with pytest.raises(SafetyLimitError, match=r"\(60.000, 0.000\)"):
        job_to_entries(one_layer(Polyline(((0, 0), (60, 0)))), machine)


def test_long_dwell_is_split_and_decodes_as_one_dot(machine: MachineProfile) -> None:
    entries = job_to_entries(one_layer(Dot(1, 2, 1.5)), machine)
    fires = [e.w1 for e in entries if e.op == ListOp.LASER_ON_POINT]
    assert fires == [MAX_DWELL_TICKS, MAX_DWELL_TICKS, 30000]
    burn = decode_entries(entries, Geometry.from_machine(machine))
    assert len(burn.strokes) == 1 and len(burn.strokes[0]) == 1
    assert burn.settings[0].dwell_s == pytest.approx(1.5)
    assert burn.strokes[0][0] == pytest.approx((1, 2), abs=0.002)


POINT = st.tuples(st.floats(-40, 40, allow_nan=False), st.floats(-40, 40, allow_nan=False))
POLY = st.lists(POINT, min_size=2, max_size=6).filter(
    lambda pts: all(math.dist(pts[i], pts[i + 1]) > 0.01 for i in range(len(pts) - 1))
)


@given(st.lists(POLY, min_size=1, max_size=4), st.integers(1, 3), st.floats(0, 100))
def test_job_entries_decode_back_to_the_strokes(
    polys: list[list[tuple[float, float]]], passes: int, power: float
) -> None:
    machine = load_machine("lmc-fiber-110")
    g = Geometry.from_machine(machine)
    p = dataclasses.replace(params(power_pct=power), passes=passes)
    job = Job((Layer("l", p, tuple(Polyline(tuple(pts)) for pts in polys)),))
    burn = decode_entries(job_to_entries(job, machine), g)
    if power_word(power) == 0:
        assert burn.strokes == []  # zero current: nothing fires
        return
    expected = [pts for _ in range(passes) for pts in polys]
    assert len(burn.strokes) == len(expected)
    q = 0.5 / g.units_per_mm + 1e-9
    for got, want in zip(burn.strokes, expected, strict=True):
        assert len(got) == len(want)
        for (gx, gy), (wx, wy) in zip(got, want, strict=True):
            assert abs(gx - wx) <= q and abs(gy - wy) <= q
    assert all(s.power_pct == pytest.approx(power, abs=0.02) for s in burn.settings)
    assert all(s.frequency_khz == pytest.approx(30.0, rel=1e-3) for s in burn.settings)


def test_decoded_settings_and_duration(machine: MachineProfile) -> None:
    g = Geometry.from_machine(machine)
    burn = decode_entries(job_to_entries(one_layer(SQUARE, speed_mm_s=100.0), machine), g)
    (s,) = burn.settings
    assert s.speed_mm_s == pytest.approx(100.0, rel=0.01)
    assert burn.burned_length_mm() == pytest.approx(40.0, abs=0.01)
    # 40 mm at 100 mm/s, plus corner, jump and end delays: a little over 0.4 s
    assert 0.4 < burn.duration_s < 0.41


def test_decode_without_master_oscillator_burns_nothing(machine: MachineProfile) -> None:
    g = Geometry.from_machine(machine)
    entries = job_to_entries(one_layer(SQUARE, Dot(1, 1, 0.01)), machine)
    assert decode_entries(entries, g, mo_open=False).strokes == []
    opened = [entries[0], Entry(ListOp.FIBER_OPEN_MO, 1), *entries[1:]]
    assert len(decode_entries(opened, g, mo_open=False).strokes) == 2


def test_decode_stops_at_end_of_list(machine: MachineProfile) -> None:
    g = Geometry.from_machine(machine)
    entries = job_to_entries(one_layer(SQUARE), machine)
    cut = [e.op for e in entries].index(ListOp.MARK_TO) + 1  # after the first segment
    burn = decode_entries([*entries[:cut], Entry(ListOp.END_OF_LIST), *entries[cut:]], g)
    assert burn.ended and len(burn.strokes[0]) == 2


# --- frame -------------------------------------------------------------------------------------------


def test_frame_is_jumps_only_around_the_bounding_box(machine: MachineProfile) -> None:
    job = one_layer(Polyline(((-3, -2), (5, 4))), Dot(1, 7, 0.001))
    entries = frame_entries(job, machine, repeats=3)
    allowed = {ListOp.READY_MARK, ListOp.JUMP_SPEED, ListOp.JUMP_DELAY, ListOp.JUMP_TO}
    assert {e.op for e in entries} <= allowed
    g = Geometry.from_machine(machine)
    assert decode_entries(entries, g).strokes == []
    corners = {g.to_mm(e.w1, e.w2) for e in entries if e.op == ListOp.JUMP_TO}
    want = {(-3, -2), (5, -2), (5, 7), (-3, 7)}
    assert len(corners) == 4
    for c in corners:
        assert any(math.dist(c, w) < 0.002 for w in want)
    assert sum(e.op == ListOp.JUMP_TO for e in entries) == 3 * 4 + 1
    assert Entry(ListOp.JUMP_SPEED, speed_word(3000, g)) in entries


def test_frame_refuses_empty_job_and_bad_repeats(machine: MachineProfile) -> None:
    with pytest.raises(JobError, match="nothing to frame"):
        frame_entries(Job(()), machine, 1)
    with pytest.raises(ValueError):
        frame_entries(one_layer(SQUARE), machine, 0)


# --- golden dumps ------------------------------------------------------------------------------------


def golden_text(title: str, job: Job, machine: MachineProfile) -> str:
    entries = job_to_entries(job, machine)
    g = Geometry.from_machine(machine)
    head = (
        f"# {title}: {len(entries)} entries, machine {machine.name}\n# job sha256 {job.sha256()}\n"
    )
    return head + dump_entries(entries, g)


def test_golden_square(golden: Golden, machine: MachineProfile) -> None:
    p = MarkParams(speed_mm_s=15.0, power_pct=100.0, frequency_khz=20.0)
    square = Polyline(((-5, -5), (5, -5), (5, 5), (-5, 5), (-5, -5)))
    job = Job((Layer("square", p, (square,)),))
    text = golden_text("a 10 mm square", job, machine)
    # the settings words MeerK40t's golden square shows for these parameters
    for word in (
        "JumpSpeed            04a7",
        "QSwitchPeriod        03e8",
        "MarkCurrent          0fff",
        "MarkSpeed            0008",
        "LaserOnDelay         0064",
        "PolygonDelay         000a",
    ):
        assert word in text
    golden.check("lmc_square_10mm.txt", text, what="the LMC list", header=2)


def test_golden_secondary_mark(golden: Golden, machine: MachineProfile) -> None:
    from markstation.job import layout as layout_mod
    from markstation.profiles import load_layout, load_material

    job = layout_mod.build_job(
        "PE-SUCAMEC-2016-000123",
        layout=load_layout("secondary-mark"),
        material=load_material("blued-steel"),
        machine=machine,
    )
    text = golden_text("secondary mark PE-SUCAMEC-2016-000123", job, machine)
    golden.check("lmc_secondary_mark.txt", text, what="the LMC list", header=2)
