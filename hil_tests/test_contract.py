"""The driver contract: every marker, simulated or real, must pass these checks.

Each check runs once per device URL (``--device``, default ``sim://lmc`` and ``sim://grbl``). On a
simulator the checks also read what it burned (its ledger) and drive its inputs and faults; on real
hardware they rely on the driver's own reports and, for checks marked ``operator``, on the engineer
at the bench. Emission-free checks stream *held-off* jobs (every layer at 0 % power) on real
hardware; on a simulator they may use real power so the ledger proves what was (not) burned.
Timing figures are measured and reported, never asserted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from markstation.devices.base import DeviceState, RunResult
from markstation.errors import (
    Aborted,
    DeviceAlarm,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    InterlockOpen,
    SafetyLimitError,
)
from markstation.hil.guard import GuardedDriver
from markstation.hil.jobs import (
    MIN_MARK_POWER_PCT,
    grid_axes,
    is_held_off,
    layout_job,
    material_grid,
    square_job,
    stream_job,
    timed_job,
)
from markstation.job.ir import Job, Layer, Polyline

pytestmark = pytest.mark.timeout(90)

#: how far a simulated burn may sit from the job's own points (galvo / G-code quantisation)
BURN_TOLERANCE_MM = 0.01
#: how much faster than real time a simulator runs when a check needs its timing
SPEED_UP = 20
#: the GRBL simulator's speed-up for the mark-time check (over an ideal link, see the check)
GRBL_SPEED_UP = 5
#: the layout of the mark-time check: the real job, and how close the estimate must be
MARK_TIME_LAYOUT = "secondary-mark"
MARK_TIME_TOLERANCE = 0.05


# --- helpers --------------------------------------------------------------------------------------


@dataclass
class RecordingListener:
    """Remembers what the driver reported while a job ran."""

    started: int = 0
    emission_possible: int = 0
    fractions: list[float] = field(default_factory=list)
    finished: list[RunResult] = field(default_factory=list)
    first_progress: threading.Event = field(default_factory=threading.Event)

    def on_started(self, job: Job) -> None:
        self.started += 1

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        self.fractions.append(fraction)
        self.first_progress.set()

    def on_emission_possible(self) -> None:
        self.emission_possible += 1

    def on_finished(self, result: RunResult) -> None:
        self.finished.append(result)


def probe_power(bench: Any) -> float:
    """Power for checks that do not need to mark: real power on a simulator (the ledger then proves
    what happened), 0 % (held off) on real hardware."""
    return MIN_MARK_POWER_PCT if bench.is_sim else 0.0


def strokes_match(
    burned: list[list[tuple[float, float]]], job: Job, tol: float = BURN_TOLERANCE_MM
) -> bool:
    """True when the burn holds exactly the job's strokes (either direction), point by point."""
    wanted = [prim.points for _, prim in job.primitives()]
    if len(burned) != len(wanted):
        return False
    for got, want in zip(burned, wanted, strict=True):
        if len(got) != len(want):
            return False
        forward = all(math.dist(g, w) <= tol for g, w in zip(got, want, strict=True))
        backward = all(math.dist(g, w) <= tol for g, w in zip(got, want[::-1], strict=True))
        if not (forward or backward):
            return False
    return True


def burned_length(strokes: list[list[tuple[float, float]]]) -> float:
    return sum(math.dist(s[i], s[i + 1]) for s in strokes for i in range(len(s) - 1))


def press_pedal(sim: Any, pressed: bool) -> None:
    """Drive the simulated pedal input (skip when the simulator models none)."""
    if not hasattr(sim, "press_pedal"):
        pytest.skip(f"the simulator ({type(sim).__name__}) models no pedal input to press")
    sim.press_pedal(pressed)


def set_interlock(sim: Any, *, open_: bool) -> None:
    """Drive the simulated interlock input."""
    if hasattr(sim, "set_interlock"):
        sim.set_interlock(open=open_)
        return
    # the simulated GRBL: its safety-door input acts like the 0x84 realtime byte, and after the
    # door closes a cycle start (~) clears the door state, as on the real controller
    sim.feed(b"\x84" if open_ else b"~")
    sim.wait_idle(2.0)


def has_interlock(machine: Any) -> bool:
    """Whether the machine profile wires an interlock (GRBL always has its safety-door input)."""
    if machine.protocol == "lmc":
        return machine.lmc.interlock_bit >= 0
    return True


@contextmanager
def run_in_thread(
    driver: GuardedDriver, job: Job, listener: RecordingListener
) -> Iterator[dict[str, Any]]:
    """Run ``job`` on a helper thread; the dict gets ``result`` or ``error`` and ``ended_at``."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = driver.run(job, listener)
        except BaseException as exc:  # handed to the check, which asserts on it
            box["error"] = exc
        finally:
            box["ended_at"] = time.perf_counter()

    thread = threading.Thread(target=work, name="hil-run", daemon=True)
    thread.start()
    try:
        yield box
    finally:
        thread.join(timeout=60)
        box["hung"] = thread.is_alive()
        if thread.is_alive():
            driver.abort()
            thread.join(timeout=10)


# --- identity -------------------------------------------------------------------------------------


def test_identity_and_firmware(driver: GuardedDriver, bench: Any, figures: Any) -> None:
    info = driver.info()
    figures("model", info.model)
    figures("firmware", info.firmware)
    figures("serial", info.serial)
    assert info.protocol == bench.machine.protocol
    assert info.model.strip(), "the device reported no model"
    assert info.firmware.strip(), "the device reported no firmware version"
    assert info.simulated is bench.is_sim, "a simulator must say so, real hardware must not"
    # identity goes into the journal with every mark: it must not change between reads
    assert driver.info() == info


# --- input ports ----------------------------------------------------------------------------------


@pytest.mark.operator
def test_pedal_input(driver: GuardedDriver, bench: Any, operator: Any, figures: Any) -> None:
    if not bench.is_sim:
        operator.wait("Keep your foot OFF the pedal")
    idle = driver.read_inputs()
    assert not idle.pedal_pressed, "pedal reads pressed while nobody presses it"
    if bench.is_sim:
        press_pedal(driver.simulator, True)
    else:
        operator.wait("Press and HOLD the foot pedal")
    pressed = driver.read_inputs()
    if bench.is_sim:
        press_pedal(driver.simulator, False)
    else:
        operator.wait("Release the pedal")
    released = driver.read_inputs()
    figures("raw_idle", f"0x{idle.raw:04x}")
    figures("raw_pressed", f"0x{pressed.raw:04x}")
    assert pressed.pedal_pressed, "pedal press not seen on the input port"
    assert not released.pedal_pressed, "pedal still reads pressed after release"


@pytest.mark.operator
def test_interlock_input(driver: GuardedDriver, bench: Any, operator: Any, figures: Any) -> None:
    if not has_interlock(bench.machine):
        pytest.skip(f"machine '{bench.machine.name}' has no interlock input wired")
    closed = driver.read_inputs()
    # a driver that cannot see a closed interlock (GRBL: no Pn:D) reports None, never False
    assert closed.interlock_closed is not False, "interlock reads open with the enclosure closed"
    if bench.is_sim:
        set_interlock(driver.simulator, open_=True)
    else:
        operator.wait("OPEN the enclosure door (interlock) and keep it open")
    opened = driver.read_inputs()
    figures("raw_closed", f"0x{closed.raw:04x}")
    figures("raw_open", f"0x{opened.raw:04x}")
    figures("closed_reads", str(closed.interlock_closed))
    assert opened.interlock_closed is False, "interlock opening not seen on the input port"
    burns_before = len(bench.burns())
    with pytest.raises(InterlockOpen) as refused:
        driver.run(square_job(bench.machine, power_pct=probe_power(bench)))
    assert refused.value.may_have_emitted is False, "refused before sending, yet may have emitted"
    assert len(bench.burns()) == burns_before, "the simulator fired with the interlock open"
    if bench.is_sim:
        set_interlock(driver.simulator, open_=False)
    else:
        operator.wait("CLOSE the enclosure door")
    assert driver.read_inputs().interlock_closed is not False, "interlock still reads open"
    assert driver.run(square_job(bench.machine, power_pct=0.0)).complete


# --- red pointer ----------------------------------------------------------------------------------


def test_red_pointer_framing(
    driver: GuardedDriver, bench: Any, operator: Any, figures: Any
) -> None:
    # on a simulator frame a job that WOULD burn, so an empty ledger proves the beam stayed off
    job = square_job(bench.machine, power_pct=probe_power(bench))
    calls = 0
    deadline = time.monotonic() + 20

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3 or time.monotonic() > deadline

    burns_before = len(bench.burns())
    t0 = time.perf_counter()
    traces = driver.frame(job, stop)
    figures("traces", traces)
    figures("frame_s", time.perf_counter() - t0)
    assert traces >= 1, "frame() returned without tracing the outline once"
    assert driver.state() is DeviceState.IDLE
    assert len(bench.burns()) == burns_before, "framing recorded a burn: the beam fired"
    if not bench.is_sim and operator.enabled:
        assert operator.confirm("Did the red pointer trace a 10 mm square at the field centre?")


# --- streaming with the laser held off ------------------------------------------------------------


def test_held_off_stream(driver: GuardedDriver, bench: Any, figures: Any) -> None:
    job = stream_job(bench.machine)
    assert is_held_off(job)
    wire = wire_size(driver.machine, job)
    for name, value in wire.items():
        figures(name, value)
    listener = RecordingListener()
    burns_before = len(bench.burns())
    counters_before = sim_counters(driver)
    result = driver.run(job, listener)
    figures("elapsed_s", result.elapsed_s)
    figures("strokes", job.primitive_count())
    assert result.complete, "the device did not report the job complete"
    assert driver.state() is DeviceState.IDLE
    assert listener.started == 1 and len(listener.finished) == 1
    # a held-off job cannot fire: a driver may or may not announce possible emission, once at most
    assert listener.emission_possible <= 1, "on_emission_possible announced more than once"
    assert all(0.0 <= f <= 1.0 for f in listener.fractions)
    assert listener.fractions == sorted(listener.fractions), "progress went backwards"
    burned = [j for j in bench.burns()[burns_before:] if j.polylines]
    assert not burned, "a held-off job (0 % power) burned on the simulator"
    if bench.is_sim:
        # the simulator saw the whole stream arrive, and flow control held throughout
        counters = sim_counters(driver)
        delta = {k: counters[k] - counters_before[k] for k in counters}
        figures("handshake_violations", delta["violations"])
        assert delta["violations"] == 0, f"flow control broken: {driver.simulator.violations}"
        assert delta["received"] >= wire["packets_or_lines"], "part of the job never arrived"


def wire_size(machine: Any, job: Job) -> dict[str, int]:
    """How much goes over the wire: list packets (LMC) or G-code lines (GRBL)."""
    if machine.protocol == "lmc":
        from markstation.devices.lmc import codec

        entries = codec.job_to_entries(job, machine)
        return {"list_entries": len(entries), "packets_or_lines": len(codec.pack_list(entries))}
    if machine.protocol == "grbl":
        from markstation.devices.grbl import codec as gcodec

        program = gcodec.encode_job(job, gcodec.Geometry.from_machine(machine))
        return {
            "packets_or_lines": len(program.lines),
            "gcode_bytes": sum(len(line) + 1 for line in program.lines),
        }
    return {"packets_or_lines": 0}


def sim_counters(driver: GuardedDriver) -> dict[str, int]:
    """What the simulator counted: transfers received and flow-control violations.

    LMC: list packets received, packets sent while the board was not READY. GRBL: lines received,
    bytes lost to a receive-buffer overrun.
    """
    sim = driver.simulator
    if sim is None:
        return {"received": 0, "violations": 0}
    if driver.machine.protocol == "lmc":
        return {"received": sim.packets_received, "violations": len(sim.violations)}
    return {"received": sim.lines_received, "violations": sim.overflow_bytes}


# --- abort ----------------------------------------------------------------------------------------


def test_abort_when_idle(driver: GuardedDriver, bench: Any) -> None:
    driver.abort()
    assert driver.state() is DeviceState.IDLE
    driver.info()
    assert driver.run(square_job(bench.machine, power_pct=0.0)).complete


# --- recovery after a USB unplug ------------------------------------------------------------------


@pytest.mark.operator
def test_recovery_after_unplug(bench: Any, operator: Any, figures: Any) -> None:
    listener = RecordingListener()
    error: object
    if bench.is_sim:
        job = stream_job(bench.machine, power_pct=probe_power(bench))
        error, at = disconnect_simulated(bench, job, listener)
        figures("fault_at", at)
    else:
        driver = bench.open()
        job = timed_job(bench.machine, seconds=60.0, power_pct=0.0)
        with run_in_thread(driver, job, listener) as box:
            assert listener.first_progress.wait(20), "the job never started"
            operator.wait("UNPLUG the marker's USB cable now")
        error = box.get("error")
        driver.close()
        operator.wait("Plug the cable back in and wait until the board is powered")
    figures("error", type(error).__name__)
    assert isinstance(error, DeviceDisconnected | DeviceTimeout), f"unplug surfaced as {error!r}"
    figures("may_have_emitted", error.may_have_emitted)
    if listener.emission_possible and not is_held_off(job):
        assert error.may_have_emitted, "cut after emission became possible, yet 'nothing fired'"
    # a fresh open finds the device again and it works
    again = bench.open()
    again.info()
    assert again.run(square_job(bench.machine, power_pct=0.0)).complete
    figures("recovered", True)


def disconnect_simulated(
    bench: Any, job: Job, listener: RecordingListener
) -> tuple[DeviceError, int]:
    """Inject ``fault=disconnect@N`` at the first N (doubling) that cuts ``job`` after emission
    became possible, so the cut lands mid-stream rather than in the open sequence or the header."""
    at = 8
    while at < 100_000:
        try:
            driver = bench.open(fault=f"disconnect@{at}")
        except DeviceDisconnected:
            at *= 2  # the fault hit while opening: move it later
            continue
        listener.emission_possible = 0
        try:
            driver.run(job, listener)
        except DeviceError as exc:
            driver.close()
            if listener.emission_possible == 0:
                at *= 2  # cut before the first line/packet that could fire: move it later
                continue
            return exc, at
        driver.close()
        pytest.fail(f"fault=disconnect@{at} never fired during the job")
    pytest.fail("could not place a disconnect mid-stream")


# --- stability ------------------------------------------------------------------------------------


def test_back_to_back(driver: GuardedDriver, bench: Any, figures: Any) -> None:
    job = square_job(bench.machine, power_pct=probe_power(bench))
    burns_before = len(bench.burns())
    t0 = time.perf_counter()
    ran = 0
    for _ in range(bench.repeat):
        assert driver.run(job).complete, f"job {ran + 1} of {bench.repeat} did not complete"
        ran += 1
    total = time.perf_counter() - t0
    figures("jobs_run", ran)
    figures("total_s", total)
    figures("mean_job_s", total / ran)
    assert driver.state() is DeviceState.IDLE
    if bench.is_sim:
        new = bench.burns()[burns_before:]
        assert len(new) == ran, f"{ran} jobs run, the simulator recorded {len(new)}"
        assert all(j.complete for j in new)
        assert all(strokes_match(j.polylines, job) for j in new), "a burn differs from the job"


# --- mark time ------------------------------------------------------------------------------------


def test_mark_time_estimate(bench: Any, figures: Any) -> None:
    """The device estimate (``device_estimate``, what preview, mark, the queue and the station
    show) against the device's own time, on the real secondary mark held off at 0 %."""
    from markstation.devices.estimate import device_estimate
    from markstation.job.estimate import estimate_seconds

    job = layout_job(bench.machine, layout=MARK_TIME_LAYOUT)
    if bench.machine.protocol == "grbl" and bench.is_sim:
        # GRBL reports no mark time: on the simulator, time the run sped up F times (motion and
        # dwells) and scale back. The modelled USB-serial link is not sped up, so at F = 5 it would
        # starve the planner (ratio 0.91) although at F = 1 it has headroom (F = 2 still gives
        # 1.000): an ideal link at F = 5 measures the motion a real-time run makes, in ~23 s.
        driver = bench.open(timing=str(GRBL_SPEED_UP), link="ideal")
    else:
        driver = bench.open()
    # from where a batch leaves the head (the field centre), as the estimate assumes
    assert driver.run(square_job(bench.machine, power_pct=0.0)).complete
    estimated = device_estimate(job, bench.machine, settings=driver.estimate_settings).seconds
    result = driver.run(job)
    assert result.complete
    if result.device_mark_time_s is not None:
        device_s, source = result.device_mark_time_s, "device"
    elif bench.is_sim:
        device_s, source = result.elapsed_s * bench.timing_factor(driver.url), "wall clock × F"
    else:
        device_s, source = result.elapsed_s, "wall clock"
    figures("layout", MARK_TIME_LAYOUT)
    figures("estimate_s", estimated)
    figures("quick_estimate_s", estimate_seconds(job))
    figures("device_s", device_s)
    figures("device_time_source", source)
    assert device_s > 0 and math.isfinite(device_s), "the device reported no mark time"
    ratio = estimated / device_s
    figures("mark_time_ratio", ratio)
    assert abs(ratio - 1.0) <= MARK_TIME_TOLERANCE, (
        f"estimate {estimated:.3f} s vs device {device_s:.3f} s ({source}): ratio {ratio:.3f}"
    )


# --- limits ---------------------------------------------------------------------------------------


def test_limits_refused_before_sending(driver: GuardedDriver, bench: Any) -> None:
    fld = bench.machine.field
    outside = Polyline(((0.0, 0.0), (fld.x_max + 1.0, 0.0)))
    good = square_job(bench.machine, power_pct=0.0)
    job = good.with_layers([Layer("outside", good.layers[0].params, (outside,))])
    burns_before = len(bench.burns())
    with pytest.raises(SafetyLimitError) as refused:
        driver.run(job)
    assert refused.value.may_have_emitted is False
    assert len(bench.burns()) == burns_before
    assert driver.run(good).complete, "the device is unusable after a refused job"


# --- with emission --------------------------------------------------------------------------------


@pytest.mark.emission
def test_minimal_power_mark(driver: GuardedDriver, bench: Any, operator: Any, figures: Any) -> None:
    job = square_job(bench.machine, power_pct=MIN_MARK_POWER_PCT)
    burns_before = len(bench.burns())
    listener = RecordingListener()
    result = driver.run(job, listener)
    figures("power_pct", MIN_MARK_POWER_PCT)
    figures("elapsed_s", result.elapsed_s)
    assert result.complete
    assert listener.emission_possible == 1, "on_emission_possible must come once, before firing"
    if bench.is_sim:
        new = bench.burns()[burns_before:]
        assert len(new) == 1 and new[0].complete
        assert strokes_match(new[0].polylines, job), "the burn is not the 10 mm square"
    elif operator.enabled:
        assert operator.confirm("Is a faint 10 mm square marked at the field centre?")


@pytest.mark.emission
def test_material_grid(driver: GuardedDriver, bench: Any, figures: Any) -> None:
    powers, speeds = grid_axes(bench.machine)
    job = material_grid(bench.machine, powers_pct=powers, speeds_mm_s=speeds)
    burns_before = len(bench.burns())
    result = driver.run(job)
    figures("cells", len(powers) * len(speeds))
    figures("powers_pct", ",".join(f"{p:g}" for p in powers))
    figures("speeds_mm_s", ",".join(f"{s:g}" for s in speeds))
    figures("elapsed_s", result.elapsed_s)
    assert result.complete
    if bench.is_sim:
        new = bench.burns()[burns_before:]
        assert len(new) == 1 and new[0].complete
        length = burned_length(new[0].polylines)
        figures("burned_mm", length)
        assert length == pytest.approx(job.marked_length(), rel=0.01)


# --- abort latency (last: it may leave a real controller locked) -------------------------------


def test_abort_latency(bench: Any, operator: Any, figures: Any) -> None:
    """Runs last in this file: on real GRBL an abort may leave the controller locked."""
    # a simulator sped up F times: the job outlasts the abort, travel stays short in wall time
    driver = bench.open(timing=str(SPEED_UP))
    job = timed_job(bench.machine, seconds=6.0 * SPEED_UP, power_pct=probe_power(bench))
    listener = RecordingListener()
    burns_before = len(bench.burns())
    with run_in_thread(driver, job, listener) as box:
        assert listener.first_progress.wait(20), "the job never reported progress"
        if bench.is_sim:  # abort mid-burn: wait until the simulator has started burning
            deadline = time.monotonic() + 20
            while len(bench.burns()) == burns_before and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(0.2)  # let it get well into the job
        assert "ended_at" not in box, "the job finished before it could be aborted"
        t0 = time.perf_counter()
        driver.abort()
        abort_call_s = time.perf_counter() - t0
    assert not box["hung"], "run() did not return after abort()"
    latency = box["ended_at"] - t0
    figures("abort_latency_s", latency)
    figures("device_speed_up", bench.timing_factor(driver.url))  # 1 = real time
    figures("abort_call_s", abort_call_s)
    assert isinstance(box.get("error"), Aborted), f"expected Aborted, got {box!r}"
    assert driver.state() is not DeviceState.RUNNING
    emitting = getattr(driver.simulator, "emitting", None)  # simulators that expose it
    assert emitting is not True, "the simulator still emits after abort"
    # the device is stopped: it answers, and (once unlocked, where the protocol locks itself after
    # an abort) runs the next job to completion
    driver.info()
    follow_up = square_job(bench.machine, size_mm=1.0, power_pct=0.0)
    try:
        result = driver.run(follow_up)
    except DeviceAlarm as alarm:
        # GRBL: a reset during motion leaves the controller in alarm (position may be lost)
        assert alarm.may_have_emitted is False, "a locked controller was sent a job"
        figures("locked_after_abort", True)
        if not bench.is_sim:
            if not operator.enabled:
                return  # left locked for the operator to inspect; this check runs last
            operator.wait("The controller locked itself after the abort: check the machine")
        driver.unlock()
        result = driver.run(follow_up)
    assert result.complete
    if bench.is_sim:
        # the abort landed mid-burn: the job is on record as incomplete, with part of its strokes
        new = bench.burns()[burns_before:]
        assert new, "the simulator recorded no start for the aborted job"
        assert new[0].complete is False, "the aborted job is recorded as complete"
        burned = burned_length(new[0].polylines)
        figures("burned_before_abort_mm", burned)
        assert burned < job.marked_length() * 0.9
