"""``markstation station-key …`` (the station's signing key) and ``markstation registry …``
(verification of an export on the registry's side, no store needed)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from markstation.cli.translate import Group
from markstation.errors import ConfigError
from markstation.i18n import _

if TYPE_CHECKING:
    from markstation.queue.checkpoint import VerifierKey
    from markstation.queue.keys import StationKey

FC = TypeVar("FC", bound=Callable[..., Any])


def key_file_option(f: FC) -> FC:
    return click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Station key file (env MARKSTATION_KEY; default: station.key in the user config "
        "directory).",
    )(f)


def key_path(key_file: Path | None) -> Path:
    from markstation.queue.keys import default_key_path

    return key_file or default_key_path()


def _passphrase(path: Path) -> Callable[[], bytes | None]:
    def ask() -> bytes | None:
        from markstation.queue.keys import PASSPHRASE_ENV

        if sys.stdin.isatty():
            return str(
                click.prompt(
                    _("passphrase for {path}").format(path=path), hide_input=True, err=True
                )
            ).encode()
        env = os.environ.get(PASSPHRASE_ENV)
        return env.encode() if env else None

    return ask


def load_station_key(key_file: Path | None) -> StationKey | None:
    """The station key, or None (with the plain warning) when there is none.

    A key file named explicitly (option or env) must exist; the default one may be missing.
    """
    from markstation.queue.keys import KEY_ENV, NO_KEY_WARNING, load_key

    path = key_path(key_file)
    if not path.exists() and key_file is None and not os.environ.get(KEY_ENV):
        click.echo(_("warning: {message}").format(message=_(NO_KEY_WARNING)), err=True)
        return None
    return load_key(path, _passphrase(path))


def station_verifier(key_file: Path | None, key: str | None = None) -> VerifierKey | None:
    """The key stored checkpoints are checked with: ``--key`` if given, else the station key's
    public half (no passphrase needed), else None."""
    from markstation.audit import read_verifier as read_pub
    from markstation.queue.keys import KEY_ENV, read_verifier

    if key is not None:
        return read_pub(key)
    path = key_path(key_file)
    if not path.exists() and key_file is None and not os.environ.get(KEY_ENV):
        return None
    return read_verifier(path)


# --- station-key ------------------------------------------------------------------------------


@click.group("station-key", cls=Group)
def station_key() -> None:
    """The station's Ed25519 signing key for journal checkpoints.

    With a key, every run, export and 'log checkpoint' ends in a checkpoint signed by this
    station, which nobody without the key can forge: a registry holding the public key can prove
    that an export is the history this station wrote. Without a key everything still works, but
    the journal is then only tamper-evident against accidents.
    """


@station_key.command("init")
@key_file_option
@click.option(
    "--name",
    default=None,
    help="Key name, also the checkpoints' origin line (default: markstation/<station>).",
)
@click.option("--station", envvar="MARKSTATION_STATION", default=None, help="Station name.")
@click.option(
    "--no-passphrase",
    is_flag=True,
    help="Store the key unencrypted (unattended stations; the file is still mode 0600).",
)
def init_cmd(
    key_file: Path | None, name: str | None, station: str | None, no_passphrase: bool
) -> None:
    """Generate the station key pair once (mode 0600) and print the public verifier key.

    The passphrase is asked on the terminal, or read from MARKSTATION_KEY_PASSPHRASE when there is
    no terminal. Writes KEY.pub (the verifier key) next to the key: send that to the registry.
    """
    import socket

    from markstation.queue.keys import (
        PASSPHRASE_ENV,
        default_key_name,
        generate,
        write_key,
    )

    path = key_path(key_file)
    if path.exists():
        raise ConfigError(
            _("{path}: a station key already exists (see 'station-key show')").format(path=path)
        )
    passphrase: bytes | None = None
    if not no_passphrase:
        if sys.stdin.isatty():
            passphrase = str(
                click.prompt(
                    _("passphrase for the new station key"),
                    hide_input=True,
                    confirmation_prompt=True,
                    err=True,
                )
            ).encode()
        elif os.environ.get(PASSPHRASE_ENV):
            passphrase = os.environ[PASSPHRASE_ENV].encode()
        else:
            raise ConfigError(
                _(
                    "no terminal to ask a passphrase on: set {env}, or give "
                    "--no-passphrase for an unattended station"
                ).format(env=PASSPHRASE_ENV)
            )
        if not passphrase:
            raise ConfigError(
                _("empty passphrase (give --no-passphrase to store the key unencrypted)")
            )
    key = generate(name or default_key_name(station or socket.gethostname()))
    pub = write_key(key, path, passphrase)
    click.echo(
        _("station key written to {path} (mode 0600); public key in {pub}:").format(
            path=path, pub=pub
        )
    )
    click.echo(str(key.verifier))


@station_key.command("show")
@key_file_option
@click.option(
    "--qr",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the verifier key as a QR code (PNG).",
)
def show_cmd(key_file: Path | None, qr: Path | None) -> None:
    """Print the public key in C2SP signed-note verifier-key form (no passphrase needed)."""
    from markstation.queue.keys import read_verifier

    path = key_path(key_file)
    vk = read_verifier(path)
    click.echo(str(vk))
    if qr is not None:
        write_qr(str(vk), qr)
        click.echo(_("QR code written to {qr}").format(qr=qr), err=True)


def write_qr(text: str, out: Path) -> None:
    """A PNG QR code of ``text`` (a verifier key, or a checkpoint's note text)."""
    import qrcode

    try:
        qrcode.make(text).save(str(out))
    except OSError as exc:
        raise ConfigError(
            _("{out}: cannot write the QR code ({reason})").format(
                out=out, reason=exc.strerror or exc
            )
        ) from exc


# --- registry ------------------------------------------------------------------------------


@click.group("registry", cls=Group)
def registry() -> None:
    """Registry-side checks of what a station sent: no store, only the files and the key."""


@registry.command("verify")
@click.argument("export", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key",
    required=True,
    metavar="PUB",
    help="The station's verifier key: a station.pub file, or the key text itself.",
)
@click.option(
    "--previous",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A checkpoint received earlier: the export must extend it.",
)
def registry_verify(export: Path, key: str, previous: Path | None) -> None:
    """Check a JSON Lines export (or a 'log prove' bundle) against the station's key.

    Every record against the export's checkpoint (inclusion proof), the checkpoint's signature,
    the item rows against the export record, and with --previous the consistency between the
    earlier and the new checkpoint. Exit 1 naming the first problem.
    """
    from markstation.audit import read_verifier, verify_export

    report = verify_export(export, read_verifier(key), previous=previous)
    click.echo(report.summary())
