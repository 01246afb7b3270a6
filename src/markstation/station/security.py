"""Sessions, CSRF and role checks of the station.

- A session is a random 256-bit id in a cookie ``HttpOnly; SameSite=Strict; Path=/`` (plus
  ``Secure`` when the station is reached over HTTPS), kept in memory only: a restarted station
  signs everybody out. Signing in rotates the id (no session fixation).
- Every state-changing request is a POST carrying the session's CSRF token (form field ``csrf``
  or header ``X-CSRF-Token``), compared in constant time; a request whose ``Origin`` names another
  site is refused before that. GET never changes state.
- Roles: the rule is :func:`markstation.queue.operators.require_role`; :func:`require` applies it
  to a session.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from markstation.i18n import _

#: the session cookie's name
COOKIE = "markstation_session"
#: form field and header that carry the CSRF token
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: a session unused for this long is forgotten (seconds)
IDLE_TIMEOUT_S = 12 * 3600.0
#: at most this many sessions are kept (the oldest go first)
MAX_SESSIONS = 1000

SUPERVISOR = "supervisor"
TECHNICIAN = "technician"


@dataclass
class Session:
    id: str
    csrf: str
    operator: str | None = None
    role: str | None = None
    #: signed in through an operator account (False: the local user of a station without operators)
    signed_in: bool = False
    created: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    flash: list[str] = field(default_factory=list)


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    """The station's sessions, in memory, safe from any thread."""

    def __init__(self, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def new(self) -> Session:
        session = Session(new_token(), new_token())
        with self._lock:
            self._expire_locked()
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            now = time.monotonic()
            if now - session.last_seen > self.idle_timeout_s:
                del self._by_id[session_id]
                return None
            session.last_seen = now
            return session

    def sign_in(self, old: Session, operator: str, role: str) -> Session:
        """A new session (new id and CSRF token) for ``operator``; the old one is dropped."""
        fresh = Session(new_token(), new_token(), operator, role, signed_in=True)
        with self._lock:
            self._by_id.pop(old.id, None)
            self._by_id[fresh.id] = fresh
        return fresh

    def drop(self, session: Session) -> None:
        with self._lock:
            self._by_id.pop(session.id, None)

    def _expire_locked(self) -> None:
        now = time.monotonic()
        for sid in [s for s, v in self._by_id.items() if now - v.last_seen > self.idle_timeout_s]:
            del self._by_id[sid]
        while len(self._by_id) >= MAX_SESSIONS:
            oldest = min(self._by_id.values(), key=lambda v: v.last_seen)
            del self._by_id[oldest.id]


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """The token matches the session's (constant-time compare)."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


def origin_ok(origin: str | None, host: str | None, scheme: str) -> bool:
    """No ``Origin`` (a form post from an old browser, a script), or the station's own."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return origin in (f"{scheme}://{host}", f"http://{host}", f"https://{host}")


def cookie_value(session: Session, *, secure: bool) -> str:
    flags = "; HttpOnly; SameSite=Strict; Path=/"
    if secure:
        flags += "; Secure"
    return f"{COOKIE}={session.id}{flags}"


def cleared_cookie() -> str:
    return f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"


def require(session: Session, role: str, action: str) -> None:
    """PermissionDenied unless the session's operator may do ``action`` (the operators' rule)."""
    from markstation.errors import PermissionDenied
    from markstation.queue.operators import Operator, Role, require_role

    if session.operator is None or session.role is None:
        raise PermissionDenied(_("{action}: sign in first").format(action=action))
    operator = Operator(session.operator, Role(session.role), False, None)
    require_role(operator, Role(role), action)
