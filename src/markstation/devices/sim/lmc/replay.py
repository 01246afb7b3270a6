"""Replay of a captured USB conversation into a simulated LMC board.

The host-to-device transfers of a capture go to :class:`~markstation.devices.sim.lmc.board.LmcBoard`
at their capture times; each reply's status word is compared with the board's own answer, so a
capture of the vendor software checks the board model (and shows what that session burned).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markstation.devices.lmc.codec import ENTRY_BYTES, PACKET_BYTES, Reply
from markstation.devices.lmc.pcap import bulk_transfers, read_pcap
from markstation.devices.sim.lmc.board import LmcBoard, ManualClock
from markstation.errors import DeviceProtocolError
from markstation.profiles import MachineProfile


@dataclass(frozen=True)
class Transfer:
    """One bulk transfer as seen on the wire: time, endpoint (bit 7 = IN) and payload."""

    timestamp: float
    endpoint: int
    payload: bytes


@dataclass
class ReplayReport:
    transfers: int = 0
    commands: int = 0
    list_packets: int = 0
    replies_compared: int = 0
    replies_matched: int = 0
    first_mismatches: list[str] = field(default_factory=list)
    strokes: list[list[tuple[float, float]]] = field(default_factory=list)
    burned_mm: float = 0.0

    @property
    def match_ratio(self) -> float:
        return self.replies_matched / self.replies_compared if self.replies_compared else 1.0


def replay(
    transfers: Iterable[Transfer],
    board: LmcBoard,
    clock: ManualClock,
    *,
    out_ep: int = 0x02,
    in_ep: int = 0x88,
) -> ReplayReport:
    """Feed a capture's host-to-device transfers on ``out_ep`` to ``board`` at their capture times
    (``clock`` must be the board's clock) and compare the status word of each reply on ``in_ep``
    with the board's own answer to the same command, in order."""
    report = ReplayReport()
    pending: deque[bytes] = deque()
    for t in transfers:
        clock.t = max(clock.t, t.timestamp)
        report.transfers += 1
        if t.endpoint == out_ep:
            if len(t.payload) == PACKET_BYTES:
                report.list_packets += 1
                board.packet(t.payload)
            elif len(t.payload) == ENTRY_BYTES:
                report.commands += 1
                answer = board.command(t.payload)
                if answer is not None:
                    pending.append(answer)
            else:
                raise DeviceProtocolError(
                    f"transfer {report.transfers}: {len(t.payload)} bytes on EP 0x{out_ep:02x} "
                    "is neither a command nor a list packet"
                )
        elif t.endpoint == in_ep and pending:
            ours = Reply.decode(pending.popleft())
            theirs = Reply.decode(t.payload)
            report.replies_compared += 1
            if ours.status == theirs.status:
                report.replies_matched += 1
            elif len(report.first_mismatches) < 10:
                report.first_mismatches.append(
                    f"transfer {report.transfers} at {t.timestamp:.6f}: board 0x{ours.status:04x}, "
                    f"capture 0x{theirs.status:04x}"
                )
    board.run_out()
    report.strokes = board.burned_strokes()
    report.burned_mm = sum(r.burn.burned_length_mm() for r in board.runs)
    return report


def replay_board(machine: MachineProfile | None = None) -> tuple[LmcBoard, ManualClock]:
    """A board for replaying a capture: realtime on the capture's clock, laser enabled (the
    capture starts after the vendor software initialised the board)."""
    clock = ManualClock()
    board = LmcBoard(machine, speed=1.0, clock=clock, laser_enabled=True)
    return board, clock


def replay_file(
    path: str | Path, machine: MachineProfile | None = None
) -> tuple[ReplayReport, LmcBoard]:
    """Replay a USBPcap capture file (bulk transfers of its first LMC board) into a fresh board."""
    transfers = bulk_transfers(read_pcap(path))
    devices = sorted({t.device for t in transfers if t.endpoint == 0x02})
    chosen = devices[0] if devices else None
    board, clock = replay_board(machine)
    report = replay(
        (Transfer(t.timestamp, t.endpoint, t.payload) for t in transfers if t.device == chosen),
        board,
        clock,
    )
    return report, board


def closed_strokes(strokes: Iterable[Sequence[tuple[float, float]]], tol_mm: float = 0.01) -> int:
    """How many strokes end where they start (closed outlines), dots excluded."""
    return sum(1 for s in strokes if len(s) > 2 and math.dist(s[0], s[-1]) <= tol_mm)
