"""The markstation hardware-in-the-loop suite as a pytest plugin.

``pytest hil_tests`` runs every contract check against ``sim://lmc`` and ``sim://grbl``;
``--device URL`` (repeatable) replaces them, e.g. ``--device usb://lmc``. Options:

``--allow-emission``  let checks marked ``emission`` fire the laser on real hardware (on a simulator
                      they always run: nothing can burn). Enforced twice: the checks are skipped, and
                      the driver handed to every check refuses emission (markstation.hil.guard).
``--operator``        an engineer is at the bench: checks marked ``operator`` (pedal, interlock, USB
                      unplug) prompt on the terminal (/dev/tty, or MARKSTATION_HIL_TTY). Without it they
                      are skipped on real hardware; on a simulator they drive the simulator instead.
``--hil-repeat N``    jobs in the back-to-back stability check (default 20).
``--hil-machine P``   machine profile (name or .toml) for devices of its protocol.
``--hil-report PATH`` where the JSON report goes (the Markdown summary lands beside it, ``.md``).
                      Default: ``./hil-report.json`` when any real device is tested; for simulator-only
                      runs (CI) pytest's cache directory, so the checkout is not littered.
``--hil-rig PATH``    the bench description recorded in the report (default ``hil_tests/RIG.md``).

Checks get their device through fixtures: ``bench`` (URL, machine, opening with simulator options,
the simulator's burn ledger), ``driver`` (an opened, emission-guarded driver), ``figures`` (record a
measured figure for the report) and ``operator`` (prompts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from markstation import __version__
from markstation.devices.registry import open_device, protocol_of
from markstation.devices.sim.ledger import LedgerJob, read_jobs
from markstation.devices.url import DeviceURL
from markstation.errors import MarkstationError
from markstation.hil.guard import GuardedDriver, is_simulated_url
from markstation.hil.report import CheckRecord, Figure, HilReport, parse_rig, write_report
from markstation.profiles import MachineProfile, default_machine_for, load_machine

DEFAULT_DEVICES = ("sim://lmc", "sim://grbl")
DEFAULT_REPEAT = 20
DEVICE_PROPERTY = "hil.device"
FIGURE_PREFIX = "hil.figure."
HIL_MARKERS = ("emission", "operator")
TTY_ENV = "MARKSTATION_HIL_TTY"


# --- options and markers --------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "markstation hardware-in-the-loop suite")
    group.addoption(
        "--device",
        action="append",
        default=[],
        metavar="URL",
        help="device URL to test (repeatable); default: sim://lmc and sim://grbl",
    )
    group.addoption(
        "--allow-emission",
        action="store_true",
        help="let checks marked 'emission' fire the laser on real hardware",
    )
    group.addoption(
        "--operator",
        action="store_true",
        help="an operator is at the bench: prompt for pedal, interlock and unplug checks",
    )
    group.addoption(
        "--hil-repeat",
        type=int,
        default=DEFAULT_REPEAT,
        metavar="N",
        help=f"jobs in the back-to-back stability check (default {DEFAULT_REPEAT})",
    )
    group.addoption(
        "--hil-machine",
        default=None,
        metavar="PROFILE",
        help="machine profile (name or .toml) for devices of its protocol; default per protocol",
    )
    group.addoption(
        "--hil-report",
        default=None,
        metavar="PATH",
        help="JSON report path (summary beside it as .md); default ./hil-report.json with a real "
        "device, pytest's cache directory for simulator-only runs",
    )
    group.addoption(
        "--hil-rig",
        default=None,
        metavar="PATH",
        help="bench description for the report (default hil_tests/RIG.md)",
    )


@dataclass
class HilSession:
    """What the plugin knows across one pytest run."""

    devices: tuple[str, ...]
    machines: dict[str, MachineProfile]
    allow_emission: bool
    operator: bool
    repeat: int
    report_path: Path
    rig: dict[str, Any]
    started: str
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, CheckRecord] = field(default_factory=dict)

    @property
    def any_real(self) -> bool:
        return any(not is_simulated_url(u) for u in self.devices)


SESSION = pytest.StashKey[HilSession]()


def _usage(message: str) -> pytest.UsageError:
    return pytest.UsageError(f"hil: {message}")


def _machines(devices: tuple[str, ...], machine_opt: str | None) -> dict[str, MachineProfile]:
    chosen = load_machine(machine_opt) if machine_opt else None
    out: dict[str, MachineProfile] = {}
    for url in devices:
        protocol = protocol_of(DeviceURL.parse(url))
        if chosen is not None and chosen.protocol == protocol:
            out[url] = chosen
        else:
            out[url] = default_machine_for(protocol)
    if chosen is not None and chosen not in out.values():
        raise _usage(f"machine '{chosen.name}' ({chosen.protocol}) fits none of the devices given")
    return out


def _rig(config: pytest.Config, devices: tuple[str, ...]) -> dict[str, Any]:
    rig_opt = config.getoption("hil_rig")
    path = Path(rig_opt) if rig_opt else Path(__file__).with_name("RIG.md")
    if not any(not is_simulated_url(u) for u in devices) and not rig_opt:
        return {"source": "simulator (no physical rig)", "fields": {}}
    try:
        fields = parse_rig(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise _usage(f"{path}: cannot read the rig description ({exc.strerror})") from None
    except MarkstationError as exc:
        raise _usage(str(exc)) from None
    return {"source": str(path), "fields": fields}


def _report_path(config: pytest.Config, any_real: bool) -> Path:
    opt = config.getoption("hil_report")
    if opt:
        return Path(opt).resolve()
    if any_real:
        return Path.cwd() / "hil-report.json"
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("hil")) / "hil-report.json"
    import tempfile

    return Path(tempfile.mkdtemp(prefix="markstation-hil-")) / "hil-report.json"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "emission: the check fires the laser; on real hardware only with --allow-emission",
    )
    config.addinivalue_line(
        "markers",
        "operator: the check needs a hand at the bench on real hardware (--operator); "
        "on a simulator it drives the simulator's inputs and faults",
    )
    devices = tuple(config.getoption("device") or DEFAULT_DEVICES)
    try:
        for url in devices:
            protocol_of(DeviceURL.parse(url))
        machines = _machines(devices, config.getoption("hil_machine"))
    except MarkstationError as exc:
        raise _usage(str(exc)) from None
    repeat = int(config.getoption("hil_repeat"))
    if repeat < 1:
        raise _usage(f"--hil-repeat {repeat}: must be at least 1")
    any_real = any(not is_simulated_url(u) for u in devices)
    state = HilSession(
        devices=devices,
        machines=machines,
        allow_emission=bool(config.getoption("allow_emission")),
        operator=bool(config.getoption("operator")),
        repeat=repeat,
        report_path=_report_path(config, any_real),
        rig=_rig(config, devices),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    config.stash[SESSION] = state
    config.pluginmanager.register(ReportWriter(state), "markstation-hil-report")


def _session(config: pytest.Config) -> HilSession:
    return config.stash[SESSION]


# --- one contract suite, parameterised by device URL ----------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_url" in metafunc.fixturenames:
        urls = list(_session(metafunc.config).devices)
        metafunc.parametrize("hil_url", urls, ids=urls)


def emission_skip_reason(url: str, marker_names: set[str], state: HilSession) -> str | None:
    """Why a check must not run on ``url`` with this session's options, or None when it may."""
    if is_simulated_url(url):
        return None
    if "emission" in marker_names and not state.allow_emission:
        return "emission check: real hardware fires only with --allow-emission"
    if "operator" in marker_names and not state.operator:
        return "needs an operator at the bench: pass --operator (prompts on this terminal)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _session(config)
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "hil_url" not in callspec.params:
            continue
        url = str(callspec.params["hil_url"])
        item.user_properties.append((DEVICE_PROPERTY, url))
        names = {m.name for m in item.iter_markers()}
        reason = emission_skip_reason(url, names, state)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


# --- fixtures ------------------------------------------------------------------------------------


class Bench:
    """One device under test: its URL, machine, and how to open it (again) for a check."""

    def __init__(self, url: str, state: HilSession, scratch: Path) -> None:
        self.url = url
        self.machine = state.machines[url]
        self.is_sim = is_simulated_url(url)
        self.allow_emission = state.allow_emission
        self.repeat = state.repeat
        self._state = state
        self._opened: list[GuardedDriver] = []
        parsed = DeviceURL.parse(url)
        self.ledger_path: Path | None = None
        if self.is_sim:
            given = parsed.options.get("ledger")
            self.ledger_path = Path(given) if given else scratch / "ledger.jsonl"

    def url_with(self, **sim_options: str) -> str:
        """The URL to open: for a simulator, with the check's options and a private ledger."""
        if not self.is_sim:
            return self.url
        parsed = DeviceURL.parse(self.url)
        extra = dict(sim_options)
        if "ledger" not in parsed.options and self.ledger_path is not None:
            extra.setdefault("ledger", str(self.ledger_path))
        return parsed.with_params(extra) if extra else self.url

    def open(self, **sim_options: str) -> GuardedDriver:
        """Open the device behind the emission guard (closed at the end of the check).

        ``sim_options`` (``timing``, ``fault``, …) apply to simulators only; on real hardware they
        are ignored, the check then relies on the operator instead.
        """
        driver = open_device(self.url_with(**sim_options), self.machine)
        guarded = GuardedDriver(driver, allow_emission=self.allow_emission)
        try:
            guarded.open()
        except MarkstationError as exc:
            self._state.identities.setdefault(self.url, {"error": str(exc)})
            raise
        self._opened.append(guarded)
        known = self._state.identities.get(self.url)
        if known is None or "error" in known:  # first successful open: record who answered
            try:
                self._state.identities[self.url] = guarded.info().as_dict()
            except MarkstationError as exc:
                self._state.identities[self.url] = {"error": str(exc)}
        return guarded

    def close_all(self) -> None:
        while self._opened:
            self._opened.pop().close()

    def burns(self) -> list[LedgerJob]:
        """Jobs the simulator's ledger recorded (empty on real hardware and before any burn)."""
        if self.ledger_path is None or not self.ledger_path.exists():
            return []
        return read_jobs(self.ledger_path)

    def timing_factor(self, url: str | None = None) -> float:
        """How many times faster than real time the device runs (1 for real hardware)."""
        if not self.is_sim:
            return 1.0
        from markstation.devices.sim.timing import parse_timing

        options = DeviceURL.parse(url or self.url).options
        return parse_timing(options.get("timing", "instant"))


class Figures:
    """Measured figures of one check, carried to the report through pytest's user_properties."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def __call__(self, name: str, value: Figure) -> None:
        if isinstance(value, float):
            value = round(value, 6)
        self._node.user_properties.append((FIGURE_PREFIX + name, value))


class Operator:
    """Prompts for the engineer at the bench, on the controlling terminal (pytest captures stdin)."""

    def __init__(self, enabled: bool, tty_path: str) -> None:
        self.enabled = enabled
        self.tty_path = tty_path

    def ask(self, prompt: str) -> str:
        """Show ``prompt`` and return the typed line; skips the check when nobody can answer."""
        if not self.enabled:
            pytest.skip("needs an operator at the bench: pass --operator")
        try:
            fd = os.open(self.tty_path, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            pytest.skip(f"no terminal for operator prompts ({self.tty_path}: {exc.strerror})")
        try:
            os.write(fd, f"\n[hil] {prompt} ".encode())
            with open(fd, encoding="utf-8", closefd=False) as tty:
                answer = tty.readline()
        finally:
            os.close(fd)
        if not answer:
            pytest.skip(f"operator prompt got end of input on {self.tty_path}")
        return answer.strip()

    def confirm(self, question: str) -> bool:
        return self.ask(f"{question} [y/N]").lower() in ("y", "yes")

    def wait(self, instruction: str) -> None:
        self.ask(f"{instruction} — then press Enter")


@pytest.fixture
def hil_session(request: pytest.FixtureRequest) -> HilSession:
    return _session(request.config)


@pytest.fixture
def bench(hil_url: str, hil_session: HilSession, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(hil_url, hil_session, tmp_path)
    try:
        yield b
    finally:
        b.close_all()


@pytest.fixture
def driver(bench: Bench) -> GuardedDriver:
    """The device under test, opened with its URL as given, behind the emission guard."""
    return bench.open()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    node = request.node
    assert isinstance(node, pytest.Item)
    return Figures(node)


@pytest.fixture
def operator(hil_session: HilSession) -> Operator:
    return Operator(hil_session.operator, os.environ.get(TTY_ENV, "/dev/tty"))


# --- the report ------------------------------------------------------------------------------------


def _check_name(nodeid: str) -> str:
    name = nodeid.split("::")[-1].split("[")[0]
    return name.removeprefix("test_")


def _figure(value: object) -> Figure:
    """A figure as the JSON report can hold it: numbers, text and booleans as they are."""
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return str(value)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", "") or longrepr or "")
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text[:400]


class ReportWriter:
    """Collects every check's outcome and figures, writes the report at the end of the run."""

    def __init__(self, state: HilSession) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        url = props.get(DEVICE_PROPERTY)
        if url is None:
            return
        rec = self.state.records.get(report.nodeid)
        if rec is None:
            rec = CheckRecord(device=str(url), check=_check_name(report.nodeid), outcome="passed")
            rec.markers = [m for m in HIL_MARKERS if m in report.keywords]
            self.state.records[report.nodeid] = rec
        rec.duration_s += report.duration
        rec.figures.update(
            {
                k.removeprefix(FIGURE_PREFIX): _figure(v)
                for k, v in props.items()
                if k.startswith(FIGURE_PREFIX)
            }
        )
        if rec.outcome == "failed":
            return  # the first failure is the one worth reading
        if report.failed:
            prefix = "" if report.when == "call" else f"error in {report.when}: "
            rec.outcome, rec.reason = "failed", prefix + _reason(report)
        elif report.skipped:
            rec.outcome, rec.reason = "skipped", _reason(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes it
            return
        if self.state.records:
            write_report(build_report(self.state), self.state.report_path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.state.records:
            return
        from markstation.hil.report import HEADLINE_FIGURES, format_figure, summary_path_for

        tr = terminalreporter
        tr.section("markstation hardware-in-the-loop")
        for rec in self.state.records.values():
            for name, unit in HEADLINE_FIGURES.items():
                if name in rec.figures:
                    value = format_figure(rec.figures[name]) + (f" {unit}" if unit else "")
                    tr.write_line(f"{rec.device} {rec.check}: {name} = {value}")
        summary = summary_path_for(self.state.report_path)
        tr.write_line(f"report: {self.state.report_path} (summary {summary})")


def build_report(state: HilSession) -> HilReport:
    return HilReport(
        markstation=__version__,
        started=state.started,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        options={
            "devices": list(state.devices),
            "allow_emission": state.allow_emission,
            "operator": state.operator,
            "repeat": state.repeat,
        },
        rig=state.rig,
        devices={u: state.identities[u] for u in state.devices if u in state.identities},
        checks=list(state.records.values()),
    )
