"""The dry run: what a batch run would mark, without a device and without changing any state.

Per runnable item: the job as the runner would build it, a PNG preview, the time estimate and a
decode check of its 2D code, plus ``dry-run.csv`` listing them all, so a technician can check a
whole batch on a laptop before the station touches a firearm.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from markstation.errors import ConfigError, JobError
from markstation.i18n import _
from markstation.job.layout import build_job
from markstation.profiles import (
    DEFAULT_MACHINE,
    LayoutProfile,
    MachineProfile,
    MaterialProfile,
    load_layout,
    load_machine,
    load_material,
)
from markstation.queue.runner import Estimator, JobBuilder, machine_estimator
from markstation.queue.states import RUNNABLE
from markstation.queue.store import Store


@dataclass(frozen=True)
class DryRunItem:
    code: str
    serial: str
    preview: Path | None
    estimate_s: float | None
    decode: str  # "ok", "no 2D code", or the problem
    error: str | None = None
    #: the verification grade of each 2D code ("A (4.0)"; "; " between codes), "" if none
    grade: str = ""


def _safe_name(code: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in code)


def dry_run(
    store: Store,
    out_dir: str | Path,
    *,
    machine: str | MachineProfile | None = None,
    material: str | MaterialProfile | None = None,
    limit: int | None = None,
    build: JobBuilder | None = None,
    estimator: Estimator | None = None,
    progress: Callable[[DryRunItem], None] | None = None,
) -> list[DryRunItem]:
    """A PNG preview, time estimate and decode check of every runnable item; no device, no state change.

    Writes ``<code>.png`` per item and ``dry-run.csv`` listing all of them into ``out_dir``.
    """
    from markstation.preview import CodeCheck, render_png, verify_codes
    from markstation.verify import verify_job

    mach = (
        machine
        if isinstance(machine, MachineProfile)
        else load_machine(machine or DEFAULT_MACHINE["lmc"])
    )
    mat = (
        material if isinstance(material, MaterialProfile) else load_material(material, machine=mach)
    )
    est = estimator or machine_estimator(mach)  # the device's own timing model, no device
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot create the dry-run directory ({error})").format(
                path=out, error=exc.strerror
            )
        ) from exc
    layouts: dict[str, LayoutProfile] = {}
    items = store.items(RUNNABLE)
    if limit is not None:
        items = items[:limit]
    results: list[DryRunItem] = []
    for item in items:
        checks: list[CodeCheck] = []
        try:
            layout = layouts.get(item.layout) or load_layout(item.layout)
            layouts[item.layout] = layout
            if build is None:  # the runner's own gate (build_verified_job), keeping its checks
                job = build_job(item.code, layout=layout, material=mat, machine=mach)
                checks = verify_job(job, layout=layout, machine=mach)
            else:
                job = build(item.code, layout, mat, mach)
        except (JobError, ConfigError) as exc:
            entry = DryRunItem(item.code, item.serial, None, None, "not built", str(exc))
        else:
            decode = "ok" if job.codes else "no 2D code"
            if build is not None:  # a custom builder: decode here what the gate would
                try:
                    checks = verify_codes(job, mach)
                except JobError as exc:
                    decode = str(exc)
            png = out / f"{_safe_name(item.code)}.png"
            seconds = est(job)
            # the picture says what the CSV says: the same estimate, decode and grade
            render_png(job, mach, png, layout=layout, checks=checks, estimate_s=seconds)
            grade = "; ".join(c.grade.short() for c in checks if c.grade is not None)
            entry = DryRunItem(item.code, item.serial, png, seconds, decode, grade=grade)
        results.append(entry)
        if progress:
            progress(entry)
    from markstation.queue.export import csv_cell

    with (out / "dry-run.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["mark_code", "serial", "preview", "estimate_s", "decode", "grade", "error"])
        for r in results:
            w.writerow(
                csv_cell(cell)  # the serial came from a registry file: no live formulas
                for cell in [
                    r.code,
                    r.serial,
                    r.preview.name if r.preview else "",
                    f"{r.estimate_s:.3f}" if r.estimate_s is not None else "",
                    r.decode,
                    r.grade,
                    r.error or "",
                ]
            )
    return results
