"""The simulated LMC board under pyusb: a ``usb.backend.IBackend`` that pyusb drives unchanged.

``usb.core.find(idVendor=0x9588, idProduct=0x9899, backend=backend)`` finds the simulated
boards; the driver then talks to them exactly as to real hardware. The descriptors are those of
the captured board (USB 2.0, one configuration, interface 0 class 0xFF, bulk endpoints 0x01 / 0x81
/ 0x02 / 0x88, 512 bytes), with product "USBLMCV2", manufacturer "BJJCZ (simulated)".

URL options (``sim://lmc?…``): :mod:`markstation.devices.sim.lmc.options`. The driver reaches all
this only through the registry (:data:`SIM_TRANSPORT`), never by import.
"""

from __future__ import annotations

import array
import errno
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import usb.backend
import usb.core

from markstation.devices.lmc.codec import ENTRY_BYTES, PACKET_BYTES
from markstation.devices.lmc.pcap import PcapWriter
from markstation.devices.registry import SimulatedLink, SimulatedTransport
from markstation.devices.sim.faults import Fault
from markstation.devices.sim.ledger import Ledger
from markstation.devices.sim.lmc.board import LmcBoard
from markstation.devices.sim.lmc.options import SIM_OPTIONS, LmcSimOptions, parse_options
from markstation.devices.url import DeviceURL
from markstation.errors import ConfigError, DeviceProtocolError
from markstation.i18n import _
from markstation.profiles import MachineProfile

VID = 0x9588
PID = 0x9899
PRODUCT = "USBLMCV2"
MANUFACTURER = "BJJCZ (simulated)"
EP_OUT = 0x02
EP_IN = 0x88
EP_AUX_OUT = 0x01
EP_AUX_IN = 0x81

# libusb error codes, as pyusb's libusb1 backend reports them
_LIBUSB_ERROR_IO = -1
_LIBUSB_ERROR_NO_DEVICE = -4
_LIBUSB_ERROR_TIMEOUT = -7
_LIBUSB_ERROR_PIPE = -9
# USBD status codes for failed transfers in the capture (what USBPcap would log)
_USBD_STATUS_CANCELED = 0xC0010000
_USBD_STATUS_DEV_NOT_RESPONDING = 0xC0000005
_USBD_STATUS_STALL_PID = 0xC0000004

_address_counter = itertools.count(10)


# --- descriptors ----------------------------------------------------------------------------------


@dataclass
class _DeviceDescriptor:
    bus: int
    address: int
    port_number: int
    port_numbers: tuple[int, ...]
    speed: int = 3  # libusb LIBUSB_SPEED_HIGH
    bLength: int = 18
    bDescriptorType: int = 1
    bcdUSB: int = 0x0200
    bDeviceClass: int = 0
    bDeviceSubClass: int = 0
    bDeviceProtocol: int = 0
    bMaxPacketSize0: int = 64
    idVendor: int = VID
    idProduct: int = PID
    bcdDevice: int = 0x0000
    iManufacturer: int = 1
    iProduct: int = 2
    iSerialNumber: int = 3
    bNumConfigurations: int = 1


@dataclass
class _ConfigDescriptor:
    bLength: int = 9
    bDescriptorType: int = 2
    wTotalLength: int = 46
    bNumInterfaces: int = 1
    bConfigurationValue: int = 1
    iConfiguration: int = 0
    bmAttributes: int = 0xC0  # self-powered
    bMaxPower: int = 5  # 10 mA
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass
class _InterfaceDescriptor:
    bLength: int = 9
    bDescriptorType: int = 4
    bInterfaceNumber: int = 0
    bAlternateSetting: int = 0
    bNumEndpoints: int = 4
    bInterfaceClass: int = 0xFF
    bInterfaceSubClass: int = 0
    bInterfaceProtocol: int = 0
    iInterface: int = 0
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass
class _EndpointDescriptor:
    bEndpointAddress: int
    bLength: int = 7
    bDescriptorType: int = 5
    bmAttributes: int = 0x02
    wMaxPacketSize: int = 512
    bInterval: int = 0
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: list[int] = field(default_factory=list)


_ENDPOINTS = (EP_AUX_OUT, EP_AUX_IN, EP_OUT, EP_IN)


# --- one simulated device -------------------------------------------------------------------------


class SimDevice:
    """pyusb's opaque device (and handle): a board, its USB identity, its fault state."""

    def __init__(self, board: LmcBoard, *, bus: int, address: int, port: int) -> None:
        self.board = board
        self.descriptor = _DeviceDescriptor(
            bus=bus, address=address, port_number=port, port_numbers=(port,)
        )
        self.replies: deque[bytes] = deque()
        self.transfers = 0
        self.gone = False
        self.hung = False
        self.configuration = 0
        self.claimed: set[int] = set()
        self.open_handles = 0

    def strings(self) -> dict[int, str]:
        return {1: MANUFACTURER, 2: PRODUCT, 3: self.board.serial}


class SimLmcBackend(usb.backend.IBackend):  # type: ignore[misc]
    """The backend pyusb calls; one per simulator URL, holding one or more boards."""

    def __init__(
        self,
        boards: list[LmcBoard],
        *,
        fault: Fault | None = None,
        capture: PcapWriter | None = None,
    ) -> None:
        self.devices = [
            SimDevice(b, bus=1, address=next(_address_counter), port=i + 1)
            for i, b in enumerate(boards)
        ]
        self.fault = fault
        self.capture = capture
        self._lock = threading.RLock()

    @property
    def boards(self) -> list[LmcBoard]:
        return [d.board for d in self.devices]

    def close(self) -> None:
        """Let every board run out its list (as a board left alone would) and close the capture."""
        for dev in self.devices:
            dev.board.run_out()
        if self.capture is not None:
            self.capture.close()

    # --- enumeration and descriptors ---------------------------------------------------------------

    def enumerate_devices(self) -> Iterator[SimDevice]:
        return iter([d for d in self.devices if not d.gone])

    def get_parent(self, dev: SimDevice) -> None:
        return None

    def get_device_descriptor(self, dev: SimDevice) -> _DeviceDescriptor:
        return dev.descriptor

    def get_configuration_descriptor(self, dev: SimDevice, config: int) -> _ConfigDescriptor:
        if config != 0:
            raise IndexError(f"configuration index {config} does not exist")
        return _ConfigDescriptor()

    def get_interface_descriptor(
        self, dev: SimDevice, intf: int, alt: int, config: int
    ) -> _InterfaceDescriptor:
        # pyusb walks alternate settings until this raises: it must, or iteration never ends
        if config != 0 or intf != 0 or alt != 0:
            raise IndexError(f"interface ({intf}, {alt}) of configuration {config} does not exist")
        return _InterfaceDescriptor()

    def get_endpoint_descriptor(
        self, dev: SimDevice, ep: int, intf: int, alt: int, config: int
    ) -> _EndpointDescriptor:
        if config != 0 or intf != 0 or alt != 0 or not 0 <= ep < len(_ENDPOINTS):
            raise IndexError(f"endpoint {ep} of interface ({intf}, {alt}) does not exist")
        return _EndpointDescriptor(_ENDPOINTS[ep])

    # --- handles and configuration -----------------------------------------------------------------

    def open_device(self, dev: SimDevice) -> SimDevice:
        self._check_present(dev)
        dev.open_handles += 1
        return dev

    def close_device(self, dev_handle: SimDevice) -> None:
        dev_handle.open_handles = max(0, dev_handle.open_handles - 1)
        dev_handle.claimed.clear()
        if dev_handle.open_handles == 0:
            # the host let go: a board left alone runs out the list it holds (ledger ``end``)
            dev_handle.board.run_out()

    def set_configuration(self, dev_handle: SimDevice, config_value: int) -> None:
        self._check_present(dev_handle)
        if config_value not in (0, 1):
            raise usb.core.USBError("Invalid configuration", -2, errno.EINVAL)
        dev_handle.configuration = config_value

    def get_configuration(self, dev_handle: SimDevice) -> int:
        self._check_present(dev_handle)
        # a board that nobody configured yet still reports configuration 1 (as Linux sets it)
        return dev_handle.configuration or 1

    def set_interface_altsetting(self, dev_handle: SimDevice, intf: int, altsetting: int) -> None:
        if intf != 0 or altsetting != 0:
            raise usb.core.USBError("Invalid interface", -2, errno.EINVAL)

    def claim_interface(self, dev_handle: SimDevice, intf: int) -> None:
        self._check_present(dev_handle)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: SimDevice, intf: int) -> None:
        dev_handle.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: SimDevice, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: SimDevice, intf: int) -> None:
        return None

    def attach_kernel_driver(self, dev_handle: SimDevice, intf: int) -> None:
        return None

    def clear_halt(self, dev_handle: SimDevice, ep: int) -> None:
        self._check_present(dev_handle)

    def reset_device(self, dev_handle: SimDevice) -> None:
        self._check_present(dev_handle)
        dev_handle.board.reset()
        dev_handle.replies.clear()

    # --- transfers ---------------------------------------------------------------------------------

    def ctrl_transfer(
        self,
        dev_handle: SimDevice,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        self._check_present(dev_handle)
        get_descriptor = bmRequestType == 0x80 and bRequest == 0x06
        if not get_descriptor or wValue >> 8 != 3:
            raise usb.core.USBError(
                "Pipe error (request not supported)", _LIBUSB_ERROR_PIPE, errno.EPIPE
            )
        index = wValue & 0xFF
        if index == 0:
            raw = bytes([4, 3, 0x09, 0x04])  # one language: en-US
        else:
            text = dev_handle.strings().get(index)
            if text is None:
                raise usb.core.USBError(
                    "Pipe error (no such string)", _LIBUSB_ERROR_PIPE, errno.EPIPE
                )
            body = text.encode("utf-16-le")
            raw = bytes([2 + len(body), 3]) + body
        count = min(len(raw), len(data))
        data[:count] = array.array("B", raw[:count])
        return count

    def bulk_write(self, dev_handle: SimDevice, ep: int, intf: int, data: Any, timeout: int) -> int:
        payload = bytes(data)
        with self._lock:
            started = time.time()
            try:
                self._begin_transfer(dev_handle)
                if ep == EP_OUT:
                    self._deliver(dev_handle, payload)
                elif ep != EP_AUX_OUT:  # the licence-dongle endpoint takes and ignores data
                    raise usb.core.USBError("Invalid endpoint", _LIBUSB_ERROR_PIPE, errno.EPIPE)
            except usb.core.USBError as exc:
                self._log(dev_handle, ep, payload, started, _usbd_status(exc))
                raise
            self._log(dev_handle, ep, payload, started, 0)
            return len(payload)

    def bulk_read(self, dev_handle: SimDevice, ep: int, intf: int, buff: Any, timeout: int) -> int:
        with self._lock:
            started = time.time()
            try:
                self._begin_transfer(dev_handle)
                if ep != EP_IN or not dev_handle.replies:
                    # nothing to send: the board stays silent and the read times out
                    raise usb.core.USBTimeoutError(
                        "Operation timed out", _LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT
                    )
                reply = dev_handle.replies.popleft()
            except usb.core.USBError as exc:
                self._log(dev_handle, ep, b"", started, _usbd_status(exc))
                raise
            count = min(len(reply), len(buff))
            buff[:count] = array.array("B", reply[:count])
            self._log(dev_handle, ep, reply[:count], started, 0)
            return count

    def _deliver(self, dev: SimDevice, payload: bytes) -> None:
        board = dev.board
        try:
            if len(payload) == PACKET_BYTES:
                board.packet(payload)
            elif len(payload) == ENTRY_BYTES:
                reply = board.command(payload)
                if reply is not None:
                    dev.replies.append(reply)
            else:
                raise DeviceProtocolError(f"{len(payload)}-byte write")
        except DeviceProtocolError as exc:
            board.violations.append(
                f"transfer {dev.transfers}: {exc} (the board takes {ENTRY_BYTES} or {PACKET_BYTES})"
            )
            raise usb.core.USBError("Pipe error (stall)", _LIBUSB_ERROR_PIPE, errno.EPIPE) from None

    def _begin_transfer(self, dev: SimDevice) -> None:
        dev.transfers += 1
        dev.board.advance()  # the board runs on whether or not the host gets through
        fault = self.fault
        if fault is not None and dev.transfers == fault.at:
            if fault.kind == "timeout":
                dev.hung = True
            elif fault.kind == "disconnect":
                dev.board.unplug()
                dev.gone = True
            elif fault.kind == "interlock":
                dev.board.set_interlock(open=True)
            elif fault.kind == "reset":
                dev.board.reset()
                dev.replies.clear()
                raise usb.core.USBError(
                    "Input/Output Error (the board reset)", _LIBUSB_ERROR_IO, errno.ECONNRESET
                )
        self._check_present(dev)
        if dev.hung:
            raise usb.core.USBTimeoutError(
                "Operation timed out", _LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT
            )

    def _check_present(self, dev: SimDevice) -> None:
        if dev.gone:
            raise usb.core.USBError(
                "No such device (it may have been disconnected)",
                _LIBUSB_ERROR_NO_DEVICE,
                errno.ENODEV,
            )

    def _log(self, dev: SimDevice, ep: int, payload: bytes, started: float, status: int) -> None:
        if self.capture is not None:
            self.capture.bulk(
                started, dev.descriptor.address, ep, payload, status=status, done_at=time.time()
            )


def _usbd_status(exc: usb.core.USBError) -> int:
    if isinstance(exc, usb.core.USBTimeoutError):
        return _USBD_STATUS_CANCELED
    if getattr(exc, "backend_error_code", None) == _LIBUSB_ERROR_PIPE:
        return _USBD_STATUS_STALL_PID
    return _USBD_STATUS_DEV_NOT_RESPONDING


# --- construction from URL options -----------------------------------------------------------------


def make_sim_backend(
    options: Mapping[str, str], machine: MachineProfile
) -> tuple[SimLmcBackend, LmcBoard]:
    """The backend for ``sim://lmc?…`` options and its first board (``backend.boards`` has all).

    Unknown options and malformed values are ConfigError naming the URL option.
    """
    return _build(parse_options(options), machine)


def _build(opts: LmcSimOptions, machine: MachineProfile) -> tuple[SimLmcBackend, LmcBoard]:
    ledger = None
    if opts.ledger is not None:
        try:
            ledger = Ledger(opts.ledger)
        except OSError as exc:
            raise ConfigError(
                _("option 'ledger={ledger}': cannot create its folder ({strerror})").format(
                    ledger=opts.ledger, strerror=exc.strerror
                )
            ) from exc
    capture = PcapWriter(opts.capture) if opts.capture is not None else None
    boards = [
        LmcBoard(machine, serial=opts.board_serial(i), speed=opts.speed, ledger=ledger)
        for i in range(opts.boards)
    ]
    backend = SimLmcBackend(boards, fault=opts.fault, capture=capture)
    return backend, boards[0]


class _LmcSimTransport:
    """``sim://lmc`` as the registry offers it: a pyusb backend holding simulated boards."""

    options: tuple[str, ...] = SIM_OPTIONS

    def check_options(self, url: DeviceURL, options: Mapping[str, str]) -> None:
        parse_options(options)

    def open(
        self, url: DeviceURL, options: Mapping[str, str], machine: MachineProfile
    ) -> SimulatedLink:
        backend, board = make_sim_backend(options, machine)
        return SimulatedLink(transport=backend, simulator=board)


#: what :func:`markstation.devices.registry.simulated_transport` returns for ``sim://lmc``
SIM_TRANSPORT: SimulatedTransport = _LmcSimTransport()
