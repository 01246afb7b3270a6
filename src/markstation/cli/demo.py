"""``markstation demo``: a whole campaign on the simulated LMC marker, no hardware, in seconds."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from urllib.parse import quote

import click

from markstation.cli.translate import Command
from markstation.errors import ConfigError
from markstation.i18n import _

#: fictional firearms of a private security company (make, model, caliber, factory serial)
_FIREARMS = (
    ("Glock", "17", "9x19mm", "BXK{:03d}"),
    ("CZ", "75 B", "9x19mm", "C{:05d}"),
    ("Taurus", "PT 92", "9x19mm", "TAV{:04d}"),
    ("Smith & Wesson", "M&P9", "9x19mm", "DZL{:04d}"),
    ("Mossberg", "500", "12 GA", "U{:06d}"),
    ("Beretta", "92FS", "9x19mm", "BER{:04d}Z"),
)


def write_sample_batch(path: Path, count: int) -> None:
    """A registry batch of ``count`` fictional firearms with codes PE-SUCAMEC-2026-00xxxx."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["mark_code", "serial", "make", "model", "caliber", "owner", "armoury"])
        for i in range(count):
            make, model, caliber, serial = _FIREARMS[i % len(_FIREARMS)]
            w.writerow(
                [
                    f"PE-SUCAMEC-2026-{101 + i:06d}",
                    serial.format(317 + 41 * i),
                    make,
                    model,
                    caliber,
                    "Seguridad Andina SAC",
                    "Lima central",
                ]
            )


@click.command(cls=Command)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the demo's store, previews, ledger and report (default: a new temp dir).",
)
@click.option(
    "--items",
    type=click.IntRange(min=1, max=200),
    default=8,
    show_default=True,
    help="How many firearms the sample batch holds.",
)
def demo(directory: Path | None, items: int) -> None:
    """Run a sample batch on sim://lmc: import, previews, marking, report, journal check.

    Everything goes into one directory: batch.csv (the sample registry file), markstation.db
    (the store), previews/ (PNG per item + dry-run.csv), ledger.jsonl (what the simulated laser
    burned), station.key / station.pub (a throwaway demo station key, no passphrase), report.csv
    and report.checkpoint (the registry report and its signed checkpoint).
    """
    from markstation.devices import open_device
    from markstation.devices.sim.ledger import read_jobs
    from markstation.queue.batch import import_batch
    from markstation.queue.dry_run import dry_run
    from markstation.queue.export import export_report
    from markstation.queue.journal import verify_store
    from markstation.queue.keys import generate, public_path, write_key
    from markstation.queue.models import Actor
    from markstation.queue.operator import QuietUI
    from markstation.queue.runner import run_batch
    from markstation.queue.sqlite import SqliteStore

    out = (directory or Path(tempfile.mkdtemp(prefix="markstation-demo-"))).resolve()
    db = out / "markstation.db"
    if db.exists():
        raise ConfigError(
            _("{out}: already holds a demo store; give an empty or new --dir").format(out=out)
        )
    out.mkdir(parents=True, exist_ok=True)
    click.echo(_("demo directory: {out}").format(out=out))
    actor = Actor("demo operator", "demo-station")

    # a real station keeps its key in the user's config dir (`station-key init`); the demo signs
    # with a throwaway one so its checkpoints are signed like a station's
    key = generate("markstation/demo-station")
    key_file = out / "station.key"
    write_key(key, key_file, None)

    batch_file = out / "batch.csv"
    write_sample_batch(batch_file, items)
    with SqliteStore(db, actor=actor) as store:
        batch_id, valid = import_batch(batch_file, store, actor=actor)
        click.echo(
            _("1. imported {n_items} firearms from {name} (batch {batch_id})").format(
                n_items=len(valid.items), name=batch_file.name, batch_id=batch_id
            )
        )

        previews = dry_run(store, out / "previews")
        decoded = sum(1 for p in previews if p.decode == "ok")
        total_s = sum(p.estimate_s or 0.0 for p in previews)
        click.echo(
            _(
                "2. dry run: {n_previews} previews, {decoded} Data Matrix decode checks passed, estimated marking time {total_s:.1f} s"
            ).format(n_previews=len(previews), decoded=decoded, total_s=total_s)
        )

        ledger = out / "ledger.jsonl"
        url = f"sim://lmc?timing=instant&ledger={quote(str(ledger), safe='/')}"
        ui = QuietUI()
        summary = run_batch(
            store,
            lambda: open_device(url),
            operator=actor.operator,
            station=actor.station,
            ui=ui,
            auto=True,
            key=key,
        )
        click.echo(
            _(
                "3. marked {n_marked} on {device} (unattended), failed {n_failed}, interrupted {n_interrupted}, {elapsed_s:.1f} s"
            ).format(
                n_marked=len(summary.marked),
                device=url.split("?")[0],
                n_failed=len(summary.failed),
                n_interrupted=len(summary.interrupted),
                elapsed_s=summary.elapsed_s,
            )
        )

        report = out / "report.csv"
        export_report(store, report, fmt="csv", actor=actor, key=key)
        verified, _tree = verify_store(store, key=key.verifier)
        checked = store.check_items_against_journal()
    jobs = read_jobs(ledger)
    complete = sum(1 for j in jobs if j.complete)
    click.echo(
        _("4. report and signed checkpoint written; {verified}; {checked} item rows match").format(
            verified=verified.summary(), checked=checked
        )
    )
    click.echo(
        _("5. simulator ledger: {n_jobs} jobs burned, {complete} complete").format(
            n_jobs=len(jobs), complete=complete
        )
    )
    click.echo("")
    files = [
        (_("registry file"), str(batch_file)),
        (_("store"), str(db)),
        (_("previews"), str(out / "previews")),
        (_("burn ledger"), str(ledger)),
        (
            _("report"),
            _("{report} (+ {checkpoint})").format(
                report=report, checkpoint=report.with_suffix(".checkpoint").name
            ),
        ),
        (
            _("station key"),
            _("{key_file} (public: {public})").format(
                key_file=key_file, public=public_path(key_file).name
            ),
        ),
    ]
    width = max(14, *(len(label) for label, _value in files))
    for label, value in files:
        click.echo(f"  {label:<{width}} {value}")
    click.echo(_("try: markstation batch status --db {db}").format(db=db))
    click.echo(f"     markstation log verify --db {db} --key {public_path(key_file)}")
    if summary.failed or summary.interrupted or complete != len(summary.marked):
        raise ConfigError(_("the demo did not mark every item; see the messages above"))
