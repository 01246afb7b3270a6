"""The sans-serif font the previews and the PDF report write their labels in.

Pillow's built-in font has no accented letters, so Spanish labels ("diseño", "código") would come
out with empty boxes. A font that covers Latin-1 is looked up among the usual system places
(DejaVu or Liberation Sans on Linux, Arial or Segoe UI on Windows, Arial on macOS); none is
shipped with markstation. Where none is found, the text is folded to plain ASCII ("diseno") so
it stays readable in the built-in font.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from pathlib import Path

#: (directory, regular, bold), in order of preference
_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    (
        "/usr/share/fonts/truetype/liberation",
        "LiberationSans-Regular.ttf",
        "LiberationSans-Bold.ttf",
    ),
    ("/usr/share/fonts/liberation-sans", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    (os.path.expandvars("$WINDIR/Fonts"), "segoeui.ttf", "segoeuib.ttf"),
    (os.path.expandvars("$WINDIR/Fonts"), "arial.ttf", "arialbd.ttf"),
    ("C:/Windows/Fonts", "arial.ttf", "arialbd.ttf"),
    ("/System/Library/Fonts/Supplemental", "Arial.ttf", "Arial Bold.ttf"),
    ("/Library/Fonts", "Arial.ttf", "Arial Bold.ttf"),
)


@functools.cache
def system_sans() -> tuple[Path, Path] | None:
    """(regular, bold) font files of a system sans-serif with accented letters, or None."""
    for directory, regular, bold in _CANDIDATES:
        r, b = Path(directory) / regular, Path(directory) / bold
        if r.is_file() and b.is_file():
            return r, b
    return None


def ascii_fold(text: str) -> str:
    """``text`` without its accents ("señal" -> "senal"), for a font without accented letters."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
