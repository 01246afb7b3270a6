"""Operators, their PINs and roles: who may sign in at a station and what each role may do.

Two roles: a ``technician`` marks, frames, skips and records inspections; a ``supervisor`` may
also import, resolve interrupted items, void, requeue and export (:func:`require_role`; a
supervisor passes every technician check). The first operator of a store must be a supervisor,
and the last active supervisor cannot be disabled, so a store with operators always has someone
who can decide.

PINs are 4 to 12 digits and are kept only as a salted scrypt hash (``n=2**14, r=8, p=1``, a
16-byte random salt); the parameters are stored with the hash (``$scrypt$n=…,r=…,p=…$salt$hash``)
so they can be raised later without invalidating stored PINs. A PIN is never journaled, logged or
put into a message. The comparison is constant-time (:func:`hmac.compare_digest`) and an unknown
name costs the same scrypt work as a wrong PIN, so timing does not tell which names exist.

:data:`MAX_FAILED_ATTEMPTS` wrong PINs in a row lock the operator for :data:`LOCK_MINUTES`; the
lock is lifted by the first sign-in attempt after it expired. Every change is journaled:
``operator-added``, ``operator-disabled``, ``signed-in``, ``sign-in-failed`` (the name tried and
why, never the PIN), ``operator-locked``, ``operator-unlocked``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from markstation.errors import (
    AuthError,
    OperatorDisabled,
    OperatorError,
    OperatorLocked,
    PermissionDenied,
    StoreError,
)
from markstation.i18n import N_, _
from markstation.queue.models import Actor
from markstation.queue.store import OperatorRow, Store

#: minutes an operator stays locked after MAX_FAILED_ATTEMPTS wrong PINs in a row
LOCK_MINUTES = 15
#: wrong PINs in a row that lock the operator
MAX_FAILED_ATTEMPTS = 5

#: scrypt cost of new hashes (stored with each hash: raising them later keeps old PINs valid)
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

#: the one message for an unknown name and for a wrong PIN
AUTH_FAILED = N_("sign-in refused: unknown operator or wrong PIN")

_PIN = re.compile(r"[0-9]{4,12}")
_HASH = re.compile(
    r"\$scrypt\$n=(?P<n>[0-9]+),r=(?P<r>[0-9]+),p=(?P<p>[0-9]+)"
    r"\$(?P<salt>[A-Za-z0-9+/=]+)\$(?P<hash>[A-Za-z0-9+/=]+)"
)
_NAME_MAX = 64
#: times a compare-and-set update of an operator is tried against concurrent changes
_RETRIES = 20


class Role(StrEnum):
    TECHNICIAN = "technician"
    SUPERVISOR = "supervisor"


#: what each role may do beyond the roles before it: a higher rank passes every lower check
_RANK = {Role.TECHNICIAN: 0, Role.SUPERVISOR: 1}


@dataclass(frozen=True)
class Operator:
    """An operator as the station and the CLI see it (no PIN hash)."""

    name: str
    role: Role
    disabled: bool
    locked_until: str | None  # ISO UTC, while a lock is (or was last) in force


def _public(row: OperatorRow) -> Operator:
    return Operator(row.name, Role(row.role), row.disabled, row.locked_until)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- PINs -----------------------------------------------------------------------------------------


def check_pin(pin: str) -> str:
    """The PIN if it is 4 to 12 digits (0-9), else OperatorError (the PIN is not in the message)."""
    if not _PIN.fullmatch(pin):
        raise OperatorError(_("a PIN is 4 to 12 digits (0-9)"))
    return pin


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL needs about 128 * r * (n + p + 2) bytes; allow that plus a margin
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


def hash_pin(pin: str) -> str:
    """A new salted hash of ``pin`` with the current parameters, in the stored format."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(check_pin(pin), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    b64 = base64.b64encode
    return (
        f"$scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"
        f"${b64(salt).decode()}${b64(digest).decode()}"
    )


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches ``stored``, compared in constant time (False for a bad hash)."""
    m = _HASH.fullmatch(stored)
    if m is None:
        return False
    salt = base64.b64decode(m["salt"])
    expected = base64.b64decode(m["hash"])
    digest = _scrypt(pin, salt, int(m["n"]), int(m["r"]), int(m["p"]), len(expected))
    return hmac.compare_digest(digest, expected)


#: hashed once, on the first sign-in with an unknown name, so that costs what a wrong PIN costs
_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_pin("0" * 12)
    return _dummy_hash


# --- names ----------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """The name without surrounding spaces if it can name an operator, else OperatorError.

    At most 64 characters, no control characters, and at least one letter: a PIN typed into the
    name field is then never an operator's name, and :func:`authenticate` never journals it.
    """
    text = name.strip()
    if not text or len(text) > _NAME_MAX:
        raise OperatorError(_("an operator name is 1 to {max} characters").format(max=_NAME_MAX))
    if any(not ch.isprintable() for ch in text):
        raise OperatorError(_("an operator name cannot contain control characters"))
    if not any(ch.isalpha() for ch in text):
        raise OperatorError(_("operator name '{name}' needs at least one letter").format(name=text))
    return text


def _tried_name(name: str) -> str:
    """What a failed sign-in journals as the name: never something that could be a PIN."""
    text = name.strip()
    if not any(ch.isalpha() for ch in text):
        return "(withheld: no letter, maybe a PIN)"
    return text[:_NAME_MAX]


# --- management -----------------------------------------------------------------------------------


def has_operators(store: Store) -> bool:
    """Whether any operator (disabled ones count) was ever added: then sign-in is required."""
    return bool(store.operator_rows())


def list_operators(store: Store) -> list[Operator]:
    """Every operator in the order added, disabled ones included."""
    return [_public(r) for r in store.operator_rows()]


def add_operator(store: Store, name: str, role: Role, pin: str, *, actor: Actor) -> Operator:
    """Add an operator with a new PIN (journaled ``operator-added``, without the PIN or hash).

    OperatorError when the name is malformed or taken, the PIN is not 4 to 12 digits, or this is
    the first operator of the store and not a supervisor.
    """
    clean = check_name(name)
    role = Role(role)
    row = OperatorRow(clean, role.value, hash_pin(pin), False, 0, None)
    outcome = store.insert_operator(
        row,
        first_role=Role.SUPERVISOR.value,
        record_type="operator-added",
        actor=actor,
        payload={"operator": clean, "role": role.value},
    )
    if outcome == "name-taken":
        raise OperatorError(
            _("operator '{name}' already exists in {location}").format(
                name=clean, location=store.location
            )
        )
    if outcome == "first-role":
        raise OperatorError(
            _(
                "the first operator must be a supervisor: add '{name}' with --role supervisor"
            ).format(name=clean)
        )
    return _public(row)


def disable_operator(store: Store, name: str, *, actor: Actor) -> Operator:
    """Disable an operator for good (journaled ``operator-disabled``); their records stay.

    OperatorError for an unknown name, an operator already disabled, or the last active
    supervisor (without one nobody could resolve, void or manage operators any more).
    """
    for _attempt in range(_RETRIES):
        row = store.operator_row(name.strip())
        if row is None:
            raise OperatorError(
                _("no operator '{name}' in {location}").format(
                    name=name.strip(), location=store.location
                )
            )
        if row.disabled:
            raise OperatorError(_("operator '{name}' is already disabled").format(name=row.name))
        if row.role == Role.SUPERVISOR and not any(
            r.role == Role.SUPERVISOR and not r.disabled and r.name != row.name
            for r in store.operator_rows()
        ):
            raise OperatorError(
                _("'{name}' is the last active supervisor: add another supervisor first").format(
                    name=row.name
                )
            )
        new = replace(row, disabled=True)
        payload = {"operator": row.name, "role": row.role}
        done = store.update_operator(
            row, new, actor=actor, records=[("operator-disabled", payload)]
        )
        if done is not None:
            return _public(done)
    raise StoreError(
        _("operator '{name}' changed too often while being updated; try again").format(
            name=name.strip()
        )
    )


# --- sign-in --------------------------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _when(iso: str) -> datetime:
    value = datetime.fromisoformat(iso)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _shown(iso: str) -> str:
    return _when(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


def authenticate(
    store: Store,
    name: str,
    pin: str,
    *,
    station: str,
    clock: Callable[[], datetime] | None = None,
) -> Operator:
    """Check ``name`` and ``pin``; return the operator, or raise (every outcome journaled).

    AuthError (one message for an unknown name and a wrong PIN), OperatorLocked (until when),
    OperatorDisabled (only said once the PIN is right). ``clock`` returns the current aware
    datetime (default: now, UTC); tests pass their own.
    """
    now = (clock or _utc_now)()
    for _attempt in range(_RETRIES):
        row = store.operator_row(name.strip())
        if row is None:
            verify_pin(pin, _dummy())  # the same work as a wrong PIN
            _journal_failed(store, None, name, station, "unknown-operator")
            raise AuthError(_(AUTH_FAILED))
        actor = Actor(row.name, station)
        if row.locked_until is not None and now < _when(row.locked_until):
            _journal_failed(store, row, name, station, "locked")
            raise OperatorLocked(
                _("operator '{name}' is locked after {count} wrong PINs until {until}").format(
                    name=row.name, count=MAX_FAILED_ATTEMPTS, until=_shown(row.locked_until)
                ),
                locked_until=row.locked_until,
            )
        if row.locked_until is not None:
            unlocked = replace(row, locked_until=None, failed_attempts=0)
            payload = {"operator": row.name, "locked_until": row.locked_until}
            if (
                store.update_operator(
                    row, unlocked, actor=actor, records=[("operator-unlocked", payload)]
                )
                is None
            ):
                continue  # changed meanwhile: read it again
            row = unlocked
        if not verify_pin(pin, row.pin_hash):
            counted = _record_wrong_pin(store, row, actor, now)
            if counted is None:
                continue  # another attempt was counted meanwhile: count this one on top
            if counted.locked_until is not None:
                raise OperatorLocked(
                    _("{count} wrong PINs: operator '{name}' is locked until {until}").format(
                        count=MAX_FAILED_ATTEMPTS, name=row.name, until=_shown(counted.locked_until)
                    ),
                    locked_until=counted.locked_until,
                )
            raise AuthError(_(AUTH_FAILED))
        if row.disabled:
            _journal_failed(store, row, name, station, "disabled")
            raise OperatorDisabled(
                _("operator '{name}' is disabled and cannot sign in").format(name=row.name)
            )
        signed_in = replace(row, failed_attempts=0)
        payload = {"operator": row.name, "role": row.role}
        done = store.update_operator(row, signed_in, actor=actor, records=[("signed-in", payload)])
        if done is not None:
            return _public(done)
    raise StoreError(
        _("operator '{name}' changed too often while being updated; try again").format(
            name=name.strip()
        )
    )


def _journal_failed(
    store: Store, row: OperatorRow | None, name: str, station: str, reason: str
) -> None:
    payload: dict[str, Any] = {"operator": row.name if row else _tried_name(name), "reason": reason}
    if row is not None:
        payload["failed_attempts"] = row.failed_attempts
    store.append("sign-in-failed", actor=Actor(row.name if row else "-", station), payload=payload)


def _record_wrong_pin(
    store: Store, row: OperatorRow, actor: Actor, now: datetime
) -> OperatorRow | None:
    """Count one wrong PIN and lock at the limit, atomically; None when the row changed meanwhile."""
    failed = row.failed_attempts + 1
    records: list[tuple[str, Mapping[str, Any]]] = [
        (
            "sign-in-failed",
            {"operator": row.name, "reason": "wrong-pin", "failed_attempts": failed},
        )
    ]
    new = replace(row, failed_attempts=failed)
    if failed >= MAX_FAILED_ATTEMPTS:
        until = _iso(now + timedelta(minutes=LOCK_MINUTES))
        new = replace(row, failed_attempts=0, locked_until=until)
        records.append(
            (
                "operator-locked",
                {
                    "operator": row.name,
                    "failed_attempts": failed,
                    "minutes": LOCK_MINUTES,
                    "locked_until": until,
                },
            )
        )
    return store.update_operator(row, new, actor=actor, records=records)


# --- roles ----------------------------------------------------------------------------------------


def require_role(operator: Operator, role: Role, action: str) -> None:
    """PermissionDenied, naming the action and the role it needs, unless ``operator`` may do it."""
    if operator.disabled:
        raise OperatorDisabled(
            _("operator '{name}' is disabled: {action} refused").format(
                name=operator.name, action=action
            )
        )
    if _RANK[operator.role] < _RANK[Role(role)]:
        raise PermissionDenied(
            _("{action} needs the {role} role; operator '{name}' is a {current}").format(
                action=action,
                role=Role(role).value,
                name=operator.name,
                current=operator.role.value,
            )
        )
