"""Build hook: compile the gettext catalogs (``.po`` -> ``.mo``) into the wheel with Babel.

``src/markstation/locale/<lang>/LC_MESSAGES/<domain>.po`` is what the repository holds (every
domain: ``markstation`` and ``markstation_cli``, the command line's help); the wheel gets the
``.mo`` beside it, which :mod:`markstation.i18n` reads with stdlib gettext (no Babel at run
time). Editable installs skip this: there ``markstation.i18n`` compiles the ``.po`` in memory.
``compile_catalogs`` is also what ``tests/unit/test_i18n.py`` checks the runtime compiler against.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the tests, where hatchling is not installed
    BuildHookInterface = object  # type: ignore[assignment,misc]

LOCALE = Path("src") / "markstation" / "locale"


def compile_catalogs(locale_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Compile every ``<lang>/LC_MESSAGES/<domain>.po`` under ``locale_dir`` into ``out_dir``.

    Returns the wheel path (``markstation/locale/…/<domain>.mo``) -> the written file. A fuzzy
    catalog or a message with a Babel check error (e.g. placeholders that differ) fails the build.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written: dict[str, Path] = {}
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        lang, domain = po.parent.parent.name, po.stem
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=domain)
        if catalog.fuzzy:
            raise RuntimeError(f"{po}: the catalog header is marked fuzzy; not compiling it")
        problems = [
            f"{po}:{message.lineno}: {error}"
            for message, errors in catalog.check()
            for error in errors
        ]
        if problems:
            raise RuntimeError("; ".join(problems))
        target = out_dir / lang / "LC_MESSAGES" / f"{domain}.mo"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            write_mo(fh, catalog)
        written[f"markstation/locale/{lang}/LC_MESSAGES/{domain}.mo"] = target
    return written


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Put the compiled catalogs into the wheel (not into editable wheels)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="markstation-mo-")
        out = Path(self._tmp.name)
        for wheel_path, mo in compile_catalogs(Path(self.root) / LOCALE, out).items():
            build_data["force_include"][str(mo)] = wheel_path

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.cleanup()
