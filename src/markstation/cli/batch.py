"""``markstation batch …``: import a registry batch, run it, see its state, decide on single items."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from markstation.cli.operators import supervisor_actor, supervisor_option
from markstation.cli.options import (
    ROWS_LAYOUT_HELP,
    actor_options,
    db_option,
    device_option,
    layout_option,
    machine_option,
    material_option,
    sheet_option,
)
from markstation.cli.translate import Group
from markstation.errors import ConfigError
from markstation.i18n import _, ngettext
from markstation.queue.models import Actor, Item
from markstation.queue.operator import Action, Inspection, OperatorUI, QuietUI, RunSummary
from markstation.queue.sqlite import OpenMode
from markstation.queue.states import State, state_label
from markstation.queue.store import Store


def make_actor(operator: str | None, station: str | None) -> Actor:
    who = operator
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
    return Actor(who.strip() or "unknown", (station or socket.gethostname()).strip())


def open_store(db: Path | str | None, actor: Actor, *, mode: OpenMode = "create") -> Store:
    """Open the store (running crash recovery) and say what recovery did.

    ``db`` is a file path (SQLite) or a ``postgresql://`` URL
    (:func:`markstation.queue.location.open_store` picks the backend). ``mode``: ``create`` (a
    command that writes and may start a new store: it says so), ``write`` (the store must
    exist), ``read`` (must exist; read-only when it cannot be written, e.g. an auditor's copy:
    see :class:`SqliteStore`).
    """
    from markstation.queue.location import open_store as open_location

    store = open_location(db, actor=actor, mode=mode)
    if getattr(store, "created", False):
        click.echo(_("created a new store at {path}").format(path=store.location), err=True)
    if store.readonly:
        click.echo(
            _("note: {path} cannot be written; opened it read-only").format(path=store.location),
            err=True,
        )
    for note in getattr(store, "notes", []):
        click.echo(_("note: {note}").format(note=note), err=True)
    for code in store.recovered:
        click.echo(
            _(
                "recovered: {code} was left marking by a runner that stopped; it is now "
                "interrupted (inspect the firearm, then 'markstation batch resolve')"
            ).format(code=code),
            err=True,
        )
    return store


# --- the click operator UI -------------------------------------------------------------------------


def _stdin_selectable() -> bool:
    if sys.platform == "win32":
        return False
    try:
        sys.stdin.fileno()
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _line_ready(timeout: float) -> bool:
    import select

    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return bool(ready)


class ClickOperatorUI:
    """The technician's prompts on the terminal; a scanner that types the serial + Enter also works."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def show_item(self, item: Item, position: int, total: int) -> None:
        firearm = " ".join(x for x in (item.make, item.model) if x) or _("firearm")
        extra = f", {item.caliber}" if item.caliber else ""
        owner = "   " + _("owner: {owner}").format(owner=item.owner) if item.owner else ""
        click.echo("")
        click.secho(
            _("[{position}/{total}] fetch: {firearm}").format(
                position=position, total=total, firearm=firearm + extra
            ),
            bold=True,
        )
        click.echo("   " + _("factory serial: {serial}").format(serial=item.serial) + owner)
        click.echo(
            "   "
            + _("code to mark:   {code}   (layout {layout})").format(
                code=item.code, layout=item.layout
            )
        )

    def ask_serial(self, item: Item) -> str | Action:
        answer: str = click.prompt(
            "   " + _("type or scan the factory serial (:s skip, :q quit)"),
            default="",
            show_default=False,
        )
        cmd = answer.strip().lower()
        if cmd == ":s":
            return Action.SKIP
        if cmd == ":q":
            return Action.QUIT
        return answer

    def serial_mismatch(self, item: Item, typed: str) -> None:
        click.secho(
            "   "
            + _("'{typed}' does not match {serial}: check the firearm, try again").format(
                typed=typed, serial=item.serial
            ),
            fg="red",
        )

    def ready(self, item: Item, estimate_s: float, pedal: Callable[[], bool]) -> Action:
        click.echo(
            "   "
            + _(
                "clamp it. Enter or foot pedal = mark ({seconds:.1f} s), f = frame, "
                "s = skip, q = quit"
            ).format(seconds=estimate_s)
        )
        choices = {"": Action.START, "f": Action.FRAME, "s": Action.SKIP, "q": Action.QUIT}
        while True:
            if _stdin_selectable():
                while not _line_ready(0.05):
                    if pedal():
                        click.echo("   " + _("foot pedal"))
                        return Action.START
                line = sys.stdin.readline()
                if line == "":
                    return Action.QUIT  # end of input
            else:
                line = sys.stdin.readline()
                if line == "":
                    return Action.QUIT
            action = choices.get(line.strip().lower())
            if action is not None:
                return action
            click.echo("   " + _("Enter, f, s or q"))

    def framing(self, item: Item) -> Callable[[], bool]:
        click.echo("   " + _("framing with the red pointer (beam off); press Enter to stop"))
        if not _stdin_selectable():

            def wait_line() -> bool:
                sys.stdin.readline()
                return True

            return wait_line

        def stop() -> bool:
            if _line_ready(0):
                sys.stdin.readline()
                return True
            return False

        return stop

    def start_progress(self, item: Item, estimate_s: float) -> None:
        self._remaining = estimate_s
        self._done = 0
        self._bar = click.progressbar(
            length=1000,
            label="   " + _("marking {code}").format(code=item.code),
            show_eta=False,
            item_show_func=lambda _item: _("{seconds:5.1f} s left").format(seconds=self._remaining),
        )
        self._bar.__enter__()

    def progress(self, fraction: float, elapsed_s: float, remaining_s: float) -> None:
        if self._bar is None:
            return
        self._remaining = remaining_s
        target = int(fraction * 1000)
        if target > self._done:
            self._bar.update(target - self._done, None)
            self._done = target

    def end_progress(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def inspect(self, item: Item) -> Inspection:
        answer = click.prompt(
            "   " + _("inspection: p = pass, f = fail"),
            type=click.Choice(["p", "f", "pass", "fail"], case_sensitive=False),
        ).lower()
        result = "pass" if answer.startswith("p") else "fail"
        note: str = click.prompt("   " + _("note (optional)"), default="", show_default=False)
        return Inspection("pass" if result == "pass" else "fail", note.strip())

    def after_failure(self, item: Item, reason: str) -> Action:
        answer = click.prompt(
            "   " + _("r = retry, n = next firearm, q = quit"),
            type=click.Choice(["r", "n", "q"], case_sensitive=False),
        ).lower()
        return {"r": Action.RETRY, "n": Action.NEXT}.get(answer, Action.QUIT)

    def message(self, text: str) -> None:
        click.echo(f"   {text}")

    def summary(self, summary: RunSummary) -> None:
        print_summary(summary)


def print_summary(summary: RunSummary) -> None:
    click.echo("")
    click.secho(_("run summary"), bold=True)
    click.echo(
        "  "
        + _(
            "marked {marked}, failed {failed}, interrupted {interrupted}, job refused "
            "{refused}, passed over {passed_over}; remaining {remaining}; {seconds:.1f} s"
        ).format(
            marked=len(summary.marked),
            failed=len(summary.failed),
            interrupted=len(summary.interrupted),
            refused=len(summary.refused),
            passed_over=len(summary.passed_over),
            remaining=summary.remaining,
            seconds=summary.elapsed_s,
        )
    )
    if summary.inspection_failed:
        codes = ", ".join(summary.inspection_failed)
        click.echo("  " + _("inspection failed: {codes}").format(codes=codes))
    if summary.interrupted:
        click.echo("  " + _("to resolve: {codes}").format(codes=", ".join(summary.interrupted)))
    if summary.stopped:
        click.echo("  " + _("stopped: {reason}").format(reason=summary.stopped))


# --- commands ------------------------------------------------------------------------------------------


@click.group(cls=Group)
def batch() -> None:
    """Import, run, inspect and resolve registry batches.

    States: pending -> marking -> marked | failed | interrupted, plus skipped and voided.
    'interrupted' means nobody knows whether the metal was marked: inspect the firearm and run
    'batch resolve'. Nothing is ever deleted; every change is in the journal ('markstation log').
    """


@batch.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@layout_option(help=ROWS_LAYOUT_HELP)
@sheet_option
@actor_options
def import_cmd(
    file: Path,
    db: Path | None,
    layout: str,
    sheet: str | None,
    operator: str | None,
    station: str | None,
) -> None:
    """Validate a registry batch (CSV, JSON or .xlsx) and load it: all or nothing.

    Every problem is listed as FILE:LINE:COLUMN (FILE:Sheet!B7 for .xlsx); with any problem
    nothing is stored (exit 1). This is the one command that creates a store where none
    exists (and says so); an empty or foreign file at --db is refused, never initialised over.
    """
    from markstation.queue.batch import import_batch

    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        batch_id, valid = import_batch(file, store, actor=actor, default_layout=layout, sheet=sheet)
    click.echo(
        ngettext(
            "imported {count} item from {file} as batch {batch} (sha256 {sha256}…) into {db}",
            "imported {count} items from {file} as batch {batch} (sha256 {sha256}…) into {db}",
            len(valid.items),
        ).format(
            count=len(valid.items),
            file=file,
            batch=batch_id,
            sha256=valid.sha256[:16],
            db=store.location,
        )
    )


@batch.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@layout_option(help=ROWS_LAYOUT_HELP)
@sheet_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def validate_cmd(file: Path, layout: str, sheet: str | None, as_json: bool) -> None:
    """Check a registry batch file as 'batch import' would, without touching any store.

    For the registry, before sending a file. Prints every problem (exit 1), or the item count.
    Checks against a store (code or firearm already there) are left to 'batch import'.
    """
    from markstation.queue.batch import validation_report

    doc, text = validation_report(file, default_layout=layout, sheet=sheet)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=True))
    else:
        click.echo(text, err=not doc["ok"])
    if not doc["ok"]:
        sys.exit(1)


@batch.command("run")
@db_option
@device_option(required=False)
@click.option(
    "--dry-run",
    "dry_run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="No device: write a PNG preview, time estimate and decode check of every pending "
    "item into this directory (no state changes).",
)
@actor_options
@click.option("--auto", is_flag=True, help="Unattended: no prompts, inspection 'not-inspected'.")
@machine_option
@material_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Work at most N items.")
def run_cmd(
    db: Path | None,
    device: str | None,
    dry_run_dir: Path | None,
    operator: str | None,
    station: str | None,
    auto: bool,
    machine: str | None,
    material: str | None,
    limit: int | None,
) -> None:
    """Mark pending (and previously failed) items one after another.

    Per item: fetch the firearm shown, confirm its factory serial, clamp, optionally frame
    (f), start with Enter or the foot pedal, inspect. Ctrl-C or the e-stop input stops
    emission at once and leaves the item interrupted. Exit 2 when an item failed or was
    interrupted.

    The typed serial is compared folded (case, punctuation, look-alike and invisible characters
    ignored); a row whose firearm is also another row's is refused. The journal decides: a store
    whose item rows differ from what the journal proves is refused (exit 2, item named). The store
    must exist; disk full or read-only stores stop the run with one line (exit 2).
    """
    if (device is None) == (dry_run_dir is None):
        raise click.UsageError(_("give exactly one of --device URL or --dry-run DIR"))
    actor = make_actor(operator, station)
    with open_store(db, actor, mode="write") as store:
        if dry_run_dir is not None:
            _dry_run(store, dry_run_dir, machine, material, limit)
            return
        from markstation.devices import open_device
        from markstation.queue.runner import run_batch

        url = device
        assert url is not None
        ui: OperatorUI = _AutoUI() if auto else ClickOperatorUI()
        from markstation.cli.station_key import load_station_key

        # asked before anything is marked: every run ends with a checkpoint signed by it
        signer = load_station_key(None)
        summary = run_batch(
            store,
            lambda: open_device(url, machine),
            key=signer,
            operator=actor.operator,
            station=actor.station,
            ui=ui,
            auto=auto,
            material=material,
            limit=limit,
        )
    if summary.failed or summary.interrupted:
        sys.exit(2)


class _AutoUI(QuietUI):
    """Unattended output: one line per item, no prompts (the rest is QuietUI's)."""

    def show_item(self, item: Item, position: int, total: int) -> None:
        click.echo(f"[{position}/{total}] {item.code}  {item.make} {item.model} {item.serial}")

    def message(self, text: str) -> None:
        click.echo(f"   {text}")

    def summary(self, summary: RunSummary) -> None:
        print_summary(summary)


def _dry_run(
    store: Store, out: Path, machine: str | None, material: str | None, limit: int | None
) -> None:
    from markstation.queue.dry_run import DryRunItem, dry_run

    def show(entry: DryRunItem) -> None:
        if entry.error:
            click.echo(_("{code}: NOT BUILT: {error}").format(code=entry.code, error=entry.error))
        else:
            est = f"{entry.estimate_s:.1f} s" if entry.estimate_s is not None else "?"
            click.echo(
                _("{code}: {estimate}, 2D code {decode}, {preview}").format(
                    code=entry.code, estimate=est, decode=entry.decode, preview=entry.preview
                )
            )

    results = dry_run(store, out, machine=machine, material=material, limit=limit, progress=show)
    bad = [r for r in results if r.error or r.decode not in ("ok", "no 2D code")]
    total = sum(r.estimate_s or 0.0 for r in results)
    click.echo(
        _(
            "dry run: {count} items, estimated marking time {seconds:.1f} s, "
            "previews and dry-run.csv in {out}"
        ).format(count=len(results), seconds=total, out=out)
    )
    if bad:
        raise ConfigError(
            _("{count} item(s) failed the dry run (see {csv})").format(
                count=len(bad), csv=out / "dry-run.csv"
            )
        )


@batch.command("status")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in State]),
    help="Only list items in this state (repeatable).",
)
def status_cmd(db: Path | None, as_json: bool, states: tuple[str, ...]) -> None:
    """Counts per state and every item's state.

    Works on a read-only copy of a store (opened with SQLite mode=ro, or immutable=1).
    """
    actor = make_actor(None, None)
    with open_store(db, actor, mode="read") as store:
        counts = store.counts()
        items = store.items([State(s) for s in states] if states else None)
        runner = store.runner_info()
        head = store.head()
    if as_json:
        doc = {
            "db": store.location,
            "counts": {s.value: n for s, n in counts.items()},
            "runner": runner,
            "journal": {"records": head.records, "head": head.hash},
            "items": [it.as_dict() for it in items],
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(_("store {path}").format(path=store.location))
    click.echo("  " + ", ".join(f"{state_label(s)} {n}" for s, n in counts.items()))
    for live in runner.get("stations", [runner]) if runner else []:
        # one runner per station on a server store, each with its own line
        where = f" [{live['station']}]" if "station" in live else ""
        click.echo(
            "  "
            + _("runner: pid {pid} on {host} since {since}").format(
                pid=live["pid"], host=live["host"], since=live["since"]
            )
            + where
        )
    for it in items:
        note = f"  ({it.reason})" if it.reason and it.state is not State.MARKED else ""
        insp = f" [{it.inspection}]" if it.inspection else ""
        click.echo(f"{it.code:28} {state_label(it.state):11}{insp} {it.make} {it.serial}{note}")


def _decision_command(
    name: str, help_text: str, fn_name: str, *, supervised: bool = False
) -> Callable[..., None]:
    @batch.command(name, help=help_text)
    @click.argument("code")
    @click.option("--reason", required=True, help="Why; recorded in the journal.")
    @db_option
    @actor_options
    @supervisor_option(enabled=supervised)
    def command(
        db: Path | None,
        code: str,
        reason: str,
        operator: str | None,
        station: str | None,
        supervisor: str | None = None,
    ) -> None:
        from markstation.queue import decisions

        actor = make_actor(operator, station)
        with open_store(db, actor, mode="write") as store:
            if supervised:
                actor = supervisor_actor(store, supervisor, actor=actor, action=f"batch {name}")
            item = getattr(decisions, fn_name)(store, code, reason=reason, actor=actor)
        click.echo(_("{code}: now {state}").format(code=item.code, state=state_label(item.state)))

    return command


@batch.command("resolve")
@click.argument("code")
@click.option("--marked", "marked", flag_value=True, default=None, help="The metal is marked.")
@click.option(
    "--not-marked", "marked", flag_value=False, help="Nothing was marked; back to pending."
)
@click.option("--reason", required=True, help="What the inspection showed; journaled.")
@db_option
@actor_options
@supervisor_option()
def resolve_cmd(
    code: str,
    marked: bool | None,
    reason: str,
    db: Path | None,
    operator: str | None,
    station: str | None,
    supervisor: str | None,
) -> None:
    """Resolve an interrupted item after inspecting the firearm.

    --marked: the code is on the metal (state marked, never marked again). --not-marked: no
    trace of the mark; the item goes back to pending and will be marked by the next run.
    """
    from markstation.queue.decisions import resolve

    if marked is None:
        raise click.UsageError(_("give --marked or --not-marked"))
    actor = make_actor(operator, station)
    with open_store(db, actor, mode="write") as store:
        actor = supervisor_actor(store, supervisor, actor=actor, action="batch resolve")
        item = resolve(store, code, marked=marked, reason=reason, actor=actor)
    click.echo(
        _("{code}: resolved, now {state}").format(code=item.code, state=state_label(item.state))
    )


_decision_command(
    "skip",
    "Set a pending or failed item aside (firearm not at hand); 'requeue' brings it back.",
    "skip",
)
_decision_command("requeue", "Put a skipped item back to pending.", "requeue", supervised=True)
_decision_command(
    "void",
    "Withdraw a code that must never be marked (final; a marked code cannot be voided).",
    "void",
    supervised=True,
)
