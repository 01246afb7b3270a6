"""One exception tree for everything a user or a device can cause.

Every class roots in :class:`MarkstationError`; the CLI turns any of them into a one-line message and
an exit status (1 for user errors, 2 for device or runtime failures) and never shows a traceback.
Where a stdlib type describes the failure well, the class also inherits it, so ``except TimeoutError``
or ``except ValueError`` still catch ours.
"""

from __future__ import annotations


class MarkstationError(Exception):
    """Root of every error markstation raises on purpose."""

    #: exit status the CLI uses for this error
    exit_code: int = 1


# --- user errors (exit 1) --------------------------------------------------------------------


class ConfigError(MarkstationError, ValueError):
    """A profile, URL or option is malformed; the message names the file and key at fault."""


class ProfileNotFound(ConfigError):
    """No machine, material or layout profile of that name."""


class JobError(MarkstationError, ValueError):
    """A job cannot be built or does not fit the machine or the layout."""


class CodeSchemeError(JobError):
    """A mark code does not match the layout's code scheme."""


class GlyphError(JobError):
    """The font lacks a character of the text to engrave."""


class TextTooSmallError(JobError):
    """Text below the layout's legal minimum character height."""


class OutOfFieldError(JobError):
    """A point of the job lies outside the lens field or the layout's safe area."""


class LimitError(JobError):
    """A power, speed or frequency outside the machine's limits."""


class SymbolError(JobError):
    """A 2D code cannot be encoded as asked (too much data for the size, bad option)."""


class VerifyError(JobError):
    """A 2D code did not decode back to the exact payload from the rendered burn."""


class WordError(MarkstationError, ValueError):
    """A G-code line GRBL would refuse while reading words; ``code`` is GRBL's error number.

    Raised by the G-code word splitter that the GRBL codec and simulator share; the simulator
    answers ``error:<code>`` with it.
    """

    def __init__(self, code: int) -> None:
        super().__init__(f"G-code word error (GRBL error:{code})")
        self.code = code


class BatchError(MarkstationError):
    """A registry batch file is invalid or an item cannot change state as asked."""


class OperatorError(MarkstationError, ValueError):
    """An operator cannot be added or changed as asked (name taken, bad PIN, last supervisor)."""


class AuthError(OperatorError):
    """Sign-in refused: the same message for an unknown name and a wrong PIN."""


class OperatorLocked(AuthError):
    """Too many wrong PINs: the operator is locked until ``locked_until`` (ISO UTC)."""

    def __init__(self, message: str, *, locked_until: str) -> None:
        super().__init__(message)
        self.locked_until = locked_until


class OperatorDisabled(AuthError):
    """The operator was disabled by a supervisor and can no longer sign in."""


class PermissionDenied(OperatorError, PermissionError):
    """The signed-in operator's role does not allow the action (both are named)."""


class StoreError(MarkstationError):
    """The queue store cannot be opened or is locked by another runner."""

    exit_code = 2


class StoreNotFound(StoreError):
    """No store at the path given (only commands that write, like ``batch import``, create one)."""

    exit_code = 1


class StoreFull(StoreError):
    """The disk (or quota) under the store is full: the change was not stored."""


class StoreReadOnly(StoreError):
    """The store (its file, directory or filesystem) cannot be written."""


class StoreLocked(StoreError):
    """Another process holds the store's write lock longer than the busy timeout."""


class StoreCorrupt(StoreError):
    """The file is not a markstation store: empty, not SQLite, damaged, or of another schema."""


class StoreUnreachable(StoreError):
    """A server store (PostgreSQL) cannot be reached, refused the credentials, or lost the
    connection; an outcome that could not be written is kept in the station's spool."""


class JournalError(MarkstationError):
    """The journal's hash chain is broken, or a record cannot be appended."""


# --- device and runtime errors (exit 2) ------------------------------------------------------


class DeviceError(MarkstationError):
    """A device failed or refused; ``may_have_emitted`` tells the caller what state it left.

    ``may_have_emitted`` is False only when it is certain that nothing that could fire the laser was
    sent (the failure happened before the first emission-capable byte). Anything else is True: the
    queue runner then records the item as *interrupted*, never as a retryable failure.
    """

    exit_code = 2

    def __init__(self, message: str, *, may_have_emitted: bool = True) -> None:
        super().__init__(message)
        self.may_have_emitted = may_have_emitted


class BackendUnavailable(DeviceError):
    """pyusb / libusb / pyserial support needed for this URL is not available."""


class DeviceNotFound(DeviceError):
    """No device answers at the URL given."""

    def __init__(self, message: str, *, may_have_emitted: bool = False) -> None:
        super().__init__(message, may_have_emitted=may_have_emitted)


class DevicePermissionError(DeviceError, PermissionError):
    """The OS refused access to the device (udev rule or WinUSB driver missing)."""

    def __init__(self, message: str, *, may_have_emitted: bool = False) -> None:
        super().__init__(message, may_have_emitted=may_have_emitted)


class DeviceTimeout(DeviceError, TimeoutError):
    """The device stopped answering within the allowed time."""


class DeviceDisconnected(DeviceError, ConnectionError):
    """The device went away (cable pulled, power lost)."""


class DeviceReset(DeviceError):
    """The device reset itself mid-conversation (GRBL banner, LMC board reset)."""


class DeviceAlarm(DeviceError):
    """The device reports an alarm state (GRBL ``ALARM:N``)."""


class DeviceProtocolError(DeviceError):
    """The device answered something the protocol does not allow."""


class InterlockOpen(DeviceError):
    """The safety interlock input is open; emission is refused or was stopped."""


class Aborted(DeviceError):
    """The run was aborted on request (operator, e-stop, Ctrl-C)."""


class SafetyLimitError(DeviceError):
    """The driver refused a job outside the machine profile's power, speed or field limits."""

    def __init__(self, message: str, *, may_have_emitted: bool = False) -> None:
        super().__init__(message, may_have_emitted=may_have_emitted)


class EmissionNotAllowed(SafetyLimitError):
    """A hardware-in-the-loop check tried to emit on real hardware without ``--allow-emission``.

    Nothing was sent (see :class:`markstation.hil.guard.GuardedDriver`).
    """


__all__ = [
    "Aborted",
    "AuthError",
    "BackendUnavailable",
    "BatchError",
    "CodeSchemeError",
    "ConfigError",
    "DeviceAlarm",
    "DeviceDisconnected",
    "DeviceError",
    "DeviceNotFound",
    "DevicePermissionError",
    "DeviceProtocolError",
    "DeviceReset",
    "DeviceTimeout",
    "EmissionNotAllowed",
    "GlyphError",
    "InterlockOpen",
    "JobError",
    "JournalError",
    "LimitError",
    "MarkstationError",
    "OperatorDisabled",
    "OperatorError",
    "OperatorLocked",
    "OutOfFieldError",
    "PermissionDenied",
    "ProfileNotFound",
    "SafetyLimitError",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreNotFound",
    "StoreReadOnly",
    "StoreUnreachable",
    "SymbolError",
    "TextTooSmallError",
    "VerifyError",
    "WordError",
]
