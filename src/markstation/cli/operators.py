"""``markstation operators …``: the operators who sign in, and the CLI's supervisor check.

PINs are asked with hidden input on a terminal; when standard input is not a terminal each PIN is
read as one line from it (the supervisor's first, then a new operator's), so scripts can pipe them.
:func:`supervisor_actor` is the one place the batch commands ask for a supervisor.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from markstation.cli.options import actor_options, db_option
from markstation.cli.translate import Group
from markstation.errors import OperatorError, PermissionDenied
from markstation.i18n import _, pgettext

if TYPE_CHECKING:
    from markstation.queue.models import Actor
    from markstation.queue.operators import Operator
    from markstation.queue.store import Store

FC = TypeVar("FC", bound=Callable[..., Any])


def supervisor_option(*, enabled: bool = True) -> Callable[[FC], FC]:
    """``--supervisor NAME``: who authorises a supervisor action (their PIN is asked).

    ``enabled=False`` leaves the command as it is (for command factories).
    """

    def add(f: FC) -> FC:
        if not enabled:
            return f
        return click.option(
            "--supervisor",
            default=None,
            metavar="NAME",
            help="Supervisor who authorises this, once the store has operators (PIN asked on "
            "the terminal, or read as one line from standard input). The journal records them.",
        )(f)

    return add


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def read_pin(prompt: str, *, confirm: bool = False) -> str:
    """A PIN: hidden input on a terminal (asked twice with ``confirm``), else one stdin line.

    The PIN is never echoed or put into a message; two different entries are refused.
    """
    from markstation.queue.operators import check_pin

    if not _stdin_is_terminal():
        line = sys.stdin.readline()
        if not line.strip():
            raise OperatorError(_("no PIN on standard input ({prompt})").format(prompt=prompt))
        return line.strip()
    pin: str = click.prompt(prompt, hide_input=True, err=True)
    if confirm:
        check_pin(pin.strip())
        again: str = click.prompt(_("Repeat the PIN"), hide_input=True, err=True)
        if again.strip() != pin.strip():
            raise OperatorError(_("the two PINs differ: nothing stored"))
    return pin.strip()


def supervisor_actor(store: Store, supervisor: str | None, *, actor: Actor, action: str) -> Actor:
    """Who a supervisor action is journaled as.

    With no operators in the store: ``actor`` (``--operator`` / login name), as before operators
    existed. Otherwise ``--supervisor NAME`` must be given and sign in with their PIN, and must be
    a supervisor (AuthError, OperatorLocked, OperatorDisabled, PermissionDenied: exit 1); the
    result is that supervisor at ``actor``'s station.
    """
    from markstation.queue.models import Actor
    from markstation.queue.operators import Role, authenticate, has_operators, require_role

    if not has_operators(store):
        if supervisor is not None:
            raise OperatorError(
                _(
                    "--supervisor given, but {location} has no operators (add one with "
                    "'markstation operators add NAME --role supervisor')"
                ).format(location=store.location)
            )
        return actor
    if supervisor is None or not supervisor.strip():
        raise PermissionDenied(
            _(
                "{action} needs a supervisor: this store has operators, give --supervisor NAME "
                "(the PIN is asked)"
            ).format(action=action)
        )
    pin = read_pin(_("PIN of supervisor {name}").format(name=supervisor.strip()))
    operator = authenticate(store, supervisor, pin, station=actor.station)
    require_role(operator, Role.SUPERVISOR, action)
    return Actor(operator.name, actor.station)


def _state(op: Operator, now: datetime) -> str:
    if op.disabled:
        return pgettext("operator state", "disabled")
    if op.locked_until is not None:
        until = datetime.fromisoformat(op.locked_until)
        if until > now:
            return _("locked until {until} UTC").format(until=until.strftime("%Y-%m-%d %H:%M:%S"))
    return pgettext("operator state", "active")


# --- commands --------------------------------------------------------------------------------------


@click.group(cls=Group)
def operators() -> None:
    """Add, list and disable the operators who sign in.

    Roles: technician (marks, frames, skips, records inspections) and supervisor (also imports,
    resolves, voids, requeues, exports, and manages operators). The first operator must be a
    supervisor; once a store has operators, 'batch resolve', 'batch void' and 'batch requeue' need
    --supervisor NAME and that supervisor's PIN. PINs are 4 to 12 digits, kept only as a salted
    scrypt hash; five wrong PINs lock the operator for 15 minutes. Every change is journaled.
    """


@operators.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["technician", "supervisor"]),
    help="technician or supervisor (the first operator must be a supervisor).",
)
@db_option
@supervisor_option()
@actor_options
def add_cmd(
    name: str,
    role: str,
    db: Path | None,
    supervisor: str | None,
    operator: str | None,
    station: str | None,
) -> None:
    """Add operator NAME with a new PIN (4 to 12 digits).

    On a terminal the PIN is asked twice with hidden input; otherwise it is read as one line from
    standard input (after the supervisor's PIN line, when one is needed). Once the store has
    operators, adding one needs --supervisor NAME and their PIN.
    """
    from markstation.cli.batch import make_actor, open_store
    from markstation.queue.operators import Role, add_operator, check_name, has_operators

    clean = check_name(name)
    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        if not has_operators(store) and role != Role.SUPERVISOR:
            raise OperatorError(
                _(
                    "the first operator must be a supervisor: add '{name}' with --role supervisor"
                ).format(name=clean)
            )
        actor = supervisor_actor(store, supervisor, actor=actor, action="operators add")
        pin = read_pin(_("New PIN for {name}").format(name=clean), confirm=True)
        added = add_operator(store, clean, Role(role), pin, actor=actor)
        where = store.location
    click.echo(
        _("added {role} '{name}' to {location}").format(
            role=added.role.value, name=added.name, location=where
        )
    )


@operators.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def list_cmd(db: Path | None, as_json: bool) -> None:
    """Every operator: name, role, and active, locked (until when) or disabled."""
    from markstation.cli.batch import make_actor, open_store
    from markstation.queue.operators import list_operators

    with open_store(db, make_actor(None, None)) as store:
        ops = list_operators(store)
        where = store.location
    if as_json:
        doc = [
            {
                "name": op.name,
                "role": op.role.value,
                "disabled": op.disabled,
                "locked_until": op.locked_until,
            }
            for op in ops
        ]
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    if not ops:
        click.echo(
            _(
                "no operators in {location}: nobody signs in yet; add a supervisor first with "
                "'markstation operators add NAME --role supervisor'"
            ).format(location=where)
        )
        return
    now = datetime.now(UTC)
    width = max(len(op.name) for op in ops)
    for op in ops:
        click.echo(f"{op.name:{width}}  {op.role.value:10}  {_state(op, now)}")


@operators.command("disable")
@click.argument("name")
@db_option
@supervisor_option()
@actor_options
def disable_cmd(
    name: str, db: Path | None, supervisor: str | None, operator: str | None, station: str | None
) -> None:
    """Disable operator NAME for good: they can no longer sign in; their records stay.

    Needs --supervisor NAME and their PIN. The last active supervisor cannot be disabled.
    """
    from markstation.cli.batch import make_actor, open_store
    from markstation.queue.operators import disable_operator

    actor = make_actor(operator, station)
    with open_store(db, actor) as store:
        actor = supervisor_actor(store, supervisor, actor=actor, action="operators disable")
        done = disable_operator(store, name, actor=actor)
    click.echo(_("disabled {role} '{name}'").format(role=done.role.value, name=done.name))
