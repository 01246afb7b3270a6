"""Moving bytes to and from an LMC board over pyusb: nothing here knows what the bytes mean.

A board is found by VID 0x9588 / PID 0x9899 through an explicit pyusb backend: the libusb bundled
with ``libusb-package`` for real hardware (no system libusb needed), or the simulated board's
backend for ``sim://lmc``. The same code path serves both.

Every ``usb.core`` error is turned into one of our :class:`DeviceError` classes here, so the driver
and the CLI never see a pyusb exception. ``may_have_emitted`` is left at its conservative default
(True); the driver, which knows whether anything that could fire was sent, corrects it.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import Any

from markstation.errors import (
    BackendUnavailable,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DevicePermissionError,
    DeviceReset,
    DeviceTimeout,
)
from markstation.i18n import N_, _

log = logging.getLogger(__name__)

VID = 0x9588
PID = 0x9899
#: clone boards enumerate with this PID until EzCad's firmware is pushed into them
PID_UNLOADED_CLONE = 0x9980
EP_OUT = 0x02
EP_IN = 0x88
INTERFACE = 0
COMMAND_BYTES = 12
REPLY_BYTES = 8
PACKET_BYTES = 3072

PERMISSION_HINT = N_(
    "on Linux install drivers/70-markstation.rules (see README, 'Devices'); on Windows bind WinUSB "
    "with Zadig (drivers/WINDOWS.md)"
)

# libusb error codes (pyusb's backend_error_code) and the errno values the simulator uses
_TIMEOUT_CODES = {-7}
_GONE_CODES = {-1, -4, -9}  # I/O error, no device, pipe
_ACCESS_CODES = {-3, -12}  # access denied; "not supported" = Windows vendor driver still bound
_BUSY_CODES = {-6}
_GONE_ERRNOS = {errno.ENODEV, errno.EPIPE, errno.EIO, errno.ESHUTDOWN}
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM}


def translate_usb_error(exc: BaseException, where: str) -> DeviceError:
    """The DeviceError subclass that says what ``exc`` (a usb.core error) means for the user."""
    import usb.core

    if isinstance(exc, DeviceError):
        return exc
    if isinstance(exc, usb.core.NoBackendError):
        return BackendUnavailable(f"{where}: no libusb backend ({exc})", may_have_emitted=False)
    code = getattr(exc, "backend_error_code", None)
    err = getattr(exc, "errno", None)
    text = getattr(exc, "strerror", None) or str(exc)
    if isinstance(exc, usb.core.USBTimeoutError) or code in _TIMEOUT_CODES:
        return DeviceTimeout(
            _("{where}: the board did not answer in time ({error})").format(where=where, error=text)
        )
    if code in _ACCESS_CODES or err in _ACCESS_ERRNOS:
        return DevicePermissionError(
            _("{where}: access to the USB board denied ({error}); {hint}").format(
                where=where, error=text, hint=_(PERMISSION_HINT)
            )
        )
    if code in _BUSY_CODES or err == errno.EBUSY:
        return DeviceError(
            _(
                "{where}: the board is in use by another program (close EzCad or the other "
                "markstation)"
            ).format(where=where),
            may_have_emitted=False,
        )
    if err == errno.ECONNRESET:
        return DeviceReset(
            _("{where}: the board reset itself ({error}); its list and state are lost").format(
                where=where, error=text
            )
        )
    if code in _GONE_CODES or err in _GONE_ERRNOS:
        return DeviceDisconnected(
            _("{where}: the board went away ({error}); check cable and power").format(
                where=where, error=text
            )
        )
    if isinstance(exc, usb.core.USBError):
        return DeviceError(f"{where}: USB error ({text})")
    return DeviceError(f"{where}: {type(exc).__name__}: {exc}")


def libusb_backend() -> Any:
    """pyusb's libusb1 backend on the libusb bundled with libusb-package (BackendUnavailable if none)."""
    try:
        import libusb_package
        import usb.core  # noqa: F401  (pyusb must be importable too)
    except ImportError as exc:
        raise BackendUnavailable(
            _(
                "USB support is not installed ({name}); install markstation with its dependencies"
            ).format(name=exc.name),
            may_have_emitted=False,
        ) from exc
    backend = libusb_package.get_libusb1_backend()
    if backend is None:
        raise BackendUnavailable(
            _("libusb could not be loaded (libusb-package has no library for this platform)"),
            may_have_emitted=False,
        )
    return backend


def find_boards(backend: Any, *, where: str, product: int = PID) -> list[Any]:
    """Every board with our VID and ``product`` on ``backend``, in bus order."""
    import usb.core

    try:
        return list(usb.core.find(find_all=True, idVendor=VID, idProduct=product, backend=backend))
    except (usb.core.USBError, usb.core.NoBackendError) as exc:
        raise translate_usb_error(exc, where) from exc


def usb_serial(device: Any) -> str:
    """The board's USB serial-number string, or "" when it has none or it cannot be read."""
    import usb.core
    import usb.util

    index = getattr(device, "iSerialNumber", 0)
    if not index:
        return ""
    try:
        return str(usb.util.get_string(device, index) or "")
    except (usb.core.USBError, ValueError, NotImplementedError):
        return ""


def select_board(
    backend: Any, *, where: str, serial: str | None = None, index: int | None = None
) -> Any:
    """Pick one board: by USB serial, by position, or the first one (DeviceNotFound if none)."""
    boards = find_boards(backend, where=where)
    if not boards:
        hint = _("check the cable and power")
        if find_boards(backend, where=where, product=PID_UNLOADED_CLONE):
            hint = _(
                "a clone board with PID 9980 is attached: it needs EzCad's firmware loaded first, "
                "which markstation does not do"
            )
        raise DeviceNotFound(
            _("{where}: no LMC board (USB 9588:9899) found; {hint}").format(where=where, hint=hint)
        )
    if serial is not None:
        for dev in boards:
            if usb_serial(dev) == serial:
                return dev
        seen = ", ".join(s for s in (usb_serial(d) for d in boards) if s) or _("none readable")
        raise DeviceNotFound(
            _("{where}: no LMC board with serial '{serial}' (found: {seen})").format(
                where=where, serial=serial, seen=seen
            )
        )
    if index is not None:
        if index >= len(boards):
            raise DeviceNotFound(
                _(
                    "{where}: index {index} asked, but {count} LMC board(s) attached "
                    "(index counts from 0)"
                ).format(where=where, index=index, count=len(boards))
            )
        return boards[index]
    return boards[0]


class LmcTransport:
    """One claimed board: 12-byte commands with 8-byte replies, and 3072-byte list packets.

    Each write+read pair runs under one lock, so a pedal watcher or an abort from another thread
    can never read the reply meant for someone else. Only timeouts are retried (a board that went
    away does not come back by asking again), and only when the caller says the command is safe to
    repeat.
    """

    def __init__(self, device: Any, *, where: str, timeout_s: float, retries: int) -> None:
        self.device = device
        self.where = where
        self.timeout_ms = max(1, round(timeout_s * 1000))
        self.retries = retries
        self._lock = threading.Lock()
        self._closed = False
        #: transfers done (for logs and benchmarks)
        self.transfers = 0

    @classmethod
    def open(
        cls,
        backend: Any,
        *,
        where: str,
        serial: str | None = None,
        index: int | None = None,
        timeout_s: float = 0.1,
        retries: int = 5,
    ) -> LmcTransport:
        import usb.core
        import usb.util

        device = select_board(backend, where=where, serial=serial, index=index)
        try:
            try:
                if device.is_kernel_driver_active(INTERFACE):
                    device.detach_kernel_driver(INTERFACE)
            except NotImplementedError:
                pass  # Windows and backends without kernel drivers
            device.set_configuration()
            usb.util.claim_interface(device, INTERFACE)
        except (usb.core.USBError, NotImplementedError) as exc:
            error = translate_usb_error(exc, where)
            error.may_have_emitted = False  # nothing was sent to the board yet
            raise error from exc
        return cls(device, where=where, timeout_s=timeout_s, retries=retries)

    # --- transfers ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        import usb.core

        try:
            written = self.device.write(EP_OUT, data, self.timeout_ms)
        except (usb.core.USBError, NotImplementedError, ValueError) as exc:
            raise translate_usb_error(exc, self.where) from exc
        finally:
            self.transfers += 1
        if written != len(data):
            raise DeviceTimeout(
                _("{where}: the board took {written} of {n_data} bytes").format(
                    where=self.where, written=written, n_data=len(data)
                )
            )

    def _read(self) -> bytes:
        import usb.core

        try:
            data = bytes(self.device.read(EP_IN, REPLY_BYTES, self.timeout_ms))
        except (usb.core.USBError, NotImplementedError, ValueError) as exc:
            raise translate_usb_error(exc, self.where) from exc
        finally:
            self.transfers += 1
        if len(data) != REPLY_BYTES:
            raise DeviceTimeout(
                _("{where}: short reply from the board ({n_data} of {REPLY_BYTES} bytes)").format(
                    where=self.where, n_data=len(data), REPLY_BYTES=REPLY_BYTES
                )
            )
        return data

    def command(
        self,
        payload: bytes,
        *,
        reply: bool = True,
        retry: bool = True,
        on_retry: Callable[[DeviceTimeout], None] | None = None,
    ) -> bytes | None:
        """Send one 12-byte command and (unless ``reply`` is False) return its 8-byte reply.

        ``retry`` allows up to ``retries`` further attempts after a timeout: only for commands that
        are harmless to run twice. A command that could start the laser is never repeated.
        """
        if len(payload) != COMMAND_BYTES:
            raise ValueError(f"a command is {COMMAND_BYTES} bytes, got {len(payload)}")
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(1, attempts + 1):
            with self._lock:
                self._check_open()
                try:
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("%s > %s", self.where, payload.hex(" ", 2))
                    self._write(payload)
                    if not reply:
                        return None
                    answer = self._read()
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("%s < %s", self.where, answer.hex(" ", 2))
                    return answer
                except DeviceTimeout as exc:
                    if attempt == attempts:
                        raise
                    log.warning("%s (attempt %d of %d)", exc, attempt, attempts)
                    if on_retry is not None:
                        on_retry(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def write_packet(self, packet: bytes) -> None:
        """Send one list packet (no reply). Never retried: a repeated packet would mark twice."""
        if len(packet) != PACKET_BYTES:
            raise ValueError(f"a list packet is {PACKET_BYTES} bytes, got {len(packet)}")
        with self._lock:
            self._check_open()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s > list packet %s…", self.where, packet[:24].hex(" ", 2))
            self._write(packet)

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceDisconnected(
                _("{where}: the connection is closed").format(where=self.where)
            )

    def close(self) -> None:
        """Release the interface and the handle; never raises (the board may be gone)."""
        import usb.core
        import usb.util

        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                usb.util.release_interface(self.device, INTERFACE)
            except (usb.core.USBError, NotImplementedError, ValueError) as exc:
                log.debug("%s: release_interface: %s", self.where, exc)
            try:
                usb.util.dispose_resources(self.device)
            except (usb.core.USBError, NotImplementedError, ValueError) as exc:
                log.debug("%s: dispose_resources: %s", self.where, exc)
