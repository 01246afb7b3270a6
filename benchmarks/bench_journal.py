"""Journal benchmark: the Merkle tree's cost per appended record, proof sizes, full verify time.

    python benchmarks/bench_journal.py [--records 100000]

1. tree overhead per record: N appends through the store's own append path (record + leaf + the
   subtrees it completes), in transactions of 1000, against the same rows inserted without the
   tree; the difference is what the tree adds on top of the commit (target ≤ 50 µs);
2. the fsynced commit itself (200 single-record appends, synchronous=FULL), for scale;
3. inclusion and consistency proof sizes at N (⌈log2 N⌉ hashes);
4. ``verify_store`` (every record, every stored node, every checkpoint) over N records (≤ 5 s).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from markstation.queue.journal import canonical_json, new_record, seal, verify_store
from markstation.queue.keys import generate
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore

ACTOR = Actor("bench", "bench-station")


def payload(i: int) -> dict[str, object]:
    return {
        "code": f"PE-SUCAMEC-2026-{i:06d}",
        "to": "marked",
        "outcome": "marked",
        "device_mark_time_s": 4.25,
        "job_sha256": "ab" * 32,
        "device": {"model": "LMC", "firmware": "1.0", "serial": "SIM0001", "url": "sim://lmc"},
    }


def chunk_with_tree(store: SqliteStore, start: int, size: int) -> float:
    t0 = time.perf_counter()
    with store._write():
        for i in range(start, start + size):
            store._append_in_tx("inspection", ACTOR, payload(i))
    return time.perf_counter() - t0


def chunk_without_tree(store: SqliteStore, start: int, size: int) -> float:
    """The same rows through the same record code, without the tree (the pre-tree append)."""
    conn = store._conn
    t0 = time.perf_counter()
    with store._write():
        for i in range(start, start + size):
            seq = (conn.execute("SELECT MAX(seq) FROM journal").fetchone()[0] or 0) + 1
            rec = new_record(seq, "inspection", operator="b", station="s", payload=payload(i))
            conn.execute(
                "INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.seq,
                    rec.type,
                    rec.time,
                    rec.operator,
                    rec.station,
                    canonical_json(rec.payload),
                    rec.prev_hash,
                    rec.hash,
                ),
            )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    n = ap.parse_args().records
    with tempfile.TemporaryDirectory() as tmp:
        base = SqliteStore(Path(tmp) / "base.db", actor=ACTOR)
        store = SqliteStore(Path(tmp) / "tree.db", actor=ACTOR)
        # chunks of 1000 alternate between the two stores, so a busy machine slows both alike;
        # the median of the per-chunk differences is the tree's cost
        diffs, with_tree, without = [], 0.0, 0.0
        for start in range(0, n, 1000):
            size = min(1000, n - start)
            a = chunk_with_tree(store, start, size)
            b = chunk_without_tree(base, start, size)
            with_tree, without = with_tree + a, without + b
            diffs.append((a - b) / size * 1e6)
        base.close()
        per = statistics.median(diffs)
        print(
            f"append {n} records: {with_tree / n * 1e6:.1f} µs/record with the tree, "
            f"{without / n * 1e6:.1f} µs without; tree overhead median {per:.1f} µs/record "
            f"(target ≤ 50) {'OK' if per <= 50 else 'OVER'}"
        )
        t0 = time.perf_counter()
        for i in range(200):
            store.append("inspection", actor=ACTOR, payload=payload(i))
        commit = (time.perf_counter() - t0) / 200 * 1e3
        print(f"fsynced single-record append (synchronous=FULL): {commit:.2f} ms/record")
        key = generate("markstation/bench-station")
        t0 = time.perf_counter()
        cp = seal(store, key, station=ACTOR.station, reason="bench")
        print(
            f"signed checkpoint of {cp.note().checkpoint.size} records: "
            f"{(time.perf_counter() - t0) * 1e3:.2f} ms"
        )
        size = store.head().records
        t0 = time.perf_counter()
        report, tree = verify_store(store, key=key.verifier)
        t_verify = time.perf_counter() - t0
        inc = tree.inclusion_proof(size // 3, size)
        con = tree.consistency_proof(size // 3, size)
        print(
            f"proofs at n={size}: inclusion {len(inc)} hashes ({len(inc) * 32} bytes), "
            f"consistency {len(con)} hashes; log2 n = {math.log2(size):.1f}"
        )
        print(
            f"log verify of {size} records (records, {sum(1 for _ in store.tree_nodes())} "
            f"stored nodes, {report.checkpoints} checkpoints): {t_verify:.2f} s "
            f"(target ≤ 5) {'OK' if t_verify <= 5 else 'OVER'}"
        )
        store.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
