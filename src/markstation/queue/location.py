"""Where a store lives: a file path (SQLite, embedded) or a ``postgresql://`` URL (a server).

:func:`open_store` is the one place that picks the backend from ``--db`` / ``$MARKSTATION_DB``.
:func:`redact` takes the password out of a URL or a libpq ``key=value`` string; every message
that names a server store goes through it (the store's ``location`` is already redacted).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from markstation.queue.models import Actor
from markstation.queue.sqlite import DB_ENV, OpenMode, SqliteStore, default_db_path
from markstation.queue.store import Store

#: URL schemes libpq accepts
SERVER_SCHEMES = ("postgresql://", "postgres://")

_SECRET_KEYS = frozenset({"password", "sslpassword"})
_KV_SECRET = re.compile(r"\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def is_server_url(location: str | os.PathLike[str] | None) -> bool:
    """``postgresql://…`` (or ``postgres://…``): a server store; anything else is a file path."""
    return isinstance(location, str) and location.lower().startswith(SERVER_SCHEMES)


def redact(text: str) -> str:
    """``text`` with any password in it (URL user-info, ``?password=``, ``password=…``) as ``***``."""
    if is_server_url(text):
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{host}"
        query = parts.query
        if query:
            pairs = [
                (k, "***" if k.lower() in _SECRET_KEYS else v)
                for k, v in parse_qsl(query, keep_blank_values=True)
            ]
            query = urlencode(pairs, safe="/:*", quote_via=quote)
        text = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return _KV_SECRET.sub(lambda m: f"{m.group(1)}=***", text)


def public_location(url: str) -> str:
    """The URL as messages show it: no password at all (not even ``***``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = urlencode(
        [(k, v) for k, v in pairs if k.lower() not in _SECRET_KEYS], safe="/:", quote_via=quote
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def default_location() -> str | Path:
    """``$MARKSTATION_DB`` (a path or a URL), else ``markstation.db`` in the user data directory."""
    env = os.environ.get(DB_ENV)
    if env and is_server_url(env):
        return env
    return default_db_path()


def open_store(
    location: str | os.PathLike[str] | None,
    *,
    actor: Actor | None = None,
    mode: OpenMode = "create",
    recover: bool = True,
) -> Store:
    """Open the store at ``location`` (None: :func:`default_location`), on the backend it names.

    A ``postgresql://`` URL opens :class:`~markstation.queue.postgres.PostgresStore` (psycopg is
    imported only then: the ``markstation[postgres]`` extra); anything else is an SQLite file.
    """
    where = default_location() if location is None else location
    if is_server_url(where):
        from markstation.queue.postgres import PostgresStore

        return PostgresStore(str(where), actor=actor, mode=mode, recover=recover)
    return SqliteStore(where, actor=actor, mode=mode, recover=recover)
