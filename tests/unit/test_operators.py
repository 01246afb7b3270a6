"""Operators: PIN hashing, sign-in, lockout with a controllable clock, roles, and their journal."""

from __future__ import annotations

import base64
import hmac
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from markstation.errors import (
    AuthError,
    OperatorDisabled,
    OperatorError,
    OperatorLocked,
    PermissionDenied,
)
from markstation.queue import operators as ops
from markstation.queue.journal import canonical_json, verify
from markstation.queue.models import Actor
from markstation.queue.operators import (
    LOCK_MINUTES,
    MAX_FAILED_ATTEMPTS,
    Operator,
    Role,
    add_operator,
    authenticate,
    disable_operator,
    has_operators,
    list_operators,
    require_role,
)
from markstation.queue.sqlite import SqliteStore

ADMIN = Actor("setup", "bench-1")
SUP_PIN = "738291"
TECH_PIN = "40551234"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "m.db", actor=ADMIN) as s:
        yield s


@pytest.fixture
def staffed(store: SqliteStore) -> SqliteStore:
    add_operator(store, "Ana Quispe", Role.SUPERVISOR, SUP_PIN, actor=ADMIN)
    add_operator(store, "Luis", Role.TECHNICIAN, TECH_PIN, actor=Actor("Ana Quispe", "bench-1"))
    return store


def _types(store: SqliteStore) -> list[str]:
    return [r.type for r in store.records()]


def _raw_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM operators").fetchall()
    finally:
        conn.close()


# --- PIN storage -----------------------------------------------------------------------------------


def test_pin_is_stored_only_as_a_salted_scrypt_hash(staffed: SqliteStore) -> None:
    rows = _raw_rows(staffed.path)
    assert len(rows) == 2
    dump = repr(rows) + "".join(canonical_json(r.as_dict()) for r in staffed.records())
    assert SUP_PIN not in dump and TECH_PIN not in dump
    hashes = [r.pin_hash for r in staffed.operator_rows()]
    assert all(h.startswith("$scrypt$n=16384,r=8,p=1$") for h in hashes)
    assert SUP_PIN not in repr(staffed.operator_rows())  # repr hides even the hash
    assert "scrypt" not in repr(staffed.operator_rows())


def test_salt_differs_per_operator_even_for_the_same_pin(store: SqliteStore) -> None:
    add_operator(store, "Ana", Role.SUPERVISOR, "2468", actor=ADMIN)
    add_operator(store, "Beto", Role.TECHNICIAN, "2468", actor=ADMIN)
    a, b = (r.pin_hash.split("$") for r in store.operator_rows())
    assert a[3] != b[3]  # salt
    assert a[4] != b[4]  # hash
    assert len(base64.b64decode(a[3])) == 16


def test_parameters_travel_with_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "SCRYPT_N", 2**10)
    weaker = ops.hash_pin("9876")
    monkeypatch.undo()
    assert weaker.startswith("$scrypt$n=1024,r=8,p=1$")
    # current parameters differ, the stored ones are used
    assert ops.verify_pin("9876", weaker) and not ops.verify_pin("9875", weaker)
    assert not ops.verify_pin("9876", "plain-text-not-a-hash")


def test_compare_is_constant_time(staffed: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # what operators.verify_pin calls
    authenticate(staffed, "Luis", TECH_PIN, station="bench-1")
    assert len(calls) == 1
    with pytest.raises(AuthError):
        authenticate(staffed, "Luis", "0000", station="bench-1")
    # an unknown name costs the same scrypt work and comparison as a wrong PIN
    with pytest.raises(AuthError):
        authenticate(staffed, "Nobody", "0000", station="bench-1")
    assert len(calls) == 3


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", " ", "١٢٣٤", "12 34"])
def test_malformed_pins_are_refused(store: SqliteStore, pin: str) -> None:
    with pytest.raises(OperatorError, match="4 to 12 digits") as info:
        add_operator(store, "Ana", Role.SUPERVISOR, pin, actor=ADMIN)
    assert pin.strip() == "" or pin not in str(info.value)
    assert not has_operators(store)


# --- adding, listing, disabling --------------------------------------------------------------------


def test_first_operator_must_be_a_supervisor(store: SqliteStore) -> None:
    assert not has_operators(store)
    with pytest.raises(OperatorError, match="first operator must be a supervisor"):
        add_operator(store, "Luis", Role.TECHNICIAN, TECH_PIN, actor=ADMIN)
    assert not has_operators(store) and "operator-added" not in _types(store)
    add_operator(store, "Ana", Role.SUPERVISOR, SUP_PIN, actor=ADMIN)
    add_operator(store, "Luis", Role.TECHNICIAN, TECH_PIN, actor=ADMIN)
    assert has_operators(store)


def test_names_are_unique_ignoring_case_and_checked(staffed: SqliteStore) -> None:
    with pytest.raises(OperatorError, match="already exists"):
        add_operator(staffed, "  LUIS ", Role.TECHNICIAN, "1111", actor=ADMIN)
    for bad in ("", "123456", "x" * 65, "tab\there"):
        with pytest.raises(OperatorError):
            add_operator(staffed, bad, Role.TECHNICIAN, "1111", actor=ADMIN)
    assert [o.name for o in list_operators(staffed)] == ["Ana Quispe", "Luis"]


def test_list_and_add_journal(staffed: SqliteStore) -> None:
    assert list_operators(staffed) == [
        Operator("Ana Quispe", Role.SUPERVISOR, False, None),
        Operator("Luis", Role.TECHNICIAN, False, None),
    ]
    added = [r for r in staffed.records() if r.type == "operator-added"]
    assert [(r.operator, r.payload) for r in added] == [
        ("setup", {"operator": "Ana Quispe", "role": "supervisor"}),
        ("Ana Quispe", {"operator": "Luis", "role": "technician"}),
    ]


def test_disabled_operator_is_refused(staffed: SqliteStore) -> None:
    done = disable_operator(staffed, "luis", actor=Actor("Ana Quispe", "bench-1"))
    assert done == Operator("Luis", Role.TECHNICIAN, True, None)
    rec = list(staffed.records())[-1]
    assert rec.type == "operator-disabled" and rec.operator == "Ana Quispe"
    with pytest.raises(OperatorDisabled, match="disabled"):
        authenticate(staffed, "Luis", TECH_PIN, station="bench-1")
    # a wrong PIN does not even tell that the name exists
    with pytest.raises(AuthError) as info:
        authenticate(staffed, "Luis", "9999", station="bench-1")
    assert type(info.value) is AuthError
    with pytest.raises(OperatorError, match="already disabled"):
        disable_operator(staffed, "Luis", actor=ADMIN)
    assert has_operators(staffed)


def test_last_active_supervisor_cannot_be_disabled(staffed: SqliteStore) -> None:
    with pytest.raises(OperatorError, match="last active supervisor"):
        disable_operator(staffed, "Ana Quispe", actor=ADMIN)
    with pytest.raises(OperatorError, match="no operator 'Nobody'"):
        disable_operator(staffed, "Nobody", actor=ADMIN)
    add_operator(staffed, "Rosa", Role.SUPERVISOR, "5555", actor=ADMIN)
    disable_operator(staffed, "Ana Quispe", actor=ADMIN)
    with pytest.raises(OperatorError, match="last active supervisor"):
        disable_operator(staffed, "Rosa", actor=ADMIN)


# --- sign-in and lockout ---------------------------------------------------------------------------


def test_sign_in_and_one_message_for_unknown_name_and_wrong_pin(staffed: SqliteStore) -> None:
    op = authenticate(staffed, " luis ", TECH_PIN, station="bench-2")
    assert op == Operator("Luis", Role.TECHNICIAN, False, None)
    rec = list(staffed.records())[-1]
    assert (rec.type, rec.operator, rec.station) == ("signed-in", "Luis", "bench-2")

    with pytest.raises(AuthError) as wrong:
        authenticate(staffed, "Luis", "1111", station="bench-2")
    with pytest.raises(AuthError) as unknown:
        authenticate(staffed, "Pedro", "1111", station="bench-2")
    assert str(wrong.value) == str(unknown.value) == ops.AUTH_FAILED
    failed = [r for r in staffed.records() if r.type == "sign-in-failed"]
    assert [r.payload for r in failed] == [
        {"operator": "Luis", "reason": "wrong-pin", "failed_attempts": 1},
        {"operator": "Pedro", "reason": "unknown-operator"},
    ]


def test_a_pin_typed_as_the_name_is_not_journaled(staffed: SqliteStore) -> None:
    with pytest.raises(AuthError):
        authenticate(staffed, TECH_PIN, TECH_PIN, station="bench-1")
    dump = "".join(canonical_json(r.as_dict()) for r in staffed.records())
    assert TECH_PIN not in dump


def test_five_wrong_pins_lock_until_expiry(staffed: SqliteStore) -> None:
    clock = Clock()
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        with pytest.raises(AuthError) as info:
            authenticate(staffed, "Luis", "0000", station="b", clock=clock)
        assert type(info.value) is AuthError
    with pytest.raises(OperatorLocked) as locked:
        authenticate(staffed, "Luis", "0000", station="b", clock=clock)
    until = clock.now + timedelta(minutes=LOCK_MINUTES)
    assert locked.value.locked_until == until.isoformat(timespec="seconds")
    assert "2026-03-01 09:15:00 UTC" in str(locked.value)
    lock_rec = [r for r in staffed.records() if r.type == "operator-locked"]
    assert len(lock_rec) == 1 and lock_rec[0].payload["locked_until"] == locked.value.locked_until
    assert lock_rec[0].payload["failed_attempts"] == MAX_FAILED_ATTEMPTS
    assert list_operators(staffed)[1].locked_until == locked.value.locked_until

    # the right PIN does not help while locked, and is not even checked
    clock.advance(minutes=LOCK_MINUTES - 1)
    with pytest.raises(OperatorLocked, match="until 2026-03-01 09:15:00 UTC"):
        authenticate(staffed, "Luis", TECH_PIN, station="b", clock=clock)
    # the supervisor is not affected
    authenticate(staffed, "Ana Quispe", SUP_PIN, station="b", clock=clock)

    clock.advance(minutes=1, seconds=1)
    op = authenticate(staffed, "Luis", TECH_PIN, station="b", clock=clock)
    assert op.locked_until is None
    types = _types(staffed)
    assert types.count("sign-in-failed") == MAX_FAILED_ATTEMPTS + 1  # + the attempt while locked
    assert types[-2:] == ["operator-unlocked", "signed-in"]
    unlock = next(r for r in staffed.records() if r.type == "operator-unlocked")
    assert unlock.payload == {"operator": "Luis", "locked_until": locked.value.locked_until}
    dump = "".join(canonical_json(r.as_dict()) for r in staffed.records())
    assert TECH_PIN not in dump and "0000" not in dump
    assert verify(staffed.records()).records == len(types)


def test_after_expiry_the_count_starts_again(staffed: SqliteStore) -> None:
    clock = Clock()
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthError):
            authenticate(staffed, "Luis", "0000", station="b", clock=clock)
    clock.advance(minutes=LOCK_MINUTES)
    with pytest.raises(AuthError) as info:  # the lock expired: one wrong PIN is just wrong
        authenticate(staffed, "Luis", "0000", station="b", clock=clock)
    assert type(info.value) is AuthError
    assert staffed.operator_row("Luis") is not None
    row = staffed.operator_row("Luis")
    assert row is not None and row.failed_attempts == 1 and row.locked_until is None


def test_a_right_pin_resets_the_count(staffed: SqliteStore) -> None:
    clock = Clock()
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        with pytest.raises(AuthError):
            authenticate(staffed, "Luis", "0000", station="b", clock=clock)
    authenticate(staffed, "Luis", TECH_PIN, station="b", clock=clock)
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        with pytest.raises(AuthError) as info:
            authenticate(staffed, "Luis", "0000", station="b", clock=clock)
        assert type(info.value) is AuthError
    assert "operator-locked" not in _types(staffed)


def test_a_raced_update_is_retried_not_lost(
    staffed: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sign-ins that fail at once both count (the store's compare-and-set refuses the stale one)."""
    real = staffed.update_operator
    raced = False

    def update(*args: object, **kwargs: object) -> object:
        nonlocal raced
        if not raced:
            raced = True
            with SqliteStore(staffed.path, recover=False) as other, pytest.raises(AuthError):
                authenticate(other, "Luis", "0000", station="other")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(staffed, "update_operator", update)
    with pytest.raises(AuthError):
        authenticate(staffed, "Luis", "0000", station="b")
    row = staffed.operator_row("Luis")
    assert row is not None and row.failed_attempts == 2


# --- roles ---------------------------------------------------------------------------------------------


def test_require_role() -> None:
    tech = Operator("Luis", Role.TECHNICIAN, False, None)
    sup = Operator("Ana", Role.SUPERVISOR, False, None)
    require_role(tech, Role.TECHNICIAN, "mark")
    require_role(sup, Role.TECHNICIAN, "mark")  # a supervisor can do what a technician can
    require_role(sup, Role.SUPERVISOR, "batch resolve")
    with pytest.raises(PermissionDenied, match="batch resolve needs the supervisor role") as info:
        require_role(tech, Role.SUPERVISOR, "batch resolve")
    assert "'Luis' is a technician" in str(info.value)
    assert isinstance(info.value, PermissionError) and info.value.exit_code == 1
    with pytest.raises(OperatorDisabled):
        require_role(Operator("Old", Role.SUPERVISOR, True, None), Role.TECHNICIAN, "mark")


def test_operators_table_is_added_to_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE operators")  # as a store made before operators existed
    conn.commit()
    conn.close()
    with SqliteStore(path) as s:
        assert not has_operators(s)
        add_operator(s, "Ana", Role.SUPERVISOR, SUP_PIN, actor=ADMIN)
        assert has_operators(s)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM operators")
    conn.close()
