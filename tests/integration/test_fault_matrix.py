"""The fault matrix: every fault the simulators inject, at every transfer of a two-item batch.

Each run goes through the real runner (``run_batch``, the path of ``batch run --auto``) with the
e-stop watcher polling fast on its own thread, on ``sim://lmc`` (fault at bulk transfer N) and
``sim://grbl`` (fault at G-code line N). Then what the store says is held against what the
simulator's ledger saw burned, item by item:

* ``failed``  only when no burn started for that item;
* ``marked``  only with exactly one burn that ended complete, with every stroke of a clean run;
* anything else that ran: ``interrupted`` (pending: the run stopped before reaching it).

The default run takes a sample (every 7th index, and the first and last); the whole matrix is
``-m exhaustive``. The deterministic form of the watcher race (a reset that lands on a poll made
from another thread) is here too.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from _paths import REPO
from _queue_fakes import sample_rows, write_csv
from markstation.devices.abort import AbortGuard
from markstation.devices.base import Driver, NullListener, RunListener, RunResult
from markstation.devices.registry import open_device
from markstation.devices.sim.faults import Fault
from markstation.devices.sim.grbl.options import FAULT_KINDS as GRBL_FAULTS
from markstation.devices.sim.ledger import read_jobs
from markstation.devices.sim.lmc.options import FAULT_KINDS as LMC_FAULTS
from markstation.errors import DeviceError
from markstation.job.ir import Job
from markstation.profiles import LayoutProfile, MachineProfile, MaterialProfile
from markstation.queue.batch import import_batch
from markstation.queue.models import Actor
from markstation.queue.operator import QuietUI
from markstation.queue.runner import default_builder, run_batch
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State

ACTOR = Actor("fault-matrix", "ci")
ITEMS = 2
#: the watcher polls this often (the runner's default is 50 ms): many polls land inside a run
WATCH_POLL_S = 0.001

#: a few letters of text: few transfers and G-code lines per item, so the matrix stays small
TINY_LAYOUT = """schema = 1
name = "fault-matrix-{protocol}"
description = "fault-matrix test: a few letters"
min_char_height_mm = 1.6

[code]
pattern = '^(?P<country>[A-Z]{2})-(?P<authority>[A-Z]{2,12})-(?P<year>[0-9]{4})-(?P<number>[0-9]{4,8})$'
example = "PE-SUCAMEC-2016-000123"

[safe_area]
x_min = -10.0
y_min = -4.0
x_max = 10.0
y_max = 4.0

[[element]]
kind = "text"
text = "{text}"
x_mm = 0.0
y_mm = -0.9
height_mm = 1.8
align = "center"
"""

#: (url template, machine, fault kinds, layout text); LMC: 3 list packets per item (the list starts
#: after the 2nd and streams on), at 20 x real time so the watcher's polls land mid-list; GRBL: one
#: pass of two letters
PROTOCOLS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "lmc": ("sim://lmc?timing=20&ledger={ledger}", "lmc-fiber-110", LMC_FAULTS, "{country}-{year}"),
    "grbl": (
        "sim://grbl?link=ideal&ledger={ledger}",
        "grbl-fault-matrix",
        GRBL_FAULTS,
        "{country}",
    ),
}
#: sample strides (every Nth index, and the first and last): the default run stays under a minute
STRIDES = {"lmc": 7, "grbl": 11}


class _FastWatchGuard(AbortGuard):
    def __init__(self, driver: Driver, **kwargs: Any) -> None:
        kwargs["poll_s"] = WATCH_POLL_S
        super().__init__(driver, **kwargs)


@dataclass
class Outcome:
    index: int
    states: dict[str, State]
    #: code -> the ledger jobs that started while that item's run() was under way
    burns: dict[str, list[Any]] = field(default_factory=dict)
    #: how far the fault counter got (LMC transfers, GRBL G-code lines)
    reached: int = 0


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "profiles"
    (root / "layouts").mkdir(parents=True)
    for protocol, (*_, text) in PROTOCOLS.items():
        (root / "layouts" / f"fault-matrix-{protocol}.toml").write_text(
            TINY_LAYOUT.replace("{protocol}", protocol).replace("{text}", text)
        )
    (root / "materials").mkdir()
    gantry = (REPO / "profiles" / "materials" / "blued-steel-gantry.toml").read_text()
    gantry = gantry.replace('name = "blued-steel-gantry"', 'name = "fault-matrix-gantry"')
    (root / "materials" / "fault-matrix-gantry.toml").write_text(
        "\n".join("passes = 1" if ln.startswith("passes") else ln for ln in gantry.splitlines())
        + "\n"
    )
    (root / "machines").mkdir()
    grbl = (REPO / "profiles" / "machines" / "grbl-marker.toml").read_text()
    grbl = grbl.replace('name = "grbl-marker"', 'name = "grbl-fault-matrix"')
    grbl = grbl.replace(
        'default_material = "blued-steel-gantry"', 'default_material = "fault-matrix-gantry"'
    )
    # a lost ok is declared after this long Idle with lines unanswered (default 5 s)
    lines = [ln for ln in grbl.splitlines() if not ln.startswith("response_timeout_s ")]
    grbl = "\n".join(lines).replace("[grbl]\n", "[grbl]\nresponse_timeout_s = 0.3\n") + "\n"
    (root / "machines" / "grbl-fault-matrix.toml").write_text(grbl)
    monkeypatch.setenv("MARKSTATION_PROFILES", str(root))
    monkeypatch.setattr("markstation.queue.runner.AbortGuard", _FastWatchGuard)
    return root


def _builder() -> Callable[[str, LayoutProfile, MaterialProfile, MachineProfile], Job]:
    built: dict[tuple[str, str, str, str], Job] = {}

    def build(
        code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
    ) -> Job:
        key = (code, layout.sha256, material.sha256, machine.sha256)
        if key not in built:
            built[key] = default_builder(code, layout, material, machine)
        return built[key]

    return build


class _Matrix:
    """Runs one two-item batch per fault and records what the store and the ledger say."""

    def __init__(self, protocol: str, root: Path) -> None:
        self.protocol = protocol
        self.template, self.machine, self.kinds, _text = PROTOCOLS[protocol]
        self.root = root
        self.build = _builder()
        self.runs = 0

    def run(self, fault: str | None, index: int = 0) -> Outcome:
        self.runs += 1
        where = self.root / f"run-{self.runs}"
        where.mkdir()
        ledger = where / "ledger.jsonl"
        url = self.template.format(ledger=quote(str(ledger), safe="/"))
        if fault is not None:
            url += f"&fault={fault}@{index}"
        outcome = Outcome(index, {})
        counter: list[Callable[[], int]] = []

        def factory() -> Driver:
            driver = open_device(url, self.machine)
            counter.append(functools.partial(_fault_counter, driver))
            original = driver.run

            def run(job: Job, listener: RunListener | None = None) -> RunResult:
                code = str(job.meta_dict().get("mark_code"))
                before = len(read_jobs(ledger))
                try:
                    return original(job, listener)
                finally:
                    outcome.burns[code] = read_jobs(ledger)[before:]
                    outcome.reached = counter[0]()

            driver.run = run  # type: ignore[method-assign]
            return driver

        db = where / "m.db"
        with SqliteStore(db, actor=ACTOR) as store:
            import_batch(
                write_csv(where / "b.csv", sample_rows(ITEMS)),
                store,
                actor=ACTOR,
                default_layout=f"fault-matrix-{self.protocol}",
            )
            # a DeviceError out of run_batch: the device failed at open, nothing was claimed
            with contextlib.suppress(DeviceError):
                run_batch(
                    store,
                    factory,
                    operator=ACTOR.operator,
                    station=ACTOR.station,
                    ui=QuietUI(),
                    auto=True,
                    build=self.build,
                )
            outcome.states = {item.code: item.state for item in store.items()}
        return outcome


def _fault_counter(driver: Driver) -> int:
    """Where the simulator's fault counter stands (LMC bulk transfers, GRBL G-code lines)."""
    sim = getattr(driver, "_backend", None)
    if sim is not None and hasattr(sim, "devices"):
        return int(sim.devices[0].transfers)
    controller = driver.simulator
    return int(controller.gcode_lines) if controller is not None else 0


def _violations(outcome: Outcome, clean: dict[str, int], label: str) -> Iterator[str]:
    for code, state in outcome.states.items():
        burns = outcome.burns.get(code)
        where = f"{label}: {code} {state.value}"
        if burns is None:
            if state is not State.PENDING:
                yield f"{where} but its run never started"
            continue
        if len(burns) > 1:
            yield f"{where}: {len(burns)} ledger jobs for one run"
        if state is State.FAILED and burns:
            yield f"{where} with a burn started (ledger job {burns[0].job})"
        elif state is State.MARKED:
            if len(burns) != 1 or burns[0].complete is not True:
                seen = [(b.job, b.complete) for b in burns]
                yield f"{where} without one complete burn (ledger {seen})"
            elif len(burns[0].polylines) != clean[code]:
                yield (
                    f"{where} with {len(burns[0].polylines)} strokes, a clean run burns "
                    f"{clean[code]}"
                )
        elif state not in (State.FAILED, State.MARKED, State.INTERRUPTED):
            yield f"{where} after its run"


def _matrix(protocol: str, root: Path, kinds: tuple[str, ...], every: int) -> None:
    matrix = _Matrix(protocol, root)
    started = time.monotonic()
    clean_run = matrix.run(None)
    assert all(s is State.MARKED for s in clean_run.states.values()), clean_run.states
    clean = {code: len(burns[0].polylines) for code, burns in clean_run.burns.items()}
    # the watcher adds LMC transfers run to run: go past the clean count
    last = clean_run.reached + (12 if protocol == "lmc" else 2)
    indices = sorted({1, *range(1, last + 1, every), last})
    tally: Counter[tuple[str, str]] = Counter()
    problems: list[str] = []
    for kind in kinds:
        for n in indices:
            outcome = matrix.run(kind, n)
            for state in outcome.states.values():
                tally[(kind, state.value)] += 1
            problems += _violations(outcome, clean, f"{protocol} fault={kind}@{n}")
    summary = ", ".join(f"{k}/{s}={c}" for (k, s), c in sorted(tally.items()))
    took = time.monotonic() - started
    print(f"\n{protocol}: {matrix.runs} runs in {took:.1f} s, indices 1..{last}: {summary}")
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.timeout(300)
def test_fault_matrix_sample(protocol: str, profiles: Path, tmp_path: Path) -> None:
    _matrix(protocol, tmp_path, PROTOCOLS[protocol][2], STRIDES[protocol])


@pytest.mark.exhaustive
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("kind", sorted({*LMC_FAULTS, *GRBL_FAULTS}))
@pytest.mark.timeout(3600)
def test_fault_matrix_exhaustive(protocol: str, kind: str, profiles: Path, tmp_path: Path) -> None:
    if kind not in PROTOCOLS[protocol][2]:
        pytest.skip(f"sim://{protocol} has no fault '{kind}'")
    _matrix(protocol, tmp_path, (kind,), 1)


# --- the watcher race, deterministically -------------------------------------------------------------


class _PollFromAnotherThread(NullListener):
    """Once the list runs, arm a reset for the next transfer and make it on another thread."""

    def __init__(self, driver: Any, guard: AbortGuard) -> None:
        self.driver = driver
        self.guard = guard
        self.done = False

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        runs = self.driver.simulator.runs
        if self.done or not runs or runs[-1].ledger_job is None:
            return  # wait until the list is burning
        self.done = True
        dev = self.driver._backend.devices[0]
        self.driver._backend.fault = Fault("reset", dev.transfers + 1)
        poll = threading.Thread(target=self.guard.poll_once, name="estop-watcher-stand-in")
        poll.start()
        poll.join()


def test_reset_on_the_watchers_poll_is_never_complete(profiles: Path, tmp_path: Path) -> None:
    from markstation.job.ir import Layer, MarkParams, Polyline

    params = MarkParams(speed_mm_s=500.0, power_pct=30.0, frequency_khz=30.0)
    lines = tuple(
        Polyline(tuple((x / 2.0, (-1) ** x * 5.0) for x in range(-40 + i, -20 + i)))
        for i in range(0, 40, 2)
    )
    job = Job(layers=(Layer("zigzag", params, lines),))
    ledger = tmp_path / "ledger.jsonl"
    # timing=20: the list is still running when the poll comes
    url = f"sim://lmc?timing=20&ledger={quote(str(ledger), safe='/')}"
    with open_device(url) as driver:
        guard = AbortGuard(driver, estop=False, sigint=False)
        race = _PollFromAnotherThread(driver, guard)
        with guard, pytest.raises(DeviceError) as raised:
            driver.run(job, guard.listener(race))
    assert race.done, "the poll was never made"
    assert raised.value.may_have_emitted
    assert guard.error is not None and "reset" in str(guard.error)
    jobs = read_jobs(ledger)
    assert jobs and jobs[-1].complete is False


def test_matrix_sample_covers_every_fault_kind() -> None:
    # the simulators' kinds are the matrix's: a new fault kind is in the matrix by construction
    assert set(LMC_FAULTS) == {"timeout", "disconnect", "reset", "interlock"}
    assert {"alarm", "reset", "disconnect", "stall", "lost-ok"} <= set(GRBL_FAULTS)
