"""A verification grade for each 2D code, computed from the rendered burn (ISO/IEC TR 29158 ideas).

A hardware verifier grades a direct-part mark from a photograph. The preview has something better
and something worse: the exact design grid (where every module should be) and the burn as the
laser would leave it at the real spot width, but no optics, no surface texture and no glare. So
the grade here says whether the *job* produces a good symbol — spills, gaps, thin dots, damaged
finder patterns — not how a given reader will see a given part. Parameters, each graded A (4) to
F (0) and reported with a decimal (the margin to the next threshold):

- **decode** — zxing-cpp reads the payload exactly (A) or not (F);
- **cell contrast** ``CC = (ML - MD) / ML``, ML and MD the mean reflectance of the light and dark
  modules' sample apertures: A ≥ 30 %, B ≥ 25 %, C ≥ 20 %, D ≥ 15 %;
- **minimum reflectance** ``ML`` against the white reference: pass (A) at ≥ 5 %, else F;
- **cell modulation** — per data module ``MOD = 2 |R - GT| / (ML - MD)``, ``GT`` the global
  threshold half-way between ML and MD, 0 on the wrong side of GT; module grades A ≥ 0.50,
  B ≥ 0.40, C ≥ 0.30, D ≥ 0.20. As in ISO/IEC 15415, low modules are forgiven while the error
  correction can absorb them: at each grade level the modules below it are counted as damaged
  codewords (one codeword per module, the worst case), the unused error correction
  ``UEC = 1 - 2 d / p`` (``p`` = error-correction codewords) is graded A ≥ 0.62, B ≥ 0.50,
  C ≥ 0.37, D ≥ 0.25, and the best level reached wins;
- **fixed-pattern damage** — for Data Matrix the two legs of the finder L, the two clock tracks
  and the quiet-zone modules along the L (QR and Micro QR: finder squares and timing patterns);
  a module is damaged when its modulation grade is F. Each segment's grade is the lower of its
  worst module modulation and its damaged fraction (0 → A, ≤ 9 % B, ≤ 13 % C, ≤ 17 % D, else
  F); the parameter is the worst segment. (A simplification of the standard's per-segment tables.)
- **grid non-uniformity** — the largest distance, in modules, between a fixed-pattern dark
  module's burned centroid (taken inside its design cell, so at most 0.5 + a little) and its design
  centre: A ≤ 0.38, B ≤ 0.50, C ≤ 0.63, D ≤ 0.75. The preview knows the design grid exactly;
  a hardware verifier fits it from the finder and clock track.

The overall grade is the lowest parameter; its letter follows the numeric value (A ≥ 3.5, B ≥ 2.5,
C ≥ 1.5, D ≥ 0.5). Module reflectance is the mean over a disc of half a module's diameter at the
module centre. numpy and zxing-cpp load on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.ir import CodeRegion

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Gray = npt.NDArray[np.float64]

GRADE_LETTERS = ("A", "B", "C", "D", "F")
#: the sample aperture's diameter as a fraction of the module size
APERTURE_MODULES = 0.5

_CC = (0.30, 0.25, 0.20, 0.15)
_MOD = (0.50, 0.40, 0.30, 0.20)
_UEC = (0.62, 0.50, 0.37, 0.25)
_GNU = (0.38, 0.50, 0.63, 0.75)  # lower is better
_FPD = (0.0, 0.09, 0.13, 0.17)  # damaged fraction, lower is better
_MIN_REFLECTANCE = 0.05

#: ECC200 error-correction codewords of each square Data Matrix size (ISO/IEC 16022 table 7)
_DM_ECC_CODEWORDS = {
    10: 5, 12: 7, 14: 10, 16: 12, 18: 14, 20: 18, 22: 20, 24: 24, 26: 28, 32: 36, 36: 42,
    40: 48, 44: 56, 48: 68, 52: 84, 64: 112, 72: 144, 80: 192, 88: 224, 96: 272, 104: 336,
    120: 408, 132: 496, 144: 620,
}  # fmt: skip
#: share of a QR symbol's codewords spent on error correction, by level (approximate)
_QR_ECC_SHARE = {"L": 0.20, "M": 0.37, "Q": 0.52, "H": 0.64}


def letter(score: float) -> str:
    """The letter of a numeric grade: A ≥ 3.5, B ≥ 2.5, C ≥ 1.5, D ≥ 0.5, else F."""
    for value, name in zip((3.5, 2.5, 1.5, 0.5), "ABCD", strict=True):
        if score >= value - 1e-9:
            return name
    return "F"


def grade_value(name: str) -> float:
    """The lowest numeric grade a letter stands for (``"B"`` → 2.5); ConfigError for others."""
    key = name.strip().upper()
    if key not in GRADE_LETTERS:
        raise ConfigError(
            _("grade {name!r} is not one of {join}").format(
                name=name, join=", ".join(GRADE_LETTERS)
            )
        )
    return {"A": 3.5, "B": 2.5, "C": 1.5, "D": 0.5, "F": 0.0}[key]


def _score(value: float, thresholds: tuple[float, float, float, float]) -> float:
    """Continuous grade of a higher-is-better value: each letter's band is one unit wide."""
    t_a, t_b, t_c, t_d = thresholds
    if value >= t_a:
        return min(4.0, 3.5 + 0.5 * (value - t_a) / (t_a - t_b))
    for lo, hi, base in ((t_b, t_a, 2.5), (t_c, t_b, 1.5), (t_d, t_c, 0.5)):
        if value >= lo:
            return base + (value - lo) / (hi - lo)
    return max(0.0, 0.5 * value / t_d) if t_d > 0 else 0.0


def _score_low(value: float, thresholds: tuple[float, float, float, float]) -> float:
    """Continuous grade of a lower-is-better value."""
    return _score(-value, (-thresholds[0], -thresholds[1], -thresholds[2], -thresholds[3]))


@dataclass(frozen=True, slots=True)
class CodeGrade:
    """The grade of one 2D code; each parameter a numeric grade 0..4 (A = 4)."""

    decode: float
    cell_contrast: float
    minimum_reflectance: float
    cell_modulation: float
    fixed_pattern_damage: float
    grid_non_uniformity: float
    #: measured values behind the grades: CC, ML, worst FPD segment's damaged share, GNU
    cc: float
    ml: float
    fpd_worst: str
    gnu_modules: float

    @property
    def parameters(self) -> dict[str, float]:
        return {
            "decode": self.decode,
            "cell contrast": self.cell_contrast,
            "minimum reflectance": self.minimum_reflectance,
            "cell modulation": self.cell_modulation,
            "fixed pattern damage": self.fixed_pattern_damage,
            "grid non-uniformity": self.grid_non_uniformity,
        }

    @property
    def score(self) -> float:
        """The overall numeric grade: the lowest parameter."""
        return min(self.parameters.values())

    @property
    def letter(self) -> str:
        return letter(self.score)

    @property
    def weakest(self) -> str:
        """The parameter that sets the overall grade."""
        params = self.parameters
        return min(params, key=lambda k: params[k])

    def short(self) -> str:
        """``A (3.8)`` — the letter and the value rounded down to one decimal."""
        return f"{self.letter} ({math.floor(self.score * 10 + 1e-9) / 10:.1f})"


# --- fixed patterns ------------------------------------------------------------------------------


def fixed_segments(
    symbology: str, cols: int, rows: int, quiet_zone: int
) -> dict[str, list[tuple[int, int]]]:
    """(col, row) of each fixed-pattern segment's modules; quiet-zone modules may be negative."""
    seg: dict[str, list[tuple[int, int]]] = {}
    if symbology == "datamatrix":
        seg["finder L (left)"] = [(0, r) for r in range(rows)]
        seg["finder L (bottom)"] = [(c, rows - 1) for c in range(cols)]
        seg["clock track (top)"] = [(c, 0) for c in range(1, cols)]
        seg["clock track (right)"] = [(cols - 1, r) for r in range(1, rows - 1)]
        if quiet_zone > 0:
            seg["quiet zone"] = [(-1, r) for r in range(-1, rows + 1)] + [
                (c, rows) for c in range(cols + 1)
            ]
        return seg
    finders = [(0, 0)]
    if symbology == "qr":
        finders += [(cols - 7, 0), (0, rows - 7)]
    for i, (c0, r0) in enumerate(finders):
        seg[f"finder {i + 1}"] = [(c0 + c, r0 + r) for r in range(7) for c in range(7)]
    line = 6 if symbology == "qr" else 0
    stop = cols - 8 if symbology == "qr" else cols
    seg["timing (row)"] = [(c, line) for c in range(8, stop)]
    seg["timing (column)"] = [(line, r) for r in range(8, stop)]
    return {k: v for k, v in seg.items() if v}


def ecc_codewords(symbology: str, cols: int, rows: int, version: str = "") -> int:
    """Error-correction codewords of the symbol (exact for Data Matrix, estimated for QR)."""
    if symbology == "datamatrix" and cols == rows and cols in _DM_ECC_CODEWORDS:
        return _DM_ECC_CODEWORDS[cols]
    level = version.rsplit("-", 1)[-1] if "-" in version else ("M" if symbology == "qr" else "L")
    share = _QR_ECC_SHARE.get(level, 0.2)
    return max(2, round(cols * rows / 8 * 0.6 * share))


# --- grading a gray image ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grid:
    """Where the modules are in the image: module (c, r) centre = origin + (c+.5) u + (r+.5) v."""

    origin: tuple[float, float]
    u: tuple[float, float]  # one module along a row, in pixels
    v: tuple[float, float]  # one module down a column, in pixels

    def centre(self, c: float, r: float) -> tuple[float, float]:
        return (
            self.origin[0] + (c + 0.5) * self.u[0] + (r + 0.5) * self.v[0],
            self.origin[1] + (c + 0.5) * self.u[1] + (r + 0.5) * self.v[1],
        )

    @property
    def module_px(self) -> float:
        return math.hypot(*self.u)


def _samples(gray: Gray, grid: Grid, cells: Sequence[tuple[int, int]]) -> Gray:
    """Mean reflectance over the sample aperture at each cell's centre (0 outside the image)."""
    import numpy as np

    radius = max(0.5, APERTURE_MODULES * grid.module_px / 2)
    k = math.ceil(radius)
    dy, dx = np.mgrid[-k : k + 1, -k : k + 1]
    offsets = np.hypot(dx, dy) <= radius
    ox, oy = dx[offsets], dy[offsets]
    h, w = gray.shape
    if not cells:
        return np.zeros(0)
    # every cell at once: centres (n,), then the aperture's pixels (n, m), same floor and clamp
    # as one cell at a time
    cr = np.asarray(cells, dtype=float)
    cx = grid.origin[0] + (cr[:, 0] + 0.5) * grid.u[0] + (cr[:, 1] + 0.5) * grid.v[0]
    cy = grid.origin[1] + (cr[:, 0] + 0.5) * grid.u[1] + (cr[:, 1] + 0.5) * grid.v[1]
    xs = np.clip(np.floor(cx).astype(int)[:, None] + ox[None, :], 0, w - 1)
    ys = np.clip(np.floor(cy).astype(int)[:, None] + oy[None, :], 0, h - 1)
    result: Gray = gray[ys, xs].mean(axis=1)
    return result


def _centroid_error(gray: Gray, grid: Grid, cells: Sequence[tuple[int, int]]) -> float:
    """Largest distance (modules) between a dark cell's darkness centroid and its design centre.

    Every cell at once: the same window, floor and clamp, and the same operations per cell as one
    cell at a time (each cell's sums over its own window, in the same order), so the same value;
    ``tests/unit/test_grade.py`` checks it against the cell-by-cell loop it replaced.
    """
    import numpy as np

    m = grid.module_px
    k = max(1, math.ceil(0.75 * m))  # covers the cell at any rotation
    dy, dx = np.mgrid[-k : k + 1, -k : k + 1]
    h, w = gray.shape
    if not cells:
        return 0.0
    cr = np.asarray(cells, dtype=float)
    c, r = cr[:, 0], cr[:, 1]
    (ox, oy), (ux, uy), (vx, vy) = grid.origin, grid.u, grid.v
    cx = (ox + (c + 0.5) * ux + (r + 0.5) * vx)[:, None, None]
    cy = (oy + (c + 0.5) * uy + (r + 0.5) * vy)[:, None, None]
    xs = np.floor(cx).astype(int) + dx
    ys = np.floor(cy).astype(int) + dy
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    # darkness inside the design cell (half a module either side of its centre on both axes)
    px, py = xs + 0.5 - cx, ys + 0.5 - cy
    along_u = (px * ux + py * uy) / (m * m)
    along_v = (px * vx + py * vy) / (m * m)
    window = inside & (np.abs(along_u) <= 0.5) & (np.abs(along_v) <= 0.5)
    weight = np.where(window, 1.0 - gray[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)], 0.0)
    n = len(cells)
    total = weight.reshape(n, -1).sum(axis=1)
    sum_x = (weight * px).reshape(n, -1).sum(axis=1)
    sum_y = (weight * py).reshape(n, -1).sum(axis=1)
    worst = 0.0
    for t, sx, sy in zip(total.tolist(), sum_x.tolist(), sum_y.tolist(), strict=True):
        if t <= 1e-9:
            worst = max(worst, 1.0)
            continue
        worst = max(worst, math.hypot(sx / t, sy / t) / m)
    return worst


def grade_gray(
    gray: Gray,
    matrix: Sequence[str],
    grid: Grid,
    *,
    symbology: str,
    decoded: bool,
    quiet_zone: int = 1,
    version: str = "",
) -> CodeGrade:
    """Grade a symbol seen as ``gray`` (reflectance 0..1, dark modules dark) on a known grid."""
    import numpy as np

    rows, cols = len(matrix), len(matrix[0])
    segments = fixed_segments(symbology, cols, rows, quiet_zone)

    def dark(c: int, r: int) -> bool:
        return 0 <= r < rows and 0 <= c < cols and matrix[r][c] == "1"

    fixed = {cell for cells in segments.values() for cell in cells}
    symbol_cells = [(c, r) for r in range(rows) for c in range(cols)]
    reflect = _samples(gray, grid, symbol_cells)
    is_dark = np.array([dark(c, r) for c, r in symbol_cells])
    ml = float(reflect[~is_dark].mean()) if (~is_dark).any() else 1.0
    md = float(reflect[is_dark].mean()) if is_dark.any() else 0.0
    cc = (ml - md) / ml if ml > 1e-9 else 0.0
    gt = (ml + md) / 2
    span = ml - md

    def modulation(values: Gray, dark_cells: npt.NDArray[np.bool_]) -> Gray:
        if span <= 1e-9:
            return np.zeros(len(values))
        signed = np.where(dark_cells, gt - values, values - gt)
        return np.clip(2 * signed / span, 0.0, None)

    mods = modulation(reflect, is_dark)
    mod_scores = np.array([_score(float(v), _MOD) for v in mods])
    data = np.array([cell not in fixed for cell in symbol_cells])
    cm = _modulation_grade(mod_scores[data], ecc_codewords(symbology, cols, rows, version))

    fpd = 4.0
    worst_segment = ""
    for name, cells in segments.items():
        seg_reflect = _samples(gray, grid, cells)
        seg_dark = np.array([dark(c, r) for c, r in cells])
        seg_scores = np.array([_score(float(v), _MOD) for v in modulation(seg_reflect, seg_dark)])
        damaged = float(np.mean(seg_scores < 0.5))
        grade = min(float(seg_scores.min()), 4.0 if damaged == 0 else _score_low(damaged, _FPD))
        if grade < fpd:
            fpd, worst_segment = grade, name
    dark_fixed = [cell for cell in sorted(fixed) if dark(*cell)]
    gnu = _centroid_error(gray, grid, dark_fixed) if dark_fixed else 0.0
    return CodeGrade(
        decode=4.0 if decoded else 0.0,
        cell_contrast=_score(cc, _CC),
        minimum_reflectance=4.0 if ml >= _MIN_REFLECTANCE else 0.0,
        cell_modulation=cm,
        fixed_pattern_damage=fpd,
        grid_non_uniformity=_score_low(gnu, _GNU),
        cc=cc,
        ml=ml,
        fpd_worst=worst_segment,
        gnu_modules=gnu,
    )


def _modulation_grade(scores: Gray, ecc: int) -> float:
    """Cell modulation with the error-correction allowance (see the module docstring)."""
    if not len(scores):
        return 4.0
    best = 0.0
    for level in (4.0, 3.0, 2.0, 1.0):
        floor = level - 0.5
        below = int((scores < floor - 1e-9).sum())
        uec = 1.0 - 2.0 * below / ecc if ecc > 0 else (1.0 if below == 0 else 0.0)
        above = scores[scores >= floor - 1e-9]
        level_grade = float(above.min()) if len(above) else 0.0
        best = max(best, min(level_grade, _score(uec, _UEC)))
    return best


# --- grading a code of a job ---------------------------------------------------------------------


def design_grid(
    bbox: tuple[float, float, float, float],
    module_mm: float,
    cols: int,
    rows: int,
    *,
    px_per_mm: float,
    pad_px: int,
    angle_deg: float,
) -> Grid:
    """The design grid of a symbol centred in ``bbox`` (mm) and turned ``angle_deg`` (CCW, y up).

    Pixel coordinates are those of the raster of ``bbox`` at ``px_per_mm`` padded by ``pad_px``.
    """
    x0, _y0, _x1, y1 = bbox
    cx_mm, cy_mm = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    a = math.radians(angle_deg)
    step = module_mm * px_per_mm
    # the symbol's +x (along a row) and -y (down a column) in mm, turned, then into image pixels
    u = (math.cos(a) * step, -math.sin(a) * step)
    v = (math.sin(a) * step, math.cos(a) * step)
    centre = ((cx_mm - x0) * px_per_mm + pad_px, (y1 - cy_mm) * px_per_mm + pad_px)
    origin = (
        centre[0] - cols / 2 * u[0] - rows / 2 * v[0],
        centre[1] - cols / 2 * u[1] - rows / 2 * v[1],
    )
    return Grid(origin, u, v)


def best_orientation(
    gray: Gray, matrix: Sequence[str], make: Callable[[float], Grid], angle_deg: float
) -> Grid:
    """The grid of the four quarter turns of ``angle_deg`` whose samples best match the matrix."""
    import numpy as np

    rows, cols = len(matrix), len(matrix[0])
    cells = [(c, r) for r in range(rows) for c in range(cols)]
    want = np.array([matrix[r][c] == "1" for c, r in cells])
    best: tuple[float, Grid] | None = None
    for turn in (0.0, 90.0, 180.0, 270.0):
        grid = make(angle_deg + turn)
        values = _samples(gray, grid, cells)
        match = float(np.mean((values < np.median(values)) == want))
        if best is None or match > best[0] + 1e-9:
            best = (match, grid)
    assert best is not None
    return best[1]


def grade_code(
    gray_u8: npt.NDArray[np.uint8],
    code: CodeRegion,
    *,
    px_per_mm: float,
    pad_px: int,
    decoded: bool,
    angle_deg: float | None,
) -> CodeGrade:
    """Grade ``code`` as the decode raster shows it (uint8, 255 = light, ``pad_px`` border).

    ``angle_deg`` is the symbol's turn (CCW, y up) as the decoder saw it; None when it did not
    decode, then an unturned symbol is assumed (a turned one grades F on everything).
    """
    import numpy as np

    gray = np.asarray(gray_u8, dtype=np.float64) / 255.0
    rows, cols = len(code.matrix), len(code.matrix[0])
    m = code.module_mm
    side = max(code.bbox[2] - code.bbox[0], code.bbox[3] - code.bbox[1])
    square = (
        abs(side / m - round(side / m)) < 1e-3
        and abs(side - min(code.bbox[2] - code.bbox[0], code.bbox[3] - code.bbox[1])) < 1e-6
    )
    angle = 0.0 if angle_deg is None or (square and abs(angle_deg) < 3.0) else angle_deg
    a = math.radians(angle)
    # the bbox is the turned symbol-with-quiet-zone's axis-aligned box: recover the quiet zone
    spread = abs(math.cos(a)) + abs(math.sin(a))
    quiet = max(0, round((side / spread / m - cols) / 2))

    def make(turn: float) -> Grid:
        return design_grid(
            code.bbox, m, cols, rows, px_per_mm=px_per_mm, pad_px=pad_px, angle_deg=turn
        )

    grid = best_orientation(gray, code.matrix, make, angle)
    return grade_gray(
        gray,
        code.matrix,
        grid,
        symbology=code.symbology,
        decoded=decoded,
        quiet_zone=quiet,
    )


def position_angle(position: object) -> float:
    """The turn (degrees CCW, y up) of a zxing-cpp result's position quadrilateral."""
    tl, tr = position.top_left, position.top_right  # type: ignore[attr-defined]
    bl, br = position.bottom_left, position.bottom_right  # type: ignore[attr-defined]
    dx = (tr.x - tl.x) + (br.x - bl.x)
    dy = (tr.y - tl.y) + (br.y - bl.y)
    return -math.degrees(math.atan2(dy, dx))
