"""The campaign report as PDF, for the registry and the company (``log export --format pdf``).

Contents: the campaign's figures (items per state, per operator, per day), one row per firearm
(code, make/model/serial, owner, state, when and by whom, and a thumbnail of the mark as it was
burned, rendered with :mod:`markstation.preview.raster`), the journal checkpoint with a QR code
of it, and "page N of M" on every page. Spanish or English (``lang``).

Strings: English is the source. They go through :func:`markstation.i18n.translations` when the
catalog translates them; otherwise the Spanish of :data:`_ES` in this module is used, so the
report is complete in both languages whatever the catalog holds.

The checkpoint is the one the export was sealed with (:func:`report_checkpoint`), signed
journal's checkpoint text when it exists; until then it is the store's chain head.

reportlab is imported only here, when a PDF is written.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from markstation.errors import ConfigError, JobError
from markstation.i18n import _
from markstation.queue.journal import ChainHead
from markstation.queue.models import Actor, Item
from markstation.queue.states import State
from markstation.queue.store import Store

if TYPE_CHECKING:
    from markstation.queue.checkpoint import SignedNote
    from markstation.queue.keys import StationKey

Lang = Literal["en", "es"]
LANGS: tuple[Lang, ...] = ("en", "es")

#: Spanish of every English string of the report (used where the gettext catalog has none)
_ES: dict[str, str] = {
    "Marking campaign report": "Informe de la campaña de marcado",
    "Generated {when} by {operator} at {station}": "Generado el {when} por {operator} en {station}",
    "Store": "Almacén",
    "Items": "Ítems",
    "Summary by state": "Resumen por estado",
    "Summary by operator": "Resumen por operador",
    "Summary by day (UTC)": "Resumen por día (UTC)",
    "state": "estado",
    "count": "cantidad",
    "operator": "operador",
    "day": "día",
    "marked": "marcados",
    "other outcomes": "otros resultados",
    "Firearms": "Armas de fuego",
    "code": "código",
    "firearm": "arma",
    "serial": "serie",
    "owner": "propietario",
    "when / who": "cuándo / quién",
    "mark": "marca",
    "Journal checkpoint": "Punto de control del registro (journal)",
    "signed checkpoint": "punto de control firmado",
    "chain head (unsigned)": "cabeza de la cadena (sin firma)",
    "records": "registros",
    "Keep this checkpoint outside the station: with it, any later change to the journal is "
    "detected by 'markstation log verify'.": "Guarde este punto de control fuera de la estación: "
    "con él, 'markstation log verify' detecta cualquier cambio posterior del registro.",
    "page {page} of {pages}": "página {page} de {pages}",
    "(no operator)": "(sin operador)",
    "no items": "sin ítems",
    "state:pending": "pendiente",
    "state:marking": "marcando",
    "state:marked": "marcado",
    "state:failed": "fallido",
    "state:interrupted": "interrumpido",
    "state:skipped": "omitido",
    "state:voided": "anulado",
    "total": "total",
    "not rendered": "no dibujada",
}

#: thumbnail size (pixels of the longer side) and resolution of the burn raster
THUMB_PX = 220
THUMB_WIDTH_MM = 30.0


def translator(lang: Lang) -> Callable[[str], str]:
    """``_`` for the report's language: the gettext catalog, else this module's dictionary."""
    if lang not in LANGS:
        raise ConfigError(_("unknown report language '{lang}' (en or es)").format(lang=lang))
    if lang == "en":
        return lambda s: s
    catalog: Callable[[str], str] | None = None
    try:
        from markstation.i18n import translations

        catalog = translations(lang).gettext
    except (ImportError, OSError, ValueError):
        catalog = None

    def tr(message: str) -> str:
        if catalog is not None:
            got = catalog(message)
            if got != message:
                return got
        return _ES.get(message, message)

    return tr


@dataclass(frozen=True)
class Checkpoint:
    """What the registry keeps to check the journal later: the text, and whether it is signed."""

    text: str
    signed: bool
    records: int
    hash: str


def report_checkpoint(note: SignedNote) -> Checkpoint:
    """The checkpoint a report shows (and its QR carries): the one the export was sealed with."""
    cp = note.checkpoint
    return Checkpoint(text=note.text(), signed=note.signed, records=cp.size, hash=cp.root.hex())


def report_rows(store: Store) -> list[dict[str, Any]]:
    """The CSV report's rows (:func:`markstation.queue.export.item_row`), plus private ``_`` keys:
    ``_item`` (the stored item), ``_extra`` (its metadata), ``_last_time`` / ``_last_operator``
    (its last journal record)."""
    from markstation.queue.export import _evidence, item_row

    evidence = _evidence(store.records())
    rows: list[dict[str, Any]] = []
    for it in store.items():
        recs = evidence.get(it.code, [])
        row = item_row(it, recs)
        acted = [r for r in recs if r.type != "batch-imported"]
        row["_item"] = it
        row["_extra"] = dict(it.extra)
        row["_last_time"] = acted[-1].time if acted else ""
        row["_last_operator"] = acted[-1].operator if acted else ""
        rows.append(row)
    return rows


def write_atomically(out: Path, data: bytes) -> None:
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(out)
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot write the report ({error})").format(path=out, error=exc.strerror)
        ) from exc


# --- thumbnails -------------------------------------------------------------------------------------


class _Thumbnails:
    """PNG thumbnails of what is burned for a code, profiles loaded once."""

    def __init__(self) -> None:
        self._layouts: dict[str, Any] = {}
        self._machine: Any = None
        self._material: Any = None

    def png(self, item: Item) -> bytes | None:
        from markstation.job.ir import Dot
        from markstation.job.layout import build_job
        from markstation.preview.raster import job_strokes, rasterize_dots
        from markstation.profiles import DEFAULT_MACHINE, load_layout, load_machine, load_material

        try:
            if self._machine is None:
                self._machine = load_machine(DEFAULT_MACHINE["lmc"])
                self._material = load_material(None, machine=self._machine)
            layout = self._layouts.get(item.layout) or load_layout(item.layout)
            self._layouts[item.layout] = layout
            job = build_job(
                item.code,
                layout=layout,
                material=self._material,
                machine=self._machine,
                optimize=False,
            )
            bounds = job.bounds()
            if bounds is None:
                return None
            x0, y0, x1, y1 = bounds
            pad = 0.8
            box = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
            side = max(box[2] - box[0], box[3] - box[1])
            # dots as wide as they burn (the dot model's Dot.diameter_mm, as the preview draws
            # them), each an exact disc: the preview's rings would swell at thumbnail scale
            image = rasterize_dots(
                job_strokes(job),
                [p.diameter_mm if isinstance(p, Dot) else 0.0 for _, p in job.primitives()],
                spot_mm=self._machine.spot_mm,
                bounds=box,
                px_per_mm=THUMB_PX / side,
            )
        except (JobError, ConfigError, ValueError, OSError):
            return None
        from PIL import ImageOps

        buf = io.BytesIO()
        ImageOps.invert(image).save(buf, format="PNG")
        return buf.getvalue()


# --- the PDF ---------------------------------------------------------------------------------------


def _font_names() -> tuple[str, str]:
    """(regular, bold): the system sans-serif the previews use (accented letters included,
    :mod:`markstation.preview.ui_font`), else Helvetica (its PDF encoding covers Spanish)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    from markstation.preview.ui_font import system_sans

    found = system_sans()
    if found is not None:
        regular, bold = found
        try:
            if "MS-Sans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("MS-Sans", str(regular)))
                pdfmetrics.registerFont(TTFont("MS-Sans-Bold", str(bold)))
            return "MS-Sans", "MS-Sans-Bold"
        except Exception:  # an unreadable font file (or a .ttc): fall back to Helvetica
            pass
    return "Helvetica", "Helvetica-Bold"


def _esc(text: object) -> str:
    from xml.sax.saxutils import escape

    return escape(str(text))


def pdf_bytes(
    rows: list[dict[str, Any]],
    checkpoint: Checkpoint,
    *,
    lang: Lang,
    actor: Actor,
    store_name: str,
    thumbnails: bool = True,
    now: datetime | None = None,
) -> bytes:
    """The report PDF as bytes."""
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    tr = translator(lang)
    regular, bold = _font_names()
    body = ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=10.5)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9)
    h1 = ParagraphStyle("h1", fontName=bold, fontSize=16, leading=20, spaceAfter=4)
    h2 = ParagraphStyle("h2", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")

    def state_name(value: str) -> str:
        name = tr(f"state:{value}")
        return value if name.startswith("state:") else name

    grid = TableStyle(
        [
            ("FONT", (0, 0), (-1, 0), bold, 8.5),
            ("FONT", (0, 1), (-1, -1), regular, 8.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e5e7eb")),
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9ca3af")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )

    code_grid = TableStyle([*grid.getCommands(), ("FONT", (0, 1), (0, -1), regular, 7.5)])

    story: list[Any] = [
        Paragraph(_esc(tr("Marking campaign report")), h1),
        Paragraph(
            _esc(
                tr("Generated {when} by {operator} at {station}").format(
                    when=when, operator=actor.operator, station=actor.station
                )
            ),
            body,
        ),
        Paragraph(
            f"{_esc(tr('Store'))}: {_esc(store_name)} · {_esc(tr('Items'))}: {len(rows)}", body
        ),
    ]

    # summaries
    states = Counter(str(r["state"]) for r in rows)
    state_table = [[tr("state"), tr("count")]] + [
        [state_name(s.value), str(states.get(s.value, 0))] for s in State
    ]
    state_table.append([tr("total"), str(len(rows))])
    by_operator: dict[str, Counter[str]] = {}
    by_day: dict[str, Counter[str]] = {}
    for r in rows:
        if r["state"] == State.PENDING.value:
            continue
        who = str(r["operator"] or r["_last_operator"] or tr("(no operator)"))
        by_operator.setdefault(who, Counter())[str(r["state"])] += 1
        stamp = str(r["marked_at"] or r["_last_time"])
        day = stamp[:10] if stamp else "—"
        kind = "marked" if r["state"] == State.MARKED.value else "other"
        by_day.setdefault(day, Counter())[kind] += 1
    shown_states = [s.value for s in State if s is not State.PENDING]
    op_table = [[tr("operator"), *[state_name(s) for s in shown_states]]] + [
        [who, *[str(c.get(s, 0)) for s in shown_states]] for who, c in sorted(by_operator.items())
    ]
    day_table = [[tr("day"), tr("marked"), tr("other outcomes")]] + [
        [day, str(c.get("marked", 0)), str(c.get("other", 0))] for day, c in sorted(by_day.items())
    ]
    story.append(Paragraph(_esc(tr("Summary by state")), h2))
    story.append(Table(state_table, style=grid, hAlign="LEFT"))
    story.append(Paragraph(_esc(tr("Summary by operator")), h2))
    story.append(
        Table(op_table, style=grid, hAlign="LEFT")
        if len(op_table) > 1
        else Paragraph(_esc(tr("no items")), body)
    )
    story.append(Paragraph(_esc(tr("Summary by day (UTC)")), h2))
    story.append(
        Table(day_table, style=grid, hAlign="LEFT")
        if len(day_table) > 1
        else Paragraph(_esc(tr("no items")), body)
    )

    # the checkpoint, with its QR code
    qr = QrCodeWidget(checkpoint.text)
    x0, y0, x1, y1 = qr.getBounds()
    size = 32 * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(qr)
    label = tr("signed checkpoint") if checkpoint.signed else tr("chain head (unsigned)")
    cp_text = [
        Paragraph(f"<b>{_esc(label)}</b> · {checkpoint.records} {_esc(tr('records'))}", body),
        Paragraph(_esc(checkpoint.text).replace("\n", "<br/>"), small),
        Spacer(1, 2 * mm),
        Paragraph(
            _esc(
                tr(
                    "Keep this checkpoint outside the station: with it, any later change to the "
                    "journal is detected by 'markstation log verify'."
                )
            ),
            small,
        ),
    ]
    story.append(Paragraph(_esc(tr("Journal checkpoint")), h2))
    story.append(
        KeepTogether(
            Table(
                [[drawing, cp_text]],
                colWidths=[size + 4 * mm, None],
                style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
                hAlign="LEFT",
            )
        )
    )

    # one row per firearm
    story.append(Paragraph(_esc(tr("Firearms")), h2))
    thumbs = _Thumbnails() if thumbnails else None
    table: list[list[Any]] = [
        [tr("code"), tr("firearm"), tr("owner"), tr("state"), tr("when / who"), tr("mark")]
    ]
    for r in rows:
        item: Item = r["_item"]
        firearm = " ".join(x for x in (item.make, item.model, item.caliber) if x)
        cell_firearm = Paragraph(
            f"{_esc(firearm)}<br/>{_esc(tr('serial'))}: {_esc(item.serial)}", small
        )
        stamp = str(r["marked_at"] or r["_last_time"])[:19].replace("T", " ")
        who = str(r["operator"] or r["_last_operator"])
        thumb: Any = "—"
        if thumbs is not None and item.state in (State.MARKED, State.INTERRUPTED):
            png = thumbs.png(item)
            if png is None:
                thumb = Paragraph(_esc(tr("not rendered")), small)
            else:
                img = Image(io.BytesIO(png))
                scale = THUMB_WIDTH_MM * mm / max(img.imageWidth, img.imageHeight)
                img.drawWidth = img.imageWidth * scale
                img.drawHeight = img.imageHeight * scale
                thumb = img
        table.append(
            [
                item.code,  # one line, never wrapped: the code must read back whole
                cell_firearm,
                Paragraph(_esc(item.owner), small),
                state_name(item.state.value),
                Paragraph(f"{_esc(stamp)}<br/>{_esc(who)}", small),
                thumb,
            ]
        )
    story.append(
        Table(
            table,
            colWidths=[47 * mm, 36 * mm, 28 * mm, 18 * mm, 25 * mm, 32 * mm],
            repeatRows=1,
            style=code_grid,
        )
    )

    class NumberedCanvas(Canvas):  # type: ignore[misc]
        """Defers pages so each can say 'page N of M'."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(regular, 8)
                text = tr("page {page} of {pages}").format(page=self._pageNumber, pages=total)
                self.drawRightString(A4[0] - 15 * mm, 10 * mm, text)
                self.drawString(15 * mm, 10 * mm, f"markstation · {checkpoint.hash[:16]}…")
                super().showPage()
            super().save()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=14 * mm,
        bottomMargin=18 * mm,
        title=tr("Marking campaign report"),
        author="markstation",
    )
    doc.build(story, canvasmaker=NumberedCanvas)
    return buf.getvalue()


def export_pdf(
    store: Store,
    path: str | os.PathLike[str],
    *,
    actor: Actor,
    lang: Lang = "en",
    thumbnails: bool = True,
    key: StationKey | None = None,
) -> ChainHead:
    """Journal and seal the export, then write the PDF report (atomically); return the tree head."""
    from markstation.queue.export import journal_export

    translator(lang)  # an unknown language is refused before anything is journaled
    out = Path(path)
    rows = report_rows(store)
    note, _ = journal_export(store, out, rows, fmt="pdf", actor=actor, key=key)
    checkpoint = report_checkpoint(note)
    data = pdf_bytes(
        rows,
        checkpoint,
        lang=lang,
        actor=actor,
        store_name=str(getattr(store, "path", "")),
        thumbnails=thumbnails,
    )
    write_atomically(out, data)
    return ChainHead(checkpoint.records, checkpoint.hash)
