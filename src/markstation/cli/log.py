"""``markstation log …``: verify the Merkle journal and its checkpoints, sign a checkpoint, prove
an item's records, export the registry report, show records."""

from __future__ import annotations

import json
from pathlib import Path

import click

from markstation.cli.batch import make_actor, open_store
from markstation.cli.options import actor_options, db_option, output_option
from markstation.cli.station_key import key_file_option, load_station_key, station_verifier
from markstation.cli.translate import Group
from markstation.i18n import _, ngettext


@click.group(cls=Group)
def log() -> None:
    """Verify and export the tamper-evident journal.

    Every state change, import, resolution and export is a journal record and a leaf of an RFC 9162
    Merkle tree. The station signs checkpoints (tree heads) with its key ('station-key init') at
    the end of every run, at every export and on request. Keep checkpoints outside this station:
    'log verify --checkpoint FILE' then proves the journal still holds exactly that history.
    """


@log.command("verify")
@db_option
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A checkpoint kept outside the station: prove the journal extends it (repeatable).",
)
@click.option(
    "--key",
    default=None,
    metavar="PUB",
    help="Check signatures with this verifier key (station.pub or the key text) instead of "
    "the station key's.",
)
@key_file_option
def verify_cmd(
    db: Path | None, checkpoints: tuple[Path, ...], key: str | None, key_file: Path | None
) -> None:
    """Check records, tree and every stored checkpoint; name the first problem (exit 1).

    Each record against its leaf hash, each leaf against its place in the stored tree, every
    stored checkpoint's root and signature; with --checkpoint, a consistency proof that the
    journal extends that checkpoint (truncation, rewrite, reordering or insertion before it is
    detected) and that it is signed by this station.

    Then check every item's row (state, serial, code, attempts, reason, inspection, …) against
    what the journal proves, and name the first item that differs, a row the journal never
    imported, or a journaled item whose row is gone (exit 1). Works on a read-only copy.
    """
    from markstation.queue.journal import verify_store

    verifier = station_verifier(key_file, key)
    outside = [(str(p), _read_text(p)) for p in checkpoints]
    with open_store(db, make_actor(None, None), mode="read") as store:
        report, _tree = verify_store(store, key=verifier, outside=outside)
        checked = store.check_items_against_journal()
    click.echo(report.summary())
    click.echo(
        ngettext(
            "items ok: {checked} row is what the journal proves",
            "items ok: {checked} rows are what the journal proves",
            checked,
        ).format(checked=checked)
    )


@log.command("export")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "xlsx", "pdf"]),
    default="csv",
    show_default=True,
    help="CSV (one row per item), JSON Lines (one object per item), .xlsx (typed columns) or "
    "PDF (the campaign report for the registry and the company).",
)
@click.option(
    "--lang",
    "report_lang",
    type=click.Choice(["en", "es"]),
    default="en",
    show_default=True,
    help="Language of the PDF report.",
)
@output_option("Report file to write.", required=True)
@actor_options
@key_file_option
def export_cmd(
    db: Path | None,
    fmt: str,
    report_lang: str,
    output: Path,
    operator: str | None,
    station: str | None,
    key_file: Path | None,
) -> None:
    """Write every item's final state with its journal evidence, ending with the chain head.

    The journal is verified first, and every item row against it: a broken chain or an edited
    row refuses the export (exit 1). On a read-only copy the report is written and the export is
    not journaled (the store cannot be written).
    """
    from markstation.queue.export import export_report
    from markstation.queue.journal import verify

    actor = make_actor(operator, station)
    with open_store(db, actor, mode="read") as store:
        verify(store.records())
        store.check_items_against_journal()
        from markstation.queue.export import checkpoint_path

        signer = load_station_key(key_file)
        if fmt == "xlsx":
            from markstation.queue.xlsx import export_xlsx

            head = export_xlsx(store, output, actor=actor, key=signer)
        elif fmt == "pdf":
            from markstation.queue.report_pdf import export_pdf

            head = export_pdf(
                store,
                output,
                actor=actor,
                lang="es" if report_lang == "es" else "en",
                key=signer,
            )
        else:
            head = export_report(
                store, output, fmt="csv" if fmt == "csv" else "jsonl", actor=actor, key=signer
            )
            written = (
                _("checkpoint (signed) written to {path}")
                if signer is not None
                else _("checkpoint (UNSIGNED) written to {path}")
            )
            click.echo(written.format(path=checkpoint_path(output)))
    click.echo(
        _("wrote {output} ({fmt}); tree head: {records} records, root {hash}").format(
            output=output, fmt=fmt, records=head.records, hash=head.hash
        )
    )


@log.command("show")
@db_option
@click.option("--tail", type=click.IntRange(min=1), default=20, show_default=True, help="Last N.")
@click.option("--code", default=None, help="Only records about this mark code.")
def show_cmd(db: Path | None, tail: int, code: str | None) -> None:
    """Print journal records (seq, time, type, operator, payload), newest last."""
    with open_store(db, make_actor(None, None), mode="read") as store:
        records = [r for r in store.records() if code is None or r.payload.get("code") == code]
    for rec in records[-tail:]:
        body = json.dumps(rec.payload, ensure_ascii=False, sort_keys=True)
        click.echo(f"{rec.seq:6} {rec.time} {rec.type:15} {rec.operator}@{rec.station} {body}")


def _read_text(path: Path) -> str:
    from markstation.errors import JournalError

    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(
            _("{path}: cannot read the checkpoint ({exc})").format(path=path, exc=exc)
        ) from exc


@log.command("checkpoint")
@db_option
@output_option("Write the checkpoint to this file (default: print it).")
@click.option(
    "--qr",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the checkpoint as a QR code (PNG), e.g. for a printed report.",
)
@actor_options
@key_file_option
def checkpoint_cmd(
    db: Path | None,
    output: Path | None,
    qr: Path | None,
    operator: str | None,
    station: str | None,
    key_file: Path | None,
) -> None:
    """Sign a checkpoint (tree head) of the journal as it is now, keep it in the store and
    write it out. Keep the file outside the station ('log verify --checkpoint FILE' later)."""
    from markstation.queue.export import write_atomic
    from markstation.queue.journal import seal

    actor = make_actor(operator, station)
    signer = load_station_key(key_file)
    with open_store(db, actor) as store:
        text = seal(store, signer, station=actor.station, reason="request").text
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        written = (
            _("checkpoint (signed) written to {path}")
            if signer
            else _("checkpoint (UNSIGNED) written to {path}")
        )
        click.echo(written.format(path=output))
    if qr is not None:
        from markstation.cli.station_key import write_qr

        write_qr(text, qr)


@log.command("prove")
@click.argument("code")
@db_option
@output_option("Proof bundle (JSON) to write.", required=True)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Prove against this checkpoint (e.g. one the registry holds) instead of a new one.",
)
@actor_options
@key_file_option
def prove_cmd(
    code: str,
    db: Path | None,
    output: Path,
    checkpoint: Path | None,
    operator: str | None,
    station: str | None,
    key_file: Path | None,
) -> None:
    """Write inclusion proofs of every journal record about CODE, with the checkpoint they are
    proven against. 'markstation registry verify FILE --key PUB' checks the bundle."""
    from markstation.errors import JournalError
    from markstation.queue.checkpoint import SignedNote
    from markstation.queue.export import write_atomic
    from markstation.queue.journal import checkpoint_json, record_json, seal, verify_store

    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        verifier = station_verifier(key_file)
        outside = [(str(checkpoint), _read_text(checkpoint))] if checkpoint else []
        _report, tree = verify_store(store, key=verifier, outside=outside)
        records = list(store.records())
        if checkpoint is not None:
            note = SignedNote.parse(outside[0][1], str(checkpoint))
        else:
            stored = seal(store, load_station_key(key_file), station=actor.station, reason="prove")
            note = stored.note()
    size = note.checkpoint.size
    mine = [
        r
        for r in records
        if r.seq <= size
        and (r.payload.get("code") == code or code in (r.payload.get("codes") or []))
    ]
    if not mine:
        raise JournalError(
            _("no journal record about '{code}' in the first {size} records").format(
                code=code, size=size
            )
        )
    bundle = {
        "code": code,
        "records": [record_json(r, tree, size) for r in mine],
        "checkpoint": checkpoint_json(note),
    }
    write_atomic(output, json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    click.echo(
        _("{n_mine} records about {code} proven against a tree of {size}; wrote {output}").format(
            n_mine=len(mine), code=code, size=size, output=output
        )
    )
