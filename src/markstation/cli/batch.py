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

from markstation.cli.options import (
    actor_options,
    db_option,
    device_option,
    machine_option,
    material_option,
)
from markstation.errors import ConfigError
from markstation.profiles import DEFAULT_LAYOUT
from markstation.queue.models import Actor, Item
from markstation.queue.operator import Action, Inspection, OperatorUI, QuietUI, RunSummary
from markstation.queue.sqlite import SqliteStore, default_db_path
from markstation.queue.states import State
from markstation.queue.store import Store


def make_actor(operator: str | None, station: str | None) -> Actor:
    who = operator
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
    return Actor(who.strip() or "unknown", (station or socket.gethostname()).strip())


def open_store(db: Path | None, actor: Actor) -> SqliteStore:
    """Open the store (running crash recovery) and say what recovery did."""
    store = SqliteStore(db or default_db_path(), actor=actor)
    for code in store.recovered:
        click.echo(
            f"recovered: {code} was left marking by a runner that stopped; it is now "
            "interrupted (inspect the firearm, then 'markstation batch resolve')",
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
        firearm = " ".join(x for x in (item.make, item.model) if x) or "firearm"
        extra = f", {item.caliber}" if item.caliber else ""
        owner = f"   owner: {item.owner}" if item.owner else ""
        click.echo("")
        click.secho(f"[{position}/{total}] fetch: {firearm}{extra}", bold=True)
        click.echo(f"   factory serial: {item.serial}{owner}")
        click.echo(f"   code to mark:   {item.code}   (layout {item.layout})")

    def ask_serial(self, item: Item) -> str | Action:
        answer: str = click.prompt(
            "   type or scan the factory serial (:s skip, :q quit)",
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
            f"   '{typed}' does not match {item.serial}: check the firearm, try again", fg="red"
        )

    def ready(self, item: Item, estimate_s: float, pedal: Callable[[], bool]) -> Action:
        click.echo(
            f"   clamp it. Enter or foot pedal = mark ({estimate_s:.1f} s), f = frame, "
            "s = skip, q = quit"
        )
        choices = {"": Action.START, "f": Action.FRAME, "s": Action.SKIP, "q": Action.QUIT}
        while True:
            if _stdin_selectable():
                while not _line_ready(0.05):
                    if pedal():
                        click.echo("   foot pedal")
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
            click.echo("   Enter, f, s or q")

    def framing(self, item: Item) -> Callable[[], bool]:
        click.echo("   framing with the red pointer (beam off); press Enter to stop")
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
            label=f"   marking {item.code}",
            show_eta=False,
            item_show_func=lambda _: f"{self._remaining:5.1f} s left",
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
            "   inspection: p = pass, f = fail",
            type=click.Choice(["p", "f", "pass", "fail"], case_sensitive=False),
        ).lower()
        result = "pass" if answer.startswith("p") else "fail"
        note: str = click.prompt("   note (optional)", default="", show_default=False)
        return Inspection("pass" if result == "pass" else "fail", note.strip())

    def after_failure(self, item: Item, reason: str) -> Action:
        answer = click.prompt(
            "   r = retry, n = next firearm, q = quit",
            type=click.Choice(["r", "n", "q"], case_sensitive=False),
        ).lower()
        return {"r": Action.RETRY, "n": Action.NEXT}.get(answer, Action.QUIT)

    def message(self, text: str) -> None:
        click.echo(f"   {text}")

    def summary(self, summary: RunSummary) -> None:
        print_summary(summary)


def print_summary(summary: RunSummary) -> None:
    click.echo("")
    click.secho("run summary", bold=True)
    click.echo(
        f"  marked {len(summary.marked)}, failed {len(summary.failed)}, interrupted "
        f"{len(summary.interrupted)}, job refused {len(summary.refused)}, passed over "
        f"{len(summary.passed_over)}; remaining {summary.remaining}; "
        f"{summary.elapsed_s:.1f} s"
    )
    if summary.inspection_failed:
        click.echo(f"  inspection failed: {', '.join(summary.inspection_failed)}")
    if summary.interrupted:
        click.echo(f"  to resolve: {', '.join(summary.interrupted)}")
    if summary.stopped:
        click.echo(f"  stopped: {summary.stopped}")


# --- commands ------------------------------------------------------------------------------------------


@click.group()
def batch() -> None:
    """Import, run, inspect and resolve registry batches.

    States: pending -> marking -> marked | failed | interrupted, plus skipped and voided.
    'interrupted' means nobody knows whether the metal was marked: inspect the firearm and run
    'batch resolve'. Nothing is ever deleted; every change is in the journal ('markstation log').
    """


@batch.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option(
    "--layout",
    "-l",
    default=DEFAULT_LAYOUT,
    show_default=True,
    metavar="NAME",
    help="Layout for rows without a 'layout' column value.",
)
@actor_options
def import_cmd(
    file: Path, db: Path | None, layout: str, operator: str | None, station: str | None
) -> None:
    """Validate a registry batch (CSV or JSON) and load it: all or nothing.

    Every problem is listed as FILE:LINE:COLUMN; with any problem nothing is stored (exit 1).
    """
    from markstation.queue.batch import import_batch

    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        batch_id, valid = import_batch(file, store, actor=actor, default_layout=layout)
    click.echo(
        f"imported {len(valid.items)} items from {file} as batch {batch_id} "
        f"(sha256 {valid.sha256[:16]}…) into {store.path}"
    )


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
    """
    if (device is None) == (dry_run_dir is None):
        raise click.UsageError("give exactly one of --device URL or --dry-run DIR")
    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        if dry_run_dir is not None:
            _dry_run(store, dry_run_dir, machine, material, limit)
            return
        from markstation.devices import open_device
        from markstation.queue.runner import run_batch

        url = device
        assert url is not None
        ui: OperatorUI = _AutoUI() if auto else ClickOperatorUI()
        summary = run_batch(
            store,
            lambda: open_device(url, machine),
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
            click.echo(f"{entry.code}: NOT BUILT: {entry.error}")
        else:
            est = f"{entry.estimate_s:.1f} s" if entry.estimate_s is not None else "?"
            click.echo(f"{entry.code}: {est}, 2D code {entry.decode}, {entry.preview}")

    results = dry_run(store, out, machine=machine, material=material, limit=limit, progress=show)
    bad = [r for r in results if r.error or r.decode not in ("ok", "no 2D code")]
    total = sum(r.estimate_s or 0.0 for r in results)
    click.echo(
        f"dry run: {len(results)} items, estimated marking time {total:.1f} s, "
        f"previews and dry-run.csv in {out}"
    )
    if bad:
        raise ConfigError(f"{len(bad)} item(s) failed the dry run (see {out / 'dry-run.csv'})")


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
    """Counts per state and every item's state."""
    actor = make_actor(None, None)
    with open_store(db, actor) as store:
        counts = store.counts()
        items = store.items([State(s) for s in states] if states else None)
        runner = store.runner_info()
        head = store.head()
    if as_json:
        doc = {
            "db": str(store.path),
            "counts": {s.value: n for s, n in counts.items()},
            "runner": runner,
            "journal": {"records": head.records, "head": head.hash},
            "items": [it.as_dict() for it in items],
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"store {store.path}")
    click.echo("  " + ", ".join(f"{s.value} {n}" for s, n in counts.items()))
    if runner:
        click.echo(f"  runner: pid {runner['pid']} on {runner['host']} since {runner['since']}")
    for it in items:
        note = f"  ({it.reason})" if it.reason and it.state is not State.MARKED else ""
        insp = f" [{it.inspection}]" if it.inspection else ""
        click.echo(f"{it.code:28} {it.state.value:11}{insp} {it.make} {it.serial}{note}")


def _decision_command(
    name: str, help_text: str, fn_name: str
) -> Callable[[Path | None, str, str, str | None, str | None], None]:
    @batch.command(name, help=help_text)
    @click.argument("code")
    @click.option("--reason", required=True, help="Why; recorded in the journal.")
    @db_option
    @actor_options
    def command(
        db: Path | None, code: str, reason: str, operator: str | None, station: str | None
    ) -> None:
        from markstation.queue import decisions

        actor = make_actor(operator, station)
        with open_store(db, actor) as store:
            item = getattr(decisions, fn_name)(store, code, reason=reason, actor=actor)
        click.echo(f"{item.code}: now {item.state.value}")

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
def resolve_cmd(
    code: str,
    marked: bool | None,
    reason: str,
    db: Path | None,
    operator: str | None,
    station: str | None,
) -> None:
    """Resolve an interrupted item after inspecting the firearm.

    --marked: the code is on the metal (state marked, never marked again). --not-marked: no
    trace of the mark; the item goes back to pending and will be marked by the next run.
    """
    from markstation.queue.decisions import resolve

    if marked is None:
        raise click.UsageError("give --marked or --not-marked")
    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        item = resolve(store, code, marked=marked, reason=reason, actor=actor)
    click.echo(f"{item.code}: resolved, now {item.state.value}")


_decision_command(
    "skip",
    "Set a pending or failed item aside (firearm not at hand); 'requeue' brings it back.",
    "skip",
)
_decision_command("requeue", "Put a skipped item back to pending.", "requeue")
_decision_command(
    "void",
    "Withdraw a code that must never be marked (final; a marked code cannot be voided).",
    "void",
)
