"""``markstation db …``: the store's schema (a PostgreSQL store is upgraded on request only)."""

from __future__ import annotations

from pathlib import Path

import click

from markstation.cli.options import db_option
from markstation.cli.translate import Group
from markstation.i18n import _


@click.group(cls=Group)
def db() -> None:
    """The store's schema.

    An SQLite store file is created by 'markstation batch import'. A PostgreSQL store
    (--db postgresql://…) is created there too, or by 'markstation db migrate'; a store of an
    older schema is refused until 'markstation db migrate' upgrades it (run it as the database
    owner, with every station stopped).
    """


@db.command("migrate")
@db_option
def migrate_cmd(db: Path | str | None) -> None:
    """Create or upgrade the PostgreSQL store at --db to this markstation's schema.

    Takes the schema lock and the journal lock, so no station writes meanwhile; the triggers
    (append-only journal, the state-transition guard) are restored as this version writes them.
    Credentials come from the URL, PGPASSFILE or PGPASSWORD and are never printed.
    """
    from markstation.queue.location import default_location, is_server_url

    where = default_location() if db is None else db
    if not is_server_url(where):
        raise click.UsageError(
            _("db migrate works on a postgresql:// store; an SQLite file needs no migration")
        )
    from markstation.queue.postgres import migrate

    click.echo(migrate(str(where)))
