"""Store failures on real filesystems: one line, the right words and exit status, never a traceback.

Disk full and read-only use a real small filesystem: a size-limited tmpfs, and a loop-mounted ext4
image with ``errors=remount-ro`` whose error trigger turns it read-only under open files (what a
failing disk does mid-batch). Both need mount rights (root in a container that allows it); the
tests skip with the reason where mounting is not allowed. Every mount is undone in the fixture's
``finally``.

What is not about the file itself (a store of another schema, no store yet, a store that lacks
some of markstation's tables, a read-only open) runs on both backends (``store_factory``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _cli import run
from _queue_fakes import FakeDriver, fast_builder, fast_estimator, sample_rows, write_csv
from _stores import StoreFactory
from markstation.errors import StoreCorrupt, StoreFull, StoreNotFound, StoreReadOnly
from markstation.job.ir import Job
from markstation.queue.batch import import_batch
from markstation.queue.models import Actor, Item
from markstation.queue.operator import QuietUI
from markstation.queue.runner import run_batch
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State
from markstation.queue.store import Store

ACTOR = Actor("J. Quispe", "station-1")


def _one_line(err: str, words: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {words}"), err


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise OSError(proc.stderr.strip() or f"mount exit {proc.returncode}")


def _umount(where: Path) -> None:
    proc = subprocess.run(["umount", str(where)], capture_output=True, timeout=30)
    if proc.returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (skipped where mounting is not allowed)."""
    where = tmp_path / "fs"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    try:
        _mount("-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(where))
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield where
    finally:
        _umount(where)


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A loop-mounted 16 MiB ext4 that remounts itself read-only on error: (mount point, trigger)."""
    if shutil.which("mkfs.ext4") is None or shutil.which("mount") is None:
        pytest.skip("no mkfs.ext4 or mount")
    image = tmp_path / "ext4.img"
    where = tmp_path / "ext4"
    where.mkdir()
    with image.open("wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, timeout=60)
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.decode(errors='replace').strip()}")
    try:
        _mount("-o", "loop,errors=remount-ro", str(image), str(where))
    except OSError as exc:
        pytest.skip(f"cannot loop-mount an ext4 image here: {exc}")
    try:
        source = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(where)], capture_output=True, text=True
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / os.path.basename(source) / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip(f"the kernel offers no {trigger} to turn the filesystem read-only")
        yield where, trigger
    finally:
        _umount(where)


def _fill(where: Path, leave: int = 0) -> Path:
    """Fill the filesystem at ``where`` (leaving about ``leave`` bytes); return the filler."""
    filler = where / "filler"
    chunk = b"\0" * 4096
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, chunk) > 0:
                pass
    finally:
        os.close(fd)
    if leave:
        size = filler.stat().st_size
        os.truncate(filler, max(size - leave, 0))
    return filler


def _store(where: Path, n: int = 3) -> SqliteStore:
    store = SqliteStore(where / "m.db", actor=ACTOR)
    import_batch(write_csv(where / "b.csv", sample_rows(n)), store, actor=ACTOR)
    return store


def _imported(store_factory: StoreFactory, tmp_path: Path, n: int) -> Store:
    """The store of ``store_factory`` with ``n`` items imported (on either backend)."""
    store = store_factory.open(actor=ACTOR)
    import_batch(write_csv(tmp_path / "b.csv", sample_rows(n)), store, actor=ACTOR)
    return store


def _contents(store_factory: StoreFactory) -> object:
    """What must not change: the file's bytes; every row of the server's tables."""
    if store_factory.backend == "sqlite":
        return Path(store_factory.location).read_bytes()
    return store_factory.dump()


def _run(store: SqliteStore, driver: FakeDriver, ui: QuietUI | None = None) -> None:
    run_batch(
        store,
        lambda: driver,
        operator=ACTOR.operator,
        station=ACTOR.station,
        ui=ui or QuietUI(),
        auto=True,
        build=fast_builder,
        estimator=fast_estimator,
    )


# --- files that are not stores ----------------------------------------------------------------


def test_zero_byte_file_is_refused_never_initialised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    db.touch()
    for args in (("batch", "status"), ("log", "verify"), ("batch", "run", "--dry-run", "d")):
        code, _, err = run(capsys, *args, "--db", str(db))
        assert code == 2
        _one_line(err, "empty file: ")
    code, _, err = run(
        capsys,
        "batch",
        "import",
        str(write_csv(tmp_path / "b.csv", sample_rows(2))),
        "--db",
        str(db),
    )
    assert code == 2 and "refusing to initialise over it" in err
    assert db.stat().st_size == 0 and not Path(str(db) + "-wal").exists()
    with pytest.raises(StoreCorrupt, match="0 bytes"):
        SqliteStore(db)


def test_garbage_and_foreign_sqlite_files_are_left_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    garbage = tmp_path / "g.db"
    garbage.write_bytes(b"PK\x03\x04 not a database" * 200)
    code, _, err = run(capsys, "batch", "status", "--db", str(garbage))
    assert code == 2
    _one_line(err, "not a markstation store: ")
    foreign = tmp_path / "f.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    code, _, err = run(
        capsys,
        "batch",
        "import",
        str(write_csv(tmp_path / "b.csv", sample_rows(1))),
        "--db",
        str(foreign),
    )
    assert code == 2 and "without markstation's tables" in err
    assert foreign.read_bytes() == before


def test_wrong_schema_version(
    capsys: pytest.CaptureFixture[str], store_factory: StoreFactory
) -> None:
    store_factory.open().close()
    store_factory.raw("UPDATE meta SET value = '7' WHERE key = 'schema'")
    code, _, err = run(capsys, "batch", "status", "--db", str(store_factory.location))
    assert code == 2
    _one_line(err, "wrong schema: ")
    assert "schema 7 is newer" in err
    if store_factory.backend == "postgres":  # nor does the migration touch it
        code, _, err = run(capsys, "db", "migrate", "--db", str(store_factory.location))
        assert code == 2
        _one_line(err, "wrong schema: ")
        assert "schema 7 is newer" in err


def test_older_schema_version(
    capsys: pytest.CaptureFixture[str], store_factory: StoreFactory
) -> None:
    store_factory.open().close()
    store_factory.raw("UPDATE meta SET value = '0' WHERE key = 'schema'")
    code, _, err = run(capsys, "batch", "status", "--db", str(store_factory.location))
    assert code == 2
    _one_line(err, "wrong schema: ")
    assert "store schema 0" in err
    if store_factory.backend == "postgres":
        assert "run 'markstation db migrate" in err


def test_store_lacking_some_tables_is_refused_and_left_untouched(
    capsys: pytest.CaptureFixture[str], store_factory: StoreFactory, tmp_path: Path
) -> None:
    _imported(store_factory, tmp_path, 1).close()
    runner_table = "runner" if store_factory.backend == "sqlite" else "runners"
    store_factory.raw(f"DROP TABLE {runner_table}")
    before = store_factory.dump()
    code, _, err = run(
        capsys,
        "batch",
        "import",
        str(write_csv(tmp_path / "c.csv", sample_rows(2))),
        "--db",
        str(store_factory.location),
    )
    assert code == 2
    _one_line(err, "not a markstation store: ")
    assert f"({runner_table} missing)" in err
    assert store_factory.dump() == before


def test_missing_store_only_import_creates_one(
    capsys: pytest.CaptureFixture[str], store_factory: StoreFactory, tmp_path: Path
) -> None:
    # a file in a directory that does not exist yet; an empty database
    if store_factory.backend == "sqlite":
        store_factory = StoreFactory("sqlite", tmp_path / "new" / "m.db")
    db = store_factory.location
    for args in (("batch", "status"), ("log", "verify"), ("batch", "skip", "X", "--reason", "r")):
        code, _, err = run(capsys, *args, "--db", str(db))
        assert code == 1
        _one_line(err, "missing: no store at ")
        assert not store_factory.exists()
    with pytest.raises(StoreNotFound):
        store_factory.open(mode="write")
    code, out, err = run(
        capsys,
        "batch",
        "import",
        str(write_csv(tmp_path / "b.csv", sample_rows(2))),
        "--db",
        str(db),
    )
    assert code == 0 and f"created a new store at {db}" in err and "imported 2 items" in out


@pytest.mark.timeout(60)
def test_locked_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with _store(tmp_path, 1):
        pass
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = run(
            capsys, "batch", "skip", "PE-SUCAMEC-2026-000001", "--reason", "r", "--db", str(db)
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    _one_line(err, "locked: ")


# --- disk full ---------------------------------------------------------------------------------


def test_disk_full_at_import_and_at_run_start(
    capsys: pytest.CaptureFixture[str], tmpfs: Path
) -> None:
    csv_file = write_csv(tmpfs / "b.csv", sample_rows(3))
    filler = _fill(tmpfs)
    code, _, err = run(capsys, "batch", "import", str(csv_file), "--db", str(tmpfs / "m.db"))
    assert code == 2
    _one_line(err, "disk full: ")
    assert not (tmpfs / "m.db").exists()  # no 0-byte store left behind to be refused later
    filler.unlink()
    assert run(capsys, "batch", "import", str(csv_file), "--db", str(tmpfs / "m.db"))[0] == 0
    filler = _fill(tmpfs)
    code, _, err = run(
        capsys, "batch", "run", "--device", "sim://lmc", "--auto", "--db", str(tmpfs / "m.db")
    )
    assert code == 2
    _one_line(err, "disk full: ")
    # reading still works on the full disk
    code, out, err = run(capsys, "batch", "status", "--db", str(tmpfs / "m.db"))
    assert code == 0 and "pending 3" in out, err
    filler.unlink()


def test_disk_full_mid_batch_after_the_burn(tmpfs: Path) -> None:
    """The outcome cannot be written: the item stays marking, is interrupted on the next open."""
    store = _store(tmpfs)
    second = store.items()[1].code
    fill: list[Path] = []

    def before_run(job: Job) -> None:
        if job.meta_dict()["mark_code"] == second:
            fill.append(_fill(tmpfs))

    driver = FakeDriver(before_run=before_run)
    with pytest.raises(StoreFull, match=r"^disk full: .*it stays marking") as caught:
        _run(store, driver)
    assert "no transaction is active" not in str(caught.value)
    assert [c for c, _ in driver.burned][:2] == [store.items()[0].code, second]
    store.close()
    fill[0].unlink()
    with SqliteStore(tmpfs / "m.db", actor=ACTOR) as again:
        assert again.recovered == [second]
        states = {it.code: it.state for it in again.items()}
        assert states[second] is State.INTERRUPTED
        assert list(states.values()).count(State.MARKED) == 1
        again.check_items_against_journal()


def test_disk_full_mid_batch_before_the_claim(tmpfs: Path) -> None:
    """The intent cannot be written: the driver is never called for that item."""
    store = _store(tmpfs)
    second = store.items()[1].code
    fill: list[Path] = []

    class FillingUI(QuietUI):
        def show_item(self, item: Item, position: int, total: int) -> None:
            if item.code == second:
                fill.append(_fill(tmpfs))

    driver = FakeDriver()
    with pytest.raises(StoreFull, match=r"^disk full: "):
        _run(store, driver, FillingUI())
    assert [c for c, _ in driver.burned] == [store.items()[0].code]
    store.close()
    fill[0].unlink()
    with SqliteStore(tmpfs / "m.db", actor=ACTOR) as again:
        assert again.recovered == []
        assert again.item(second).state is State.PENDING  # type: ignore[union-attr]
        again.check_items_against_journal()


# --- read-only ---------------------------------------------------------------------------------


def test_filesystem_turns_read_only_mid_batch(ext4: tuple[Path, Path]) -> None:
    where, trigger = ext4
    store = _store(where)
    second = store.items()[1].code

    def before_run(job: Job) -> None:
        if job.meta_dict()["mark_code"] == second:
            trigger.write_text("markstation test\n")

    driver = FakeDriver(before_run=before_run)
    with pytest.raises(StoreReadOnly, match=r"^read-only: .*it stays marking"):
        _run(store, driver)
    store.close()
    # an auditor can still read it where it is
    with SqliteStore(where / "m.db", actor=ACTOR, mode="read") as ro:
        assert ro.item(second).state is State.MARKING  # type: ignore[union-attr]
        assert any("crash recovery not done: read-only: " in n for n in ro.notes), ro.notes
        ro.check_items_against_journal()
    with pytest.raises(StoreReadOnly, match=r"^read-only: "):
        SqliteStore(where / "m.db", actor=ACTOR, mode="write")


def test_read_only_copy_status_verify_export(
    capsys: pytest.CaptureFixture[str], tmpfs: Path, tmp_path: Path
) -> None:
    db = tmpfs / "m.db"
    write_csv(tmpfs / "b.csv", sample_rows(3))
    assert run(capsys, "batch", "import", str(tmpfs / "b.csv"), "--db", str(db))[0] == 0
    code, _, err = run(
        capsys, "batch", "run", "--device", "sim://lmc", "--auto", "--limit", "2", "--db", str(db)
    )
    assert code == 0, err
    _mount("-o", "remount,ro", str(tmpfs))
    assert not Path(str(db) + "-shm").exists()  # so even mode=ro cannot work: immutable=1
    code, out, err = run(capsys, "batch", "status", "--db", str(db))
    assert code == 0 and "marked 2" in out and "pending 1" in out, err
    assert "opened it read-only" in err
    code, out, err = run(capsys, "log", "verify", "--db", str(db))
    assert code == 0 and "items ok: 3 rows" in out, err
    report = tmp_path / "report.csv"
    code, out, err = run(capsys, "log", "export", "--db", str(db), "-o", str(report))
    assert code == 0, err
    assert report.read_text().count("secondary-mark") == 3
    for args in (
        ("batch", "run", "--device", "sim://lmc", "--auto"),
        ("batch", "import", str(tmpfs / "b.csv")),
    ):
        code, _, err = run(capsys, *args, "--db", str(db))
        assert code == 2, err
        _one_line(err, "read-only: ")


def test_readonly_mode_on_a_writable_store_writes_nothing(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    with _imported(store_factory, tmp_path, 2):
        pass
    before = _contents(store_factory)
    with store_factory.open(mode="readonly") as ro:
        assert ro.readonly and len(ro.items()) == 2
        with pytest.raises(StoreReadOnly, match=r"^read-only: "):
            ro.acquire_runner(ACTOR)
        with pytest.raises(StoreReadOnly, match=r"^read-only: "):
            ro.append("run-started", actor=ACTOR, payload={})
    assert _contents(store_factory) == before
