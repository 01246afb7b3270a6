"""The device-independent job: millimetres in the lens-field frame, seconds for times.

Frame: origin at the field centre, +x right, +y up. A :class:`Job` is an ordered tuple of
:class:`Layer` objects; each layer carries one :class:`MarkParams` set and its primitives
(:class:`Polyline` strokes and :class:`Dot` dwells). Travel between primitives is implicit.

Everything here is frozen. ``Job.sha256()`` hashes a canonical encoding (coordinates rounded to
1 nm, times to 1 ns) so the journal can prove exactly which job was sent.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain
from typing import Any, TypeAlias

from markstation.profiles.params import MM_DIGITS, S_DIGITS

# the parameter set and its canonical rounding are owned by profiles, so profiles never import
# job; MarkParams is re-exported here because every Layer carries one
from markstation.profiles.params import MarkParams as MarkParams
from markstation.profiles.params import round_mm as _mm
from markstation.profiles.params import round_s as _sec

Point: TypeAlias = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Polyline:
    """A marked stroke through two or more points (mm)."""

    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a Polyline needs at least two points")

    @property
    def start(self) -> Point:
        return self.points[0]

    @property
    def end(self) -> Point:
        return self.points[-1]

    def reversed(self) -> Polyline:
        return Polyline(self.points[::-1])

    def length(self) -> float:
        pts = self.points
        return sum(math.dist(pts[i], pts[i + 1]) for i in range(len(pts) - 1))

    def canonical(self) -> list[Any]:
        return ["L", [[_mm(x), _mm(y)] for x, y in self.points]]


@dataclass(frozen=True, slots=True)
class Dot:
    """The beam fired in place at (x, y) mm for ``dwell_s`` seconds.

    ``diameter_mm`` is the burned dot's modelled diameter (:func:`markstation.job.fill.dot_diameter_mm`),
    what the preview draws; 0 means the spot itself. It is not sent to a device.
    """

    x: float
    y: float
    dwell_s: float
    diameter_mm: float = 0.0

    @property
    def start(self) -> Point:
        return (self.x, self.y)

    @property
    def end(self) -> Point:
        return (self.x, self.y)

    @property
    def points(self) -> tuple[Point, ...]:
        return ((self.x, self.y),)

    def reversed(self) -> Dot:
        return self

    def length(self) -> float:
        return 0.0

    def canonical(self) -> list[Any]:
        out: list[Any] = ["D", [_mm(self.x), _mm(self.y)], _sec(self.dwell_s)]
        if self.diameter_mm > 0:  # absent for spot-sized dots: their hashes stay as they were
            out.append(_mm(self.diameter_mm))
        return out


Primitive: TypeAlias = Polyline | Dot


@dataclass(frozen=True, slots=True)
class Layer:
    """Primitives marked with one parameter set, in order."""

    name: str
    params: MarkParams
    primitives: tuple[Primitive, ...]

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params.canonical(),
            "primitives": [p.canonical() for p in self.primitives],
        }


@dataclass(frozen=True, slots=True)
class CodeRegion:
    """Where a 2D code sits in the job, so the preview can decode it back and compare."""

    symbology: str  # "datamatrix" | "qr" | "microqr"
    payload: str
    #: (x_min, y_min, x_max, y_max) in mm, quiet zone included
    bbox: tuple[float, float, float, float]
    module_mm: float
    #: True when the light modules are the marked ones (dark surfaces)
    inverse: bool = False
    #: module matrix rows, top row first, "1" = dark module (kept so a mark can be re-rendered later)
    matrix: tuple[str, ...] = ()

    def canonical(self) -> dict[str, Any]:
        return {
            "symbology": self.symbology,
            "payload": self.payload,
            "bbox": [_mm(v) for v in self.bbox],
            "module_mm": _mm(self.module_mm),
            "inverse": self.inverse,
            "matrix": list(self.matrix),
        }


@dataclass(frozen=True, slots=True)
class TextRegion:
    """Where a human-readable line sits, for legibility checks (OCR) and the preview."""

    text: str
    bbox: tuple[float, float, float, float]
    cap_height_mm: float
    rotation_deg: float = 0.0

    def canonical(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "bbox": [_mm(v) for v in self.bbox],
            "cap_height_mm": _mm(self.cap_height_mm),
            "rotation_deg": _mm(self.rotation_deg),
        }


@dataclass(frozen=True)
class Job:
    """An immutable, device-independent marking job.

    Not slotted, so the digest can be cached: a job is hashed for the journal before emission and
    again for the outcome record, and hashing a large fill costs milliseconds.
    """

    layers: tuple[Layer, ...]
    codes: tuple[CodeRegion, ...] = ()
    texts: tuple[TextRegion, ...] = ()
    #: provenance as sorted (key, value) pairs: mark_code, layout, material, machine, profile hashes
    meta: tuple[tuple[str, str], ...] = field(default=())

    @staticmethod
    def make_meta(values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((str(k), str(v)) for k, v in values.items()))

    def meta_dict(self) -> dict[str, str]:
        return dict(self.meta)

    def canonical(self) -> dict[str, Any]:
        return {
            "version": 1,
            "layers": [layer.canonical() for layer in self.layers],
            "codes": [c.canonical() for c in self.codes],
            "texts": [t.canonical() for t in self.texts],
            "meta": [list(kv) for kv in self.meta],
        }

    def canonical_bytes(self) -> bytes:
        """The JSON of :meth:`canonical`, byte for byte, with the primitives' coordinates rounded
        with numpy (:func:`_rounded`); ``tests/unit/test_ir.py`` compares it with the plain form."""
        data = self.canonical_fast()
        if data is None:
            data = self.canonical()
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def canonical_fast(self) -> dict[str, Any] | None:
        """:meth:`canonical` with the same values, the primitives' rounding done for the whole job
        at once (points as tuples, which JSON writes as lists); None when a primitive is not a
        plain Polyline or Dot of numbers (then :meth:`canonical` is the one to use)."""
        mm: list[float] = []  # every length to round, in order
        sec: list[float] = []  # every dwell
        for layer in self.layers:
            for prim in layer.primitives:
                kind = type(prim)
                if kind is Polyline:
                    if set(map(len, prim.points)) != {2}:
                        return None  # not (x, y) pairs: canonical() says what is wrong
                    mm.extend(chain.from_iterable(prim.points))
                elif kind is Dot:
                    assert isinstance(prim, Dot)
                    mm.append(prim.x)
                    mm.append(prim.y)
                    if prim.diameter_mm > 0:
                        mm.append(prim.diameter_mm)
                    sec.append(prim.dwell_s)
                else:
                    return None
        try:
            mm_r = _rounded(mm, MM_DIGITS)
            sec_r = _rounded(sec, S_DIGITS)
        except (TypeError, ValueError, OverflowError):
            return None
        layers: list[dict[str, Any]] = []
        i = j = 0
        for layer in self.layers:
            prims: list[Any] = []
            for prim in layer.primitives:
                if type(prim) is Polyline:
                    n = 2 * len(prim.points)
                    flat = mm_r[i : i + n]
                    prims.append(["L", list(zip(flat[0::2], flat[1::2], strict=True))])
                    i += n
                else:
                    assert isinstance(prim, Dot)
                    out: list[Any] = ["D", mm_r[i : i + 2], sec_r[j]]
                    i += 2
                    j += 1
                    if prim.diameter_mm > 0:
                        out.append(mm_r[i])
                        i += 1
                    prims.append(out)
            layers.append(
                {"name": layer.name, "params": layer.params.canonical(), "primitives": prims}
            )
        return {
            "version": 1,
            "layers": layers,
            "codes": [c.canonical() for c in self.codes],
            "texts": [t.canonical() for t in self.texts],
            "meta": [list(kv) for kv in self.meta],
        }

    @cached_property
    def _digest(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def sha256(self) -> str:
        """Hex digest of the canonical encoding; what the journal records."""
        return self._digest

    # --- queries -------------------------------------------------------------------------------

    def primitives(self) -> Iterator[tuple[Layer, Primitive]]:
        for layer in self.layers:
            for prim in layer.primitives:
                yield layer, prim

    def points(self) -> Iterator[Point]:
        for _, prim in self.primitives():
            yield from prim.points

    def primitive_count(self) -> int:
        return sum(len(layer.primitives) for layer in self.layers)

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(x_min, y_min, x_max, y_max) of every marked point, or None for an empty job."""
        return bounds_of(self.points())

    def with_layers(self, layers: Iterable[Layer]) -> Job:
        return replace(self, layers=tuple(layers))

    def marked_length(self) -> float:
        """Total stroke length in mm, one pass."""
        return sum(prim.length() for _, prim in self.primitives())

    def jump_length(self) -> float:
        """Travel between consecutive primitives in mm, one pass, starting at the field centre."""
        total = 0.0
        pos: Point = (0.0, 0.0)
        for _, prim in self.primitives():
            total += math.dist(pos, prim.start)
            pos = prim.end
        return total


def _rounded(values: list[float], digits: int) -> list[float]:
    """``[round(float(v), digits) + 0.0 for v in values]`` (what :func:`round_mm` and
    :func:`round_s` do), with numpy: exactly the same floats.

    ``round`` gives the double nearest the decimal k·10^-digits, k the integer nearest
    v·10^digits (ties to even, on the exact binary value). numpy's ``rint(v * 10**digits)`` is that
    k whenever the product, rounded to a double, is not within its rounding error of a
    half-integer, and then ``k / 10**digits`` (a correctly rounded division of two exact doubles)
    is the same double. The values near a half-integer, too large or not finite are rounded by
    ``round`` itself.
    """
    if not values:
        return []
    import numpy as np  # here: `markstation --help` and the CLI start do not need numpy

    a = np.array(values, dtype=np.float64)
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        p = a * scale
        k = np.rint(p)
        frac = np.abs(p - np.trunc(p))
        safe = np.isfinite(p) & (np.abs(p) < 2.0**52) & (np.abs(frac - 0.5) > np.abs(p) * 2.0**-50)
    out: list[float] = (k / scale + 0.0).tolist()
    if not safe.all():
        for idx in np.flatnonzero(~safe).tolist():
            out[idx] = round(float(a[idx]), digits) + 0.0
    return out


def bounds_of(points: Iterable[Point]) -> tuple[float, float, float, float] | None:
    xs: list[float] = []
    ys: list[float] = []
    for x, y in points:
        xs.append(x)
        ys.append(y)
    if not xs:
        return None
    return (min(xs), min(ys), max(xs), max(ys))


# --- geometry helpers shared by the builders ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Affine:
    """2D affine map (a, b, c, d, e, f): x' = a·x + b·y + c, y' = d·x + e·y + f."""

    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    e: float = 1.0
    f: float = 0.0

    @staticmethod
    def translate(dx: float, dy: float) -> Affine:
        return Affine(c=dx, f=dy)

    @staticmethod
    def scale(sx: float, sy: float | None = None) -> Affine:
        return Affine(a=sx, e=sx if sy is None else sy)

    @staticmethod
    def rotate(deg: float) -> Affine:
        r = math.radians(deg)
        cs, sn = math.cos(r), math.sin(r)
        return Affine(a=cs, b=-sn, d=sn, e=cs)

    def then(self, other: Affine) -> Affine:
        """The map that applies self first, then other."""
        return Affine(
            a=other.a * self.a + other.b * self.d,
            b=other.a * self.b + other.b * self.e,
            c=other.a * self.c + other.b * self.f + other.c,
            d=other.d * self.a + other.e * self.d,
            e=other.d * self.b + other.e * self.e,
            f=other.d * self.c + other.e * self.f + other.f,
        )

    def apply(self, p: Point) -> Point:
        x, y = p
        return (self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f)

    def apply_primitive(self, prim: Primitive) -> Primitive:
        if isinstance(prim, Dot):
            x, y = self.apply((prim.x, prim.y))
            return Dot(x, y, prim.dwell_s, prim.diameter_mm)
        return Polyline(tuple(self.apply(p) for p in prim.points))

    def apply_bbox(
        self, bbox: tuple[float, float, float, float]
    ) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = bbox
        corners = [self.apply(p) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        result = bounds_of(corners)
        assert result is not None
        return result
