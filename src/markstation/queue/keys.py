"""The station key: an Ed25519 key pair that signs the journal's checkpoints.

One file, mode 0600, in the user config directory (``station.key``; ``$MARKSTATION_KEY`` or an
explicit path instead), written once by ``markstation station-key init``::

    markstation station key 1
    verifier: markstation/station-1+1a2b3c4d+AU3k…
    -----BEGIN ENCRYPTED PRIVATE KEY-----      (PKCS#8; "PRIVATE KEY" without a passphrase)
    …
    -----END ENCRYPTED PRIVATE KEY-----

The verifier line (the public key, C2SP signed-note form) can be read without the passphrase, so
``log verify`` checks stored signatures unattended. A key file that others can read, or whose
private key does not match its verifier line, is refused. ``station.pub`` next to it holds the
verifier key alone: that is what goes to the registry.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from markstation.errors import ConfigError, JournalError
from markstation.i18n import N_, _
from markstation.queue.checkpoint import (
    Checkpoint,
    Signature,
    SignedNote,
    VerifierKey,
    check_name,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_ENV = "MARKSTATION_KEY"
PASSPHRASE_ENV = "MARKSTATION_KEY_PASSPHRASE"
MAGIC = "markstation station key 1"

#: the warning every signing command prints when there is no key
NO_KEY_WARNING = N_(
    "no station key: the checkpoint is not signed, so the journal is only tamper-evident against "
    "accidents, not against someone who can edit the store (run 'markstation station-key init')"
)


def default_key_path() -> Path:
    """``$MARKSTATION_KEY`` or ``<user config dir>/station.key``."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    from platformdirs import user_config_path

    return user_config_path("markstation", appauthor=False) / "station.key"


def public_path(key_path: Path) -> Path:
    return key_path.with_suffix(".pub")


def default_key_name(station: str) -> str:
    """``markstation/<station>`` with whitespace and '+' replaced (signed-note names cannot hold them)."""
    clean = "".join(
        "-" if ch.isspace() or ch == "+" or not ch.isprintable() else ch for ch in station
    )
    return f"markstation/{clean or 'station'}"


@dataclass(frozen=True)
class StationKey:
    name: str
    private: Ed25519PrivateKey
    path: Path | None = None

    @property
    def verifier(self) -> VerifierKey:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, raw)

    def sign(self, checkpoint: Checkpoint) -> SignedNote:
        if checkpoint.origin != self.name:
            raise JournalError(
                _("checkpoint origin '{origin}' is not the key's name '{name}'").format(
                    origin=checkpoint.origin, name=self.name
                )
            )
        sig = self.private.sign(checkpoint.body().encode())
        vk = self.verifier
        return SignedNote(checkpoint, (Signature(vk.name, vk.hash, sig),))


def generate(name: str) -> StationKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return StationKey(check_name(name), Ed25519PrivateKey.generate())


def write_key(key: StationKey, path: Path, passphrase: bytes | None) -> Path:
    """Write the key file (mode 0600, never over an existing file) and ``<name>.pub``."""
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    if path.exists():
        raise ConfigError(
            _(
                "{path}: a station key already exists; it signed earlier checkpoints — move it "
                "away yourself if you really mean to replace it"
            ).format(path=path)
        )
    enc = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    pem = key.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc).decode("ascii")
    text = f"{MAGIC}\nverifier: {key.verifier}\n{pem}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        pub = public_path(path)
        pub.write_text(f"{key.verifier}\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot write the station key ({error})").format(
                path=path, error=exc.strerror
            )
        ) from exc
    return pub


def _read(path: Path) -> tuple[VerifierKey, str]:
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise ConfigError(
            _("{path}: no station key there ('markstation station-key init')").format(path=path)
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            _("{path}: cannot read the station key ({error})").format(path=path, error=exc)
        ) from exc
    if sys.platform != "win32" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            _(
                "{path}: the station key is readable by others (mode {mode:o}); "
                "refusing to use it — 'chmod 600 {path}'"
            ).format(path=path, mode=stat.S_IMODE(st.st_mode))
        )
    lines = text.split("\n", 2)
    if len(lines) < 3 or lines[0] != MAGIC or not lines[1].startswith("verifier: "):
        raise ConfigError(_("{path}:1: not a markstation station key file").format(path=path))
    verifier = VerifierKey.parse(lines[1].removeprefix("verifier: "), f"{path}:2")
    return verifier, lines[2]


def read_verifier(path: Path) -> VerifierKey:
    """The public half of a key file, without the passphrase."""
    return _read(path)[0]


def is_encrypted(path: Path) -> bool:
    return "ENCRYPTED" in _read(path)[1].split("\n", 1)[0]


def load_key(path: Path, passphrase: Callable[[], bytes | None] | None = None) -> StationKey:
    """Load and check a key file; ``passphrase`` is asked only when the key is encrypted."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    verifier, pem = _read(path)
    secret = None
    if "ENCRYPTED" in pem.split("\n", 1)[0]:
        secret = passphrase() if passphrase else None
        if not secret:
            raise ConfigError(
                _(
                    "{path}: the station key is passphrase-protected and no passphrase was given "
                    "(terminal prompt, or ${env})"
                ).format(path=path, env=PASSPHRASE_ENV)
            )
    try:
        private = load_pem_private_key(pem.encode("ascii"), password=secret)
    except (ValueError, TypeError) as exc:
        message = (
            _("{path}: cannot unlock the station key (wrong passphrase or damaged key)")
            if secret
            else _("{path}: cannot unlock the station key (damaged key)")
        )
        raise ConfigError(message.format(path=path)) from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(_("{path}: not an Ed25519 key").format(path=path))
    key = StationKey(verifier.name, private, path)
    if key.verifier != verifier:
        raise ConfigError(
            _("{path}:2: the verifier line does not match the private key (edited)").format(
                path=path
            )
        )
    return key
