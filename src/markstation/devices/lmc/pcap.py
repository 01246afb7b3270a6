"""Classic pcap files with USBPcap records (link type 249): bytes ↔ records, plus file helpers.

The format is what Wireshark reads and what the shared capture ``ThreeOvals.pcap`` is: a 24-byte
file header, then per record a 16-byte record header and the USBPcap packet — a little-endian
header (length u16, IRP id u64, status u32, URB function u16, info u8 with bit 0 = completion
coming back from the device, bus u16, device u16, endpoint u8 with bit 7 = IN, transfer type u8
(3 = bulk), data length u32, then for control transfers a stage byte), then the payload.

USBPcap writes two records per transfer: the submission (info 0) and the completion (info 1).
OUT data rides on the submission, IN data on the completion; :func:`bulk_transfers` picks those.
"""

from __future__ import annotations

import os
import struct
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from markstation.errors import ConfigError

LINKTYPE_USBPCAP = 249
TRANSFER_ISOCHRONOUS = 0
TRANSFER_INTERRUPT = 1
TRANSFER_CONTROL = 2
TRANSFER_BULK = 3
#: URB_FUNCTION_BULK_OR_INTERRUPT_TRANSFER, what the capture carries on its bulk records
FUNCTION_BULK = 0x0009
FUNCTION_CONTROL = 0x0008
INFO_COMPLETION = 0x01
SNAPLEN = 0xFFFF

_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_FILE_HEADER = struct.Struct("<IHHiIII")
_USB_HEADER = struct.Struct("<HQIHBHHBBI")  # 27 bytes


@dataclass(frozen=True)
class UsbRecord:
    """One USBPcap record."""

    timestamp: float
    endpoint: int
    transfer: int
    payload: bytes
    info: int = 0
    irp_id: int = 0
    status: int = 0
    function: int = FUNCTION_BULK
    bus: int = 1
    device: int = 1
    #: control transfers only: the stage byte after the common header
    stage: int | None = None

    @property
    def direction(self) -> str:
        """ "in" (device to host) or "out", from the endpoint's bit 7."""
        return "in" if self.endpoint & 0x80 else "out"

    @property
    def completion(self) -> bool:
        return bool(self.info & INFO_COMPLETION)


def _where(where: str) -> str:
    return where or "pcap"


def parse_pcap(data: bytes, *, where: str = "") -> list[UsbRecord]:
    """Every record of a classic pcap with link type 249; ConfigError naming the byte offset when the
    data is not that (a truncated last record is refused too)."""
    return list(iter_pcap(data, where=where))


def iter_pcap(data: bytes, *, where: str = "") -> Iterator[UsbRecord]:
    name = _where(where)
    if len(data) < _FILE_HEADER.size:
        raise ConfigError(f"{name}: not a pcap file (only {len(data)} bytes)")
    (magic,) = struct.unpack_from("<I", data, 0)
    if magic in (_MAGIC_US, _MAGIC_NS):
        endian = "<"
    else:
        (magic,) = struct.unpack_from(">I", data, 0)
        if magic not in (_MAGIC_US, _MAGIC_NS):
            raise ConfigError(
                f"{name}: not a classic pcap file (magic {data[:4].hex()}; pcapng is not supported, "
                "save as pcap in Wireshark)"
            )
        endian = ">"
    tick = 1e-9 if magic == _MAGIC_NS else 1e-6
    _, major, _, _, _, _, linktype = struct.unpack_from(endian + "IHHiIII", data, 0)
    if major != 2:
        raise ConfigError(f"{name}: pcap version {major} is not supported (2 expected)")
    if linktype != LINKTYPE_USBPCAP:
        raise ConfigError(
            f"{name}: link type {linktype} is not USBPcap ({LINKTYPE_USBPCAP}); capture with USBPcap"
        )
    rec_header = struct.Struct(endian + "IIII")
    offset = _FILE_HEADER.size
    index = 0
    while offset < len(data):
        index += 1
        if offset + rec_header.size > len(data):
            raise ConfigError(f"{name}: record {index} at byte {offset}: truncated record header")
        sec, frac, incl, _orig = rec_header.unpack_from(data, offset)
        start = offset + rec_header.size
        end = start + incl
        if end > len(data):
            raise ConfigError(f"{name}: record {index} at byte {offset}: truncated ({incl} bytes)")
        yield _parse_usb(data[start:end], sec + frac * tick, f"{name}: record {index}")
        offset = end


def _parse_usb(rec: bytes, timestamp: float, where: str) -> UsbRecord:
    if len(rec) < _USB_HEADER.size:
        raise ConfigError(f"{where}: {len(rec)} bytes is shorter than a USBPcap header")
    hlen, irp, status, function, info, bus, device, endpoint, transfer, dlen = (
        _USB_HEADER.unpack_from(rec, 0)
    )
    if hlen < _USB_HEADER.size or hlen > len(rec):
        raise ConfigError(f"{where}: USBPcap header length {hlen} is impossible")
    stage = (
        rec[_USB_HEADER.size] if transfer == TRANSFER_CONTROL and hlen > _USB_HEADER.size else None
    )
    payload = rec[hlen:]
    if dlen != len(payload):
        raise ConfigError(f"{where}: header says {dlen} data bytes, record holds {len(payload)}")
    return UsbRecord(
        timestamp=timestamp,
        endpoint=endpoint,
        transfer=transfer,
        payload=bytes(payload),
        info=info,
        irp_id=irp,
        status=status,
        function=function,
        bus=bus,
        device=device,
        stage=stage,
    )


def file_header() -> bytes:
    """The 24-byte header: little-endian, microsecond timestamps, link type 249."""
    return _FILE_HEADER.pack(_MAGIC_US, 2, 4, 0, 0, SNAPLEN, LINKTYPE_USBPCAP)


def encode_record(r: UsbRecord) -> bytes:
    """One record (record header + USBPcap header + payload)."""
    extra = b"" if r.stage is None else bytes([r.stage])
    hlen = _USB_HEADER.size + len(extra)
    usb = (
        _USB_HEADER.pack(
            hlen,
            r.irp_id,
            r.status,
            r.function,
            r.info,
            r.bus,
            r.device,
            r.endpoint,
            r.transfer,
            len(r.payload),
        )
        + extra
        + r.payload
    )
    micros = round(r.timestamp * 1e6)
    return struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(usb), len(usb)) + usb


def encode_pcap(records: Iterable[UsbRecord]) -> bytes:
    return file_header() + b"".join(encode_record(r) for r in records)


def read_pcap(path: str | os.PathLike[str]) -> list[UsbRecord]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from exc
    return parse_pcap(data, where=str(p))


@dataclass(frozen=True)
class BulkTransfer:
    """A bulk transfer that carried data: OUT data from its submission, IN data from its
    completion."""

    timestamp: float
    endpoint: int
    payload: bytes
    device: int = 1


def bulk_transfers(records: Iterable[UsbRecord]) -> list[BulkTransfer]:
    out = []
    for r in records:
        if r.transfer != TRANSFER_BULK or not r.payload:
            continue
        carries = r.completion if r.direction == "in" else not r.completion
        if carries:
            out.append(BulkTransfer(r.timestamp, r.endpoint, r.payload, r.device))
    return out


class PcapWriter:
    """Appends USBPcap records to a file as they happen, flushed per transfer so a crash leaves a
    readable capture. Records a bulk transfer the way USBPcap does: submission + completion."""

    def __init__(self, path: str | os.PathLike[str], *, bus: int = 1) -> None:
        self.path = Path(path)
        self.bus = bus
        self._lock = threading.Lock()
        self._irp = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - lives with self
        except OSError as exc:
            raise ConfigError(f"capture file {self.path}: cannot write ({exc.strerror})") from exc
        self._file.write(file_header())
        self._file.flush()
        # closed with the writer even when nobody calls close() (the simulator has no close hook)
        self._finalizer = weakref.finalize(self, self._file.close)

    def bulk(
        self,
        timestamp: float,
        device: int,
        endpoint: int,
        payload: bytes,
        *,
        status: int = 0,
        done_at: float | None = None,
    ) -> None:
        """One bulk transfer. ``status`` non-zero marks a failed one (USBD status code)."""
        with self._lock:
            if self._file is None:
                return
            self._irp += 1
            is_in = bool(endpoint & 0x80)
            common = {
                "endpoint": endpoint,
                "transfer": TRANSFER_BULK,
                "irp_id": self._irp,
                "bus": self.bus,
                "device": device,
            }
            submit = UsbRecord(timestamp, payload=b"" if is_in else payload, info=0, **common)
            done = UsbRecord(
                timestamp if done_at is None else done_at,
                payload=payload if is_in else b"",
                info=INFO_COMPLETION,
                status=status,
                **common,
            )
            self._file.write(encode_record(submit) + encode_record(done))
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._finalizer()
                self._file = None
