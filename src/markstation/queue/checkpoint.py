"""Checkpoints: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes, Ed25519 keys.

A checkpoint body is three lines (and optional extension lines), each ending in a newline::

    markstation/station-1
    1234
    kHX5m1X0Xh3WkE1pb5pC8mL1F1O0fV9a1dB3NnQ0xw0=

the origin (the station's key name), the tree size in decimal and the base64 root hash. The signed
note is the body, a blank line and one signature line per signer::

    — markstation/station-1 <base64(4-byte key hash ‖ 64-byte Ed25519 signature)>

The signature is over the body bytes; the key hash is the first four bytes of
``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)``; the verifier key is
``<name>+<hex key hash>+<base64(0x01 ‖ public key)>``, so any signed-note verifier (Go's
``golang.org/x/mod/sumdb/note``, Sigstore tooling) can check a station's checkpoints.

Pure: no files, no clock. Errors are :class:`~markstation.errors.JournalError` with the place named
(``where``: a file name, or "stored checkpoint 3").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from markstation.errors import JournalError
from markstation.i18n import _

ALG_ED25519 = 0x01
SIG_PREFIX = "— "  # U+2014 EM DASH, then a space
_NAME = re.compile(r"^[^\s+]+$")


def check_name(name: str, where: str = "key name") -> str:
    if not name or not _NAME.match(name) or not name.isprintable():
        raise JournalError(
            _(
                "{where}: '{name}' is not a valid signed-note key name (non-empty, no spaces, no '+')"
            ).format(where=where, name=name)
        )
    return name


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, where: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise JournalError(_("{where}: not valid base64").format(where=where)) from exc
    if b64(raw) != text:
        raise JournalError(_("{where}: not canonical base64").format(where=where))
    if size is not None and len(raw) != size:
        raise JournalError(
            _("{where}: {count} bytes, expected {size}").format(
                where=where, count=len(raw), size=size
            )
        )
    return raw


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A station's public key in C2SP signed-note verifier-key form."""

    name: str
    public: bytes  # 32-byte Ed25519 public key

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public)

    def __str__(self) -> str:
        return f"{self.name}+{self.hash.hex()}+{b64(bytes([ALG_ED25519]) + self.public)}"

    @classmethod
    def parse(cls, text: str, where: str = "verifier key") -> VerifierKey:
        parts = text.strip().split("+", 2)  # base64 may hold "+" too
        if len(parts) != 3:
            raise JournalError(
                _("{where}: not a verifier key (<name>+<hex key hash>+<base64 key>)").format(
                    where=where
                )
            )
        name, hexhash, key = parts
        check_name(name, where)
        raw = unb64(key, where)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise JournalError(_("{where}: not an Ed25519 verifier key").format(where=where))
        vk = cls(name, raw[1:])
        if hexhash != vk.hash.hex():
            raise JournalError(
                _("{where}: key hash {hexhash} does not match the key").format(
                    where=where, hexhash=hexhash
                )
            )
        return vk

    def verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: who (origin), how many leaves (size), and the root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse_body(cls, text: str, where: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise JournalError(
                _("{where}: the checkpoint does not end with a newline").format(where=where)
            )
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise JournalError(
                _("{where}: a checkpoint needs origin, size and root lines").format(where=where)
            )
        origin, size, root, *ext = lines
        if not origin or not origin.isprintable():
            raise JournalError(
                _("{where}:1: the origin line is empty or not printable").format(where=where)
            )
        if not re.fullmatch(r"0|[1-9][0-9]*", size):
            raise JournalError(
                _("{where}:2: tree size '{size}' is not a decimal number").format(
                    where=where, size=size
                )
            )
        hashed = unb64(root, _("{where}:3: root hash").format(where=where), 32)
        for n, line in enumerate(ext, 4):
            if not line or not line.isprintable():
                raise JournalError(
                    _("{where}:{n}: empty or unprintable extension line").format(where=where, n=n)
                )
        return cls(origin, int(size), hashed, tuple(ext))


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        return f"{SIG_PREFIX}{self.name} {b64(self.key_hash + self.signature)}\n"


@dataclass(frozen=True)
class SignedNote:
    """A checkpoint with its signature lines (none: an unsigned checkpoint, body only)."""

    checkpoint: Checkpoint
    signatures: tuple[Signature, ...] = field(default=())

    def text(self) -> str:
        body = self.checkpoint.body()
        if not self.signatures:
            return body
        return body + "\n" + "".join(s.line() for s in self.signatures)

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    def verify(self, key: VerifierKey, where: str) -> None:
        """Raise JournalError unless one signature line is a valid signature by ``key``."""
        if not self.signatures:
            raise JournalError(
                _(
                    "{where}: the checkpoint is not signed (the station had no key when it was made)"
                ).format(where=where)
            )
        ours = [s for s in self.signatures if s.name == key.name and s.key_hash == key.hash]
        if not ours:
            names = ", ".join(
                _("'{name}' (key {hash})").format(name=s.name, hash=s.key_hash.hex())
                for s in self.signatures
            )
            raise JournalError(
                _("{where}: signed by {names}, not by '{name}' (key {hash})").format(
                    where=where, names=names, name=key.name, hash=key.hash.hex()
                )
            )
        message = self.checkpoint.body().encode()
        if not any(len(s.signature) == 64 and key.verify(message, s.signature) for s in ours):
            raise JournalError(
                _("{where}: the signature by '{name}' does not verify (altered)").format(
                    where=where, name=key.name
                )
            )
        if self.checkpoint.origin != key.name:
            raise JournalError(
                _("{where}: origin '{origin}' is not the station '{name}'").format(
                    where=where, origin=self.checkpoint.origin, name=key.name
                )
            )

    @classmethod
    def parse(cls, text: str, where: str) -> SignedNote:
        if "\r" in text:
            raise JournalError(_("{where}: carriage return in a signed note").format(where=where))
        body, sep, sigs = text.rpartition("\n\n")
        if not sep:
            return cls(Checkpoint.parse_body(text, where))
        body += "\n"
        if "\n\n" in body:
            raise JournalError(
                _("{where}: blank line inside the checkpoint body").format(where=where)
            )
        checkpoint = Checkpoint.parse_body(body, where)
        if not sigs.endswith("\n"):
            raise JournalError(
                _("{where}: the last signature line has no newline").format(where=where)
            )
        first = body.count("\n") + 2
        signatures: list[Signature] = []
        for n, line in enumerate(sigs[:-1].split("\n"), first):
            if not line.startswith(SIG_PREFIX):
                raise JournalError(
                    _("{where}:{n}: not a signature line ('— name signature')").format(
                        where=where, n=n
                    )
                )
            name, _sep, blob = line[len(SIG_PREFIX) :].partition(" ")
            check_name(name, f"{where}:{n}")
            raw = unb64(blob, _("{where}:{n}: signature").format(where=where, n=n))
            if len(raw) < 5:  # other algorithms (e.g. witness cosignatures) are kept, unchecked
                raise JournalError(
                    _("{where}:{n}: signature too short ({count} bytes)").format(
                        where=where, n=n, count=len(raw)
                    )
                )
            signatures.append(Signature(name, raw[:4], raw[4:]))
        return cls(checkpoint, tuple(signatures))
