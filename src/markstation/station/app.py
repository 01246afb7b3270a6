"""The station's web face: Starlette routes over :class:`~markstation.station.service.Station`.

Screens (GET, never a state change): ``/signin``, ``/campaign``, ``/item`` (the item to mark),
``/attention`` and ``/items/{code}`` (what is known, the supervisor's decisions), ``/import``,
``/export``; plus ``/events`` (server-sent events: the runner's snapshot), ``/state`` (the same as
JSON, ``?after=VERSION&timeout=S`` waits for a change), ``/preview/{code}.png`` and ``/static``.

Actions (POST, session + CSRF token, role checked where the issue asks for a supervisor):
``/signin``, ``/signout``, ``/run`` ("Mark next"), ``/item/{command}`` (serial, frame, stop-frame,
mark, skip, quit, pass, fail, retry, next), ``/item/abort``, ``/items/{code}/{resolve|void|
requeue|skip}``, ``/import``, ``/export``. A request that asks for JSON (``Accept:
application/json``, what the page's script and the benchmark send) gets ``{"ok", "error",
"state"}``; a plain form post gets a 303 back to the screen.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from markstation.errors import (
    AuthError,
    BatchError,
    MarkstationError,
    PermissionDenied,
)
from markstation.i18n import N_, jinja_env_install, translations
from markstation.queue.models import Actor, Item
from markstation.queue.states import RUNNABLE, State
from markstation.queue.store import Store
from markstation.station.adapter import CommandRefused, Phase
from markstation.station.security import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SUPERVISOR,
    Session,
    cleared_cookie,
    cookie_value,
    csrf_ok,
    origin_ok,
    require,
)
from markstation.station.service import Station

HERE = Path(__file__).resolve().parent
#: fields of a form other than a file upload may be this large (bytes)
MAX_FIELD_BYTES = 64 * 1024
#: how long /state?after=… waits at most (seconds)
MAX_LONG_POLL_S = 30.0
#: SSE keep-alive comment interval (seconds)
SSE_KEEPALIVE_S = 15.0

CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})

#: the item states as the screens name them
STATE_LABELS: dict[str, str] = {
    State.PENDING.value: N_("pending"),
    State.MARKING.value: N_("marking"),
    State.MARKED.value: N_("marked"),
    State.FAILED.value: N_("failed"),
    State.INTERRUPTED.value: N_("interrupted"),
    State.SKIPPED.value: N_("skipped"),
    State.VOIDED.value: N_("voided"),
}

Handler = Callable[[Request], Awaitable[Response]]


class _Guard:
    """Pure-ASGI middleware: security headers on every response; Host check on loopback.

    Bound to 127.0.0.1, a ``Host`` that is not a loopback name is refused (DNS rebinding).
    """

    def __init__(self, app: ASGIApp, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.loopback_only:
            host = ""
            for name, value in scope.get("headers", []):
                if name == b"host":
                    host = value.decode("latin-1")
            bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if bare not in LOOPBACK_HOSTS:
                await PlainTextResponse("unknown host", status_code=400)(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _v in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TooLarge(Exception):
    pass


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _safe_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:100].lstrip(".")
    return clean or "upload.csv"


# --- what the store thread computes for the screens -----------------------------------------------


def campaign_data(store: Store) -> dict[str, Any]:
    items = store.items()
    counts = {s.value: 0 for s in State}
    batches: dict[int, dict[str, int]] = {}
    for it in items:
        counts[it.state.value] += 1
        per = batches.setdefault(it.batch_id, {s.value: 0 for s in State})
        per[it.state.value] += 1
    estimates: list[float] = []
    first_start: str | None = None
    last_mark: str | None = None
    marked_runs = 0
    refused: dict[str, str] = {}
    for rec in store.records():
        if rec.type == "item-started":
            est = rec.payload.get("estimate_s")
            if isinstance(est, int | float):
                estimates.append(float(est))
            first_start = first_start or rec.time
        elif rec.type == "device-outcome" and rec.payload.get("outcome") == State.MARKED.value:
            marked_runs += 1
            last_mark = rec.time
        elif rec.type == "job-refused":
            refused[str(rec.payload.get("code", ""))] = str(rec.payload.get("reason", ""))
    left = sum(counts[s.value] for s in RUNNABLE)
    mean = sum(estimates) / len(estimates) if estimates else None
    rate: float | None = None
    if first_start and last_mark and marked_runs:
        from datetime import datetime

        span = (
            datetime.fromisoformat(last_mark) - datetime.fromisoformat(first_start)
        ).total_seconds()
        rate = marked_runs / max(span, 1.0) * 3600.0
    by_code = {it.code: it for it in items}
    attention = [
        it for it in items if it.state in (State.INTERRUPTED, State.FAILED, State.MARKING)
    ] + [by_code[c] for c in refused if c in by_code and by_code[c].state is State.PENDING]
    total = len(items)
    done = counts[State.MARKED.value] + counts[State.VOIDED.value]
    return {
        "counts": counts,
        "batches": sorted(batches.items()),
        "total": total,
        "done": done,
        "left": left,
        "laser_left_s": mean * left if mean is not None else None,
        "per_hour": rate,
        "attention": attention,
        "refused": refused,
    }


def item_detail(store: Store, code: str) -> tuple[Item | None, list[dict[str, Any]]]:
    item = store.item(code)
    records = [
        {"seq": r.seq, "type": r.type, "time": r.time, "operator": r.operator, "payload": r.payload}
        for r in store.records()
        if r.payload.get("code") == code
    ]
    return item, records


class Web:
    """The routes, bound to one station and its language."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.ui = station.ui
        self.lang = station.config.lang
        self.tr = translations(self.lang)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=jinja2.select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        jinja_env_install(env, self.lang)
        env.globals["fmt_seconds"] = _fmt_seconds
        env.globals["state_label"] = lambda value: self.tr.gettext(STATE_LABELS.get(value) or value)
        self.env = env
        self._operators_cache: tuple[float, bool] | None = None

    # --- sessions and authorisation ------------------------------------------------------------

    def _session(self, request: Request) -> tuple[Session, bool]:
        found = self.station.sessions.get(request.cookies.get(COOKIE))
        if found is not None:
            return found, False
        return self.station.sessions.new(), True

    async def _signin_needed(self) -> bool:
        if self.station.config.signin_mandatory:
            return True
        loop = asyncio.get_running_loop()
        cached = self._operators_cache
        if cached is not None and loop.time() - cached[0] < 1.0:
            return cached[1]
        from markstation.queue.operators import has_operators

        needed = await self.station.db(has_operators)
        self._operators_cache = (loop.time(), needed)
        return needed

    async def _authorized(self, session: Session) -> bool:
        """Signed in, or (no operators, localhost) the local user acting as supervisor."""
        if session.signed_in:
            return True
        if await self._signin_needed():
            return False
        session.operator = self.station.config.local_operator
        session.role = SUPERVISOR
        return True

    def _actor(self, session: Session) -> Actor:
        return Actor(
            session.operator or self.station.config.local_operator, self.station.actor_station
        )

    # --- responses ----------------------------------------------------------------------------

    def _cookie(self, response: Response, session: Session, request: Request) -> Response:
        secure = request.url.scheme == "https"
        response.headers.append("set-cookie", cookie_value(session, secure=secure))
        return response

    def render(
        self,
        request: Request,
        session: Session,
        template: str,
        *,
        status: int = 200,
        new: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        flash, session.flash = session.flash, []
        html = self.env.get_template(template).render(
            lang=self.lang,
            csrf=session.csrf,
            session=session,
            flash=flash,
            is_supervisor=session.role == SUPERVISOR,
            signin_needed=session.signed_in,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if new:
            self._cookie(response, session, request)
        return response

    @staticmethod
    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "")

    def done(
        self,
        request: Request,
        session: Session,
        back: str,
        *,
        error: str | None = None,
        status: int = 200,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        if self.wants_json(request):
            body = {
                "ok": error is None,
                "error": error,
                "state": self.ui.snapshot(),
                **(extra or {}),
            }
            return JSONResponse(body, status_code=status if error is None or status != 200 else 409)
        if error:
            session.flash.append(error)
        return RedirectResponse(back, status_code=303)

    def refuse(self, request: Request, status: int, message: str) -> Response:
        if self.wants_json(request):
            return JSONResponse({"ok": False, "error": message}, status_code=status)
        return PlainTextResponse(message, status_code=status)

    async def _form(self, request: Request, limit: int) -> FormData:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
        request._body = b"".join(chunks)
        return await request.form(max_files=1, max_fields=50, max_part_size=MAX_FIELD_BYTES)

    # --- decorators ------------------------------------------------------------------------------

    def page(self, fn: Callable[[Request, Session], Awaitable[Response]]) -> Handler:
        async def handler(request: Request) -> Response:
            session, new = self._session(request)
            if not await self._authorized(session):
                response: Response = RedirectResponse("/signin", status_code=303)
            else:
                response = await fn(request, session)
            if new:
                self._cookie(response, session, request)
            return response

        return handler

    def action(
        self,
        fn: Callable[[Request, Session, FormData], Awaitable[Response]],
        *,
        role: str | None = None,
        what: str = "",
        auth: bool = True,
        limit: int = MAX_FIELD_BYTES * 4,
    ) -> Handler:
        _ = self.tr.gettext

        async def handler(request: Request) -> Response:
            session = self.station.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return self.refuse(request, 403, _("No session: reload the page and try again."))
            if not origin_ok(
                request.headers.get("origin"), request.headers.get("host"), request.url.scheme
            ):
                return self.refuse(request, 403, _("Refused: the request came from another site."))
            try:
                form = await self._form(request, limit)
            except TooLarge:
                return self.refuse(request, 413, _("Refused: the upload is larger than allowed."))
            try:
                return await checked(request, session, form)
            finally:
                await form.close()

        async def checked(request: Request, session: Session, form: FormData) -> Response:
            token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
            if not csrf_ok(session, token if isinstance(token, str) else None):
                return self.refuse(
                    request, 403, _("Refused: the form is out of date (CSRF). Reload the page.")
                )
            if auth and not await self._authorized(session):
                return self.refuse(request, 401, _("Sign in first."))
            if role is not None:
                try:
                    require(session, role, what)
                except PermissionDenied:
                    return self.refuse(request, 403, _("Refused: only a supervisor may do this."))
            return await fn(request, session, form)

        return handler

    # --- sign-in -------------------------------------------------------------------------------------

    async def signin_page(self, request: Request) -> Response:
        session, new = self._session(request)
        if session.signed_in or not await self._signin_needed():
            response: Response = RedirectResponse("/campaign", status_code=303)
            if new:
                self._cookie(response, session, request)
            return response
        return self.render(request, session, "signin.html", new=new, page="signin", error=None)

    async def signin(self, request: Request, session: Session, form: FormData) -> Response:
        from markstation.queue.operators import authenticate

        name = str(form.get("operator", "")).strip()
        pin = str(form.get("pin", ""))
        try:
            operator = await self.station.db(
                lambda s: authenticate(s, name, pin, station=self.station.actor_station)
            )
        except AuthError as exc:
            if self.wants_json(request):
                return JSONResponse({"ok": False, "error": str(exc)}, status_code=401)
            return self.render(
                request, session, "signin.html", status=401, page="signin", error=str(exc)
            )
        fresh = self.station.sessions.sign_in(session, operator.name, operator.role.value)
        response: Response
        if self.wants_json(request):
            response = JSONResponse({"ok": True, "operator": operator.name, "csrf": fresh.csrf})
        else:
            response = RedirectResponse("/campaign", status_code=303)
        return self._cookie(response, fresh, request)

    async def signout(self, request: Request, session: Session, form: FormData) -> Response:
        self.station.sessions.drop(session)
        response = RedirectResponse("/signin", status_code=303)
        response.headers.append("set-cookie", cleared_cookie())
        return response

    # --- campaign ------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/campaign", status_code=303)

    async def campaign(self, request: Request, session: Session) -> Response:
        data = await self.station.db(campaign_data)
        return self.render(
            request,
            session,
            "campaign.html",
            page="campaign",
            data=data,
            snap=self.ui.snapshot(),
            states=[s.value for s in State],
        )

    async def run(self, request: Request, session: Session, form: FormData) -> Response:
        started = self.station.request_run(session.operator or self.station.config.local_operator)
        return self.done(request, session, "/item", extra={"started": started})

    # --- the item screen ------------------------------------------------------------------------

    async def item_page(self, request: Request, session: Session) -> Response:
        snap = self.ui.snapshot()
        item = snap["item"]
        info = None
        preview_mm: tuple[float, float] | None = None
        if item is not None:
            try:
                got = await asyncio.wait_for(self.station.preview(item["code"]), 10.0)
            except (TimeoutError, MarkstationError, OSError, ValueError):
                got = None
            if got is not None:
                preview_mm = (got[1], got[2])
            info = self.station.job_info(item["code"])
        return self.render(
            request,
            session,
            "item.html",
            page="item",
            snap=snap,
            item=item,
            phase=snap["phase"],
            info=info,
            preview_mm=preview_mm,
            screen=snap["screen"],
        )

    async def item_command(self, request: Request, session: Session, form: FormData) -> Response:
        _ = self.tr.gettext
        kind = request.path_params["command"]
        code = str(form.get("code", ""))
        text = str(form.get("serial", "") if kind == "serial" else form.get("note", ""))
        try:
            self.ui.submit(kind, code, text)
        except CommandRefused:
            return self.done(
                request,
                session,
                "/item",
                error=_("Not possible now: the screen was out of date and has been refreshed."),
                status=409,
            )
        return self.done(request, session, "/item")

    async def abort(self, request: Request, session: Session, form: FormData) -> Response:
        aborted = self.ui.abort("Abort button")
        return self.done(request, session, "/item", extra={"aborted": aborted})

    async def preview(self, request: Request) -> Response:
        session = self.station.sessions.get(request.cookies.get(COOKIE))
        if session is None or not await self._authorized(session):
            return PlainTextResponse("sign in first", status_code=401)
        code = request.path_params["code"]
        try:
            got = await self.station.preview(code)
        except (MarkstationError, OSError, ValueError) as exc:
            return PlainTextResponse(f"preview failed: {exc}", status_code=500)
        if got is None:
            return PlainTextResponse("no job built for this code", status_code=404)
        return Response(
            got[0],
            media_type="image/png",
            headers={"cache-control": "private, max-age=86400, immutable"},
        )

    # --- live updates -------------------------------------------------------------------------------

    async def _changes(self) -> tuple[asyncio.Event, Callable[[], None]]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        unsubscribe = self.ui.subscribe(wake_up)
        return wake, unsubscribe

    async def events(self, request: Request) -> Response:
        session = self.station.sessions.get(request.cookies.get(COOKIE))
        if session is None or not await self._authorized(session):
            return PlainTextResponse("sign in first", status_code=401)
        wake, unsubscribe = await self._changes()

        async def stream() -> Any:
            try:
                last = -1
                while not self.ui.closing:
                    wake.clear()
                    snap = self.ui.snapshot()
                    if snap["version"] != last:
                        last = snap["version"]
                        yield f"data: {json.dumps(snap, ensure_ascii=False)}\n\n"
                    try:
                        await asyncio.wait_for(wake.wait(), SSE_KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                unsubscribe()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def state(self, request: Request) -> Response:
        session = self.station.sessions.get(request.cookies.get(COOKIE))
        if session is None or not await self._authorized(session):
            return JSONResponse({"error": "sign in first"}, status_code=401)
        after = request.query_params.get("after")
        if after is not None and after.lstrip("-").isdigit():
            try:
                timeout = min(float(request.query_params.get("timeout", "10")), MAX_LONG_POLL_S)
            except ValueError:
                timeout = 10.0
            wake, unsubscribe = await self._changes()
            try:
                deadline = asyncio.get_running_loop().time() + timeout
                while self.ui.version <= int(after) and not self.ui.closing:
                    left = deadline - asyncio.get_running_loop().time()
                    if left <= 0:
                        break
                    wake.clear()
                    if self.ui.version > int(after):
                        break
                    try:
                        await asyncio.wait_for(wake.wait(), left)
                    except TimeoutError:
                        break
            finally:
                unsubscribe()
        return JSONResponse(self.ui.snapshot())

    # --- attention and decisions --------------------------------------------------------------------

    async def attention(self, request: Request, session: Session) -> Response:
        data = await self.station.db(campaign_data)
        return self.render(request, session, "attention.html", page="attention", data=data)

    async def item_detail(self, request: Request, session: Session) -> Response:
        code = request.path_params["code"]
        item, records = await self.station.db(lambda s: item_detail(s, code))
        if item is None:
            return PlainTextResponse("no such item", status_code=404)
        return self.render(
            request,
            session,
            "detail.html",
            page="detail",
            item=item,
            records=records,
            pin_needed=session.signed_in,
        )

    async def decide(self, request: Request, session: Session, form: FormData) -> Response:
        from markstation.queue import decisions
        from markstation.queue.operators import authenticate

        _ = self.tr.gettext
        code = request.path_params["code"]
        what = request.path_params["decision"]
        back = f"/items/{code}"
        reason = str(form.get("reason", "")).strip()
        actor = self._actor(session)
        if what in ("resolve", "void", "requeue") and session.signed_in:
            pin = str(form.get("pin", ""))
            name = session.operator or ""
            try:
                await self.station.db(
                    lambda s: authenticate(s, name, pin, station=self.station.actor_station)
                )
            except AuthError as exc:
                return self.done(request, session, back, error=str(exc), status=403)

        def apply(store: Store) -> Item:
            if what == "resolve":
                marked = str(form.get("marked", "")) == "yes"
                return decisions.resolve(store, code, marked=marked, reason=reason, actor=actor)
            if what == "void":
                return decisions.void(store, code, reason=reason, actor=actor)
            if what == "requeue":
                return decisions.requeue(store, code, reason=reason, actor=actor)
            return decisions.skip(store, code, reason=reason, actor=actor)

        try:
            item = await self.station.db(apply)
        except BatchError as exc:
            return self.done(request, session, back, error=str(exc), status=409)
        return self.done(
            request, session, back, extra={"item": {"code": item.code, "state": item.state.value}}
        )

    async def decision(self, request: Request) -> Response:
        what = request.path_params["decision"]
        if what not in ("resolve", "void", "requeue", "skip"):
            return PlainTextResponse("not found", status_code=404)
        role = None if what == "skip" else SUPERVISOR
        return await self.action(self.decide, role=role, what=f"batch {what}")(request)

    # --- import and export -----------------------------------------------------------------------

    async def import_page(self, request: Request, session: Session) -> Response:
        if session.role != SUPERVISOR:
            return self.render(request, session, "denied.html", status=403, page="import")
        return self.render(
            request,
            session,
            "import.html",
            page="import",
            result=None,
            limit_mib=self.station.config.upload_limit / (1024 * 1024),
        )

    async def import_file(self, request: Request, session: Session, form: FormData) -> Response:
        from markstation.queue.batch import import_batch

        _ = self.tr.gettext
        upload = form.get("file")
        result: dict[str, Any]
        if not isinstance(upload, UploadFile) or not upload.filename:
            result = {"ok": False, "problems": [], "error": _("Choose a registry file first.")}
        else:
            data = await upload.read()
            folder = Path(tempfile.mkdtemp(prefix="markstation-import-"))
            path = folder / _safe_name(upload.filename)
            path.write_bytes(data)
            actor = self._actor(session)
            layout = self.station.config.layout
            try:
                batch_id, valid = await self.station.db(
                    lambda s: import_batch(path, s, actor=actor, default_layout=layout)
                )
                result = {
                    "ok": True,
                    "batch": batch_id,
                    "items": len(valid.items),
                    "file": upload.filename,
                }
            except BatchError as exc:
                problems = [
                    {"line": p.line, "column": p.column, "message": p.message}
                    for p in getattr(exc, "problems", [])
                ]
                result = {
                    "ok": False,
                    "problems": problems,
                    "error": str(exc).splitlines()[0].replace(str(path), upload.filename),
                    "file": upload.filename,
                }
            finally:
                path.unlink(missing_ok=True)
                folder.rmdir()
        status = 200 if result["ok"] else 422
        if self.wants_json(request):
            return JSONResponse(result, status_code=status)
        return self.render(
            request,
            session,
            "import.html",
            status=status,
            page="import",
            result=result,
            limit_mib=self.station.config.upload_limit / (1024 * 1024),
        )

    async def export_page(self, request: Request, session: Session) -> Response:
        if session.role != SUPERVISOR:
            return self.render(request, session, "denied.html", status=403, page="export")
        from markstation.errors import JournalError
        from markstation.queue.journal import verify

        def check(store: Store) -> tuple[bool, str, int]:
            try:
                head = verify(store.records())
            except JournalError as exc:
                return False, str(exc), 0
            return True, head.hash, head.records

        ok, detail, records = await self.station.db(check)
        return self.render(
            request,
            session,
            "export.html",
            page="export",
            verified=ok,
            detail=detail,
            records=records,
        )

    async def export_file(self, request: Request, session: Session, form: FormData) -> Response:
        from markstation.queue.export import export_report

        fmt = str(form.get("format", "csv"))
        if fmt not in ("csv", "jsonl"):
            return self.refuse(request, 400, "format: csv or jsonl")
        folder = Path(tempfile.mkdtemp(prefix="markstation-export-"))
        path = folder / f"registry-report.{fmt}"
        actor = self._actor(session)
        try:
            key = self.station.config.key
            await self.station.db(
                lambda s: export_report(s, path, fmt=fmt, actor=actor, key=key)  # type: ignore[arg-type]
            )
            data = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
            folder.rmdir()
        media = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return Response(
            data,
            media_type=f"{media}; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="registry-report.{fmt}"'},
        )

    # --- the app ---------------------------------------------------------------------------------------

    def routes(self) -> list[Route | Mount]:
        p, a = self.page, self.action
        limit = self.station.config.upload_limit
        return [
            Route("/", self.index),
            Route("/signin", self.signin_page, methods=["GET"]),
            Route("/signin", a(self.signin, auth=False), methods=["POST"]),
            Route("/signout", a(self.signout, auth=False), methods=["POST"]),
            Route("/campaign", p(self.campaign)),
            Route("/run", a(self.run), methods=["POST"]),
            Route("/item", p(self.item_page)),
            Route("/item/abort", a(self.abort), methods=["POST"]),
            Route("/item/{command}", a(self.item_command), methods=["POST"]),
            Route("/preview/{code}.png", self.preview),
            Route("/events", self.events),
            Route("/state", self.state),
            Route("/attention", p(self.attention)),
            Route("/items/{code}", p(self.item_detail)),
            Route("/items/{code}/{decision}", self.decision, methods=["POST"]),
            Route("/import", p(self.import_page), methods=["GET"]),
            Route(
                "/import",
                a(self.import_file, role=SUPERVISOR, what="batch import", limit=limit),
                methods=["POST"],
            ),
            Route("/export", p(self.export_page), methods=["GET"]),
            Route(
                "/export",
                a(self.export_file, role=SUPERVISOR, what="log export"),
                methods=["POST"],
            ),
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ]


def create_app(station: Station) -> ASGIApp:
    """The ASGI app of ``station`` (security headers and Host check around the routes)."""
    web = Web(station)
    app = Starlette(routes=web.routes())
    return _Guard(app, loopback_only=station.config.listen is None)


__all__ = ["Phase", "Web", "campaign_data", "create_app"]
