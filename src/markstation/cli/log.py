"""``markstation log …``: verify the hash-chained journal, export the registry report, show records."""

from __future__ import annotations

import json
from pathlib import Path

import click

from markstation.cli.batch import make_actor, open_store
from markstation.cli.options import actor_options, db_option


@click.group()
def log() -> None:
    """Verify and export the tamper-evident journal.

    Every state change, import, resolution and export is a journal record that carries the hash
    of the record before it. Keep the chain head printed by 'log verify' and written at the end of
    every export outside this station: with it, even a truncated journal is detected.
    """


@log.command("verify")
@db_option
def verify_cmd(db: Path | None) -> None:
    """Check the whole hash chain; name the first edited, removed or reordered record (exit 1)."""
    from markstation.queue.journal import verify

    with open_store(db, make_actor(None, None)) as store:
        head = verify(store.records())
    click.echo(f"journal ok: {head.records} records, chain head {head.hash}")


@log.command("export")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV (one row per item) or JSON Lines (one object per item).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Report file to write.",
)
@actor_options
def export_cmd(
    db: Path | None, fmt: str, output: Path, operator: str | None, station: str | None
) -> None:
    """Write every item's final state with its journal evidence, ending with the chain head.

    The journal is verified first; a broken chain refuses the export (exit 1).
    """
    from markstation.queue.export import export_report
    from markstation.queue.journal import verify

    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        verify(store.records())
        head = export_report(store, output, fmt="csv" if fmt == "csv" else "jsonl", actor=actor)
    click.echo(f"wrote {output} ({fmt}); chain head: {head.records} records, {head.hash}")


@log.command("show")
@db_option
@click.option("--tail", type=click.IntRange(min=1), default=20, show_default=True, help="Last N.")
@click.option("--code", default=None, help="Only records about this mark code.")
def show_cmd(db: Path | None, tail: int, code: str | None) -> None:
    """Print journal records (seq, time, type, operator, payload), newest last."""
    with open_store(db, make_actor(None, None)) as store:
        records = [r for r in store.records() if code is None or r.payload.get("code") == code]
    for rec in records[-tail:]:
        body = json.dumps(rec.payload, ensure_ascii=False, sort_keys=True)
        click.echo(f"{rec.seq:6} {rec.time} {rec.type:15} {rec.operator}@{rec.station} {body}")
