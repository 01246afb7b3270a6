"""The hardware-in-the-loop report: what the suite writes (JSON) and the readable summary (Markdown).

The pytest plugin in ``hil_tests/conftest.py`` fills a :class:`HilReport` while the checks run and
writes it with :func:`write_report`; ``markstation hil report FILE.json`` reads it back with
:func:`load_report` and re-renders :func:`render_summary`. The JSON layout (``format`` =
``markstation-hil-report``, ``version`` = 1)::

    {"format": ..., "version": 1, "markstation": "0.1.0", "started": ISO, "finished": ISO,
     "options": {"devices": [URL, ...], "allow_emission": bool, "operator": bool, "repeat": N},
     "rig": {"source": "RIG.md path or 'simulator'", "fields": {"board": ..., ...}},
     "devices": {URL: {"model": ..., "firmware": ..., ...} | {"error": "..."}},
     "checks": [{"device": URL, "check": NAME, "outcome": "passed|failed|skipped",
                 "reason": TEXT, "figures": {NAME: number|text|bool}, "duration_s": S,
                 "markers": ["emission", "operator"]}, ...]}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from markstation.errors import ConfigError

FORMAT = "markstation-hil-report"
VERSION = 1
OUTCOMES = ("passed", "failed", "skipped")

Figure: TypeAlias = float | int | str | bool | None

#: figures worth a line of their own in the summary, with their unit
HEADLINE_FIGURES = {
    "abort_latency_s": "s",
    "mark_time_ratio": "",
    "jobs_run": "",
    "packets_or_lines": "",
}


@dataclass
class CheckRecord:
    """The outcome of one check on one device."""

    device: str
    check: str
    outcome: str
    reason: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)
    duration_s: float = 0.0
    markers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "check": self.check,
            "outcome": self.outcome,
            "reason": self.reason,
            "figures": dict(self.figures),
            "duration_s": round(self.duration_s, 6),
            "markers": list(self.markers),
        }


@dataclass
class HilReport:
    """Everything one run of the suite found out."""

    markstation: str
    started: str
    finished: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    rig: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[CheckRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "markstation": self.markstation,
            "started": self.started,
            "finished": self.finished,
            "options": self.options,
            "rig": self.rig,
            "devices": self.devices,
            "checks": [c.as_dict() for c in self.checks],
        }

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for c in self.checks:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        """True when no check failed (skips do not fail a run)."""
        return all(c.outcome != "failed" for c in self.checks)


# --- reading -------------------------------------------------------------------------------------


def _need(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: missing field '{key}'")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise ConfigError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def report_from_dict(data: Any, source: str = "report") -> HilReport:
    """Validate a decoded JSON document; ConfigError naming ``source`` and the field at fault."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a markstation HIL report (expected a JSON object)")
    if data.get("format") != FORMAT:
        raise ConfigError(
            f"{source}: not a markstation HIL report (field 'format' is not '{FORMAT}')"
        )
    if data.get("version") != VERSION:
        raise ConfigError(
            f"{source}: report version {data.get('version')!r} is not supported (expected {VERSION})"
        )
    report = HilReport(
        markstation=str(_need(data, "markstation", str, source)),
        started=str(_need(data, "started", str, source)),
        finished=str(_need(data, "finished", str, source)),
        options=dict(_need(data, "options", dict, source)),
        rig=dict(_need(data, "rig", dict, source)),
        devices={str(k): dict(v) for k, v in _need(data, "devices", dict, source).items()},
    )
    for i, raw in enumerate(_need(data, "checks", list, source)):
        where = f"{source}: checks[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected an object")
        outcome = _need(raw, "outcome", str, where)
        if outcome not in OUTCOMES:
            raise ConfigError(f"{where}: outcome '{outcome}' is not one of {', '.join(OUTCOMES)}")
        figures = _need(raw, "figures", dict, where)
        for name, value in figures.items():
            if value is not None and not isinstance(value, int | float | str | bool):
                raise ConfigError(f"{where}: figure '{name}' is not a number, text or boolean")
        report.checks.append(
            CheckRecord(
                device=_need(raw, "device", str, where),
                check=_need(raw, "check", str, where),
                outcome=outcome,
                reason=str(raw.get("reason", "")),
                figures=dict(figures),
                duration_s=float(_need(raw, "duration_s", (int, float), where)),
                markers=[str(m) for m in raw.get("markers", [])],
            )
        )
    return report


def load_report(path: str | os.PathLike[str]) -> HilReport:
    """Read a report written by the suite; ConfigError naming the file (and line) when it is not one."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    return report_from_dict(data, str(p))


# --- writing -------------------------------------------------------------------------------------


def summary_path_for(json_path: str | os.PathLike[str]) -> Path:
    """``hil-report.json`` → ``hil-report.md`` beside it."""
    return Path(json_path).with_suffix(".md")


def write_report(
    report: HilReport,
    json_path: str | os.PathLike[str],
    md_path: str | os.PathLike[str] | None = None,
) -> tuple[Path, Path]:
    """Write the JSON and the Markdown summary (default: same name, ``.md``); return both paths."""
    jp = Path(json_path)
    mp = summary_path_for(jp) if md_path is None else Path(md_path)
    jp.parent.mkdir(parents=True, exist_ok=True)
    mp.parent.mkdir(parents=True, exist_ok=True)
    # write-then-rename so a reader never sees half a report
    for path, text in (
        (jp, json.dumps(report.as_dict(), indent=2, sort_keys=False) + "\n"),
        (mp, render_summary(report)),
    ):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return jp, mp


# --- the readable summary ------------------------------------------------------------------------


def format_figure(value: Figure) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(text: str) -> str:
    # keep a Markdown table intact whatever a reason contains
    return re.sub(r"\s+", " ", text.replace("|", "\\|")).strip()


def render_summary(report: HilReport) -> str:
    """The report as Markdown: verdict, rig, devices, then one table per device."""
    counts = report.counts()
    verdict = "PASS" if report.passed else "FAIL"
    lines = [
        f"# Hardware-in-the-loop report — {verdict}",
        "",
        f"- markstation {report.markstation}; run {report.started} → {report.finished or '?'}",
        f"- checks: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped",
    ]
    opts = report.options
    if opts:
        lines.append(
            "- options: devices "
            + ", ".join(f"`{d}`" for d in opts.get("devices", []))
            + f"; allow emission: {format_figure(opts.get('allow_emission'))}"
            + f"; operator: {format_figure(opts.get('operator'))}"
            + f"; repeat: {format_figure(opts.get('repeat'))}"
        )
    lines += ["", "## Rig", ""]
    rig_fields = report.rig.get("fields", {})
    lines.append(f"Source: {report.rig.get('source', 'not recorded')}")
    if rig_fields:
        lines.append("")
        lines += [f"- {k}: {_cell(str(v))}" for k, v in rig_fields.items()]

    for url in _device_order(report):
        lines += ["", f"## `{url}`", ""]
        ident = report.devices.get(url, {})
        if "error" in ident:
            lines.append(f"Could not identify the device: {_cell(str(ident['error']))}")
        elif ident:
            lines.append(
                "Identity: "
                + "; ".join(f"{k}: {_cell(str(v))}" for k, v in ident.items() if k != "url")
            )
        else:
            lines.append("Identity: not read (no check opened the device)")
        checks = [c for c in report.checks if c.device == url]
        headline = [
            (c.check, name, c.figures[name])
            for c in checks
            for name in HEADLINE_FIGURES
            if name in c.figures
        ]
        if headline:
            lines.append("")
            for check, name, value in headline:
                unit = HEADLINE_FIGURES[name]
                lines.append(
                    f"- **{name}** = {format_figure(value)}{' ' + unit if unit else ''} ({check})"
                )
        lines += ["", "| check | outcome | figures | reason |", "|---|---|---|---|"]
        for c in checks:
            figures = ", ".join(f"{k}={format_figure(v)}" for k, v in c.figures.items())
            tags = "".join(f" [{m}]" for m in c.markers)
            lines.append(
                f"| {_cell(c.check)}{tags} | {c.outcome} | {_cell(figures)} | {_cell(c.reason)} |"
            )
    return "\n".join(lines) + "\n"


def _device_order(report: HilReport) -> list[str]:
    order = list(report.options.get("devices", []))
    for c in report.checks:
        if c.device not in order:
            order.append(c.device)
    return [str(u) for u in order]


# --- the rig description -------------------------------------------------------------------------

_RIG_BLOCK = re.compile(r"^```rig[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def parse_rig(text: str, source: str = "RIG.md") -> dict[str, str]:
    """The ``key: value`` lines of the first fenced ``rig`` block of a RIG.md (``#`` comments ignored).

    ConfigError naming ``source`` and the line when the block is missing or a line is not
    ``key: value``.
    """
    match = _RIG_BLOCK.search(text)
    if match is None:
        raise ConfigError(f"{source}: no ```rig block with the bench description")
    first_line = text[: match.start(1)].count("\n") + 1
    fields: dict[str, str] = {}
    for offset, raw in enumerate(match.group(1).splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ConfigError(
                f"{source}:{first_line + offset}: expected 'key: value', got {line!r}"
            )
        # a " # comment" after the value explains the key; it is not part of the value
        fields[key.strip()] = re.sub(r"\s+#.*$", "", value).strip()
    return fields
