"""The station's routes in-process (Starlette TestClient): cookies, CSRF, roles, limits, GET safety."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the station extra is not installed")

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

from _queue_fakes import FakeDriver, fast_builder, sample_rows, write_csv  # noqa: E402
from markstation.queue.batch import import_batch  # noqa: E402
from markstation.queue.models import Actor  # noqa: E402
from markstation.queue.operators import Role, add_operator  # noqa: E402
from markstation.queue.sqlite import SqliteStore  # noqa: E402
from markstation.queue.states import State  # noqa: E402
from markstation.station.app import create_app  # noqa: E402
from markstation.station.service import Station, StationConfig  # noqa: E402

BASE = "http://127.0.0.1"
TECH = ("Juan", "1357")
SUPER = ("Ana", "2468")
CODE = "PE-SUCAMEC-2026-000001"


def make_station(tmp_path: Path, *, operators: bool = True, limit: int = 1 << 20) -> Station:
    db = tmp_path / "c.db"
    actor = Actor("setup", "t")
    with SqliteStore(db) as store:
        import_batch(write_csv(tmp_path / "b.csv", sample_rows(2)), store, actor=actor)
        if operators:
            add_operator(store, SUPER[0], Role.SUPERVISOR, SUPER[1], actor=actor)
            add_operator(store, TECH[0], Role.TECHNICIAN, TECH[1], actor=actor)
    config = StationConfig(db=db, device="fake://", station_name="t", upload_limit=limit)
    return Station(config, driver_factory=FakeDriver, build=fast_builder)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    st = make_station(tmp_path)
    st.start()
    yield st
    st.stop()


@pytest.fixture
def client(station: Station) -> Iterator[TestClient]:
    with TestClient(create_app(station), base_url=BASE, follow_redirects=False) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found
    return found.group(1)


def sign_in(client: TestClient, who: tuple[str, str]) -> str:
    token = csrf_of(client.get("/signin").text)
    r = client.post("/signin", data={"operator": who[0], "pin": who[1], "csrf": token})
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/campaign").text)


def test_session_cookie_flags(client: TestClient) -> None:
    r = client.get("/signin")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("markstation_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "default-src 'self'" in r.headers["content-security-policy"]
    token = csrf_of(r.text)
    r = client.post("/signin", data={"operator": TECH[0], "pin": TECH[1], "csrf": token})
    rotated = r.headers["set-cookie"]
    assert "HttpOnly" in rotated and "SameSite=Strict" in rotated
    assert rotated.split(";")[0] != cookie.split(";")[0]  # a new session id on sign-in


def test_csrf_and_origin_are_refused(client: TestClient, station: Station) -> None:
    token = sign_in(client, TECH)
    assert client.post("/run").status_code == 403
    assert client.post("/run", data={"csrf": "x" * 43}).status_code == 403
    evil = {"Origin": "http://evil.example"}
    assert client.post("/run", data={"csrf": token}, headers=evil).status_code == 403
    assert station.ui.phase.value == "idle"  # nothing started
    assert client.post("/run", data={"csrf": token}).status_code == 303


def test_no_state_change_by_get(client: TestClient) -> None:
    sign_in(client, SUPER)
    for url in ("/run", "/item/mark", "/item/abort", f"/items/{CODE}/void", "/signout"):
        assert client.get(url).status_code == 405, url


def test_wrong_pin_and_sign_in_required(client: TestClient) -> None:
    assert client.get("/campaign").headers["location"] == "/signin"
    token = csrf_of(client.get("/signin").text)
    r = client.post("/signin", data={"operator": TECH[0], "pin": "0000", "csrf": token})
    assert r.status_code == 401


def test_technician_cannot_void_resolve_import_or_export(
    client: TestClient, station: Station
) -> None:
    token = sign_in(client, TECH)
    for url, data in (
        (f"/items/{CODE}/void", {"reason": "withdrawn", "pin": TECH[1]}),
        (f"/items/{CODE}/resolve", {"marked": "no", "reason": "x", "pin": TECH[1]}),
        ("/export", {"format": "csv"}),
    ):
        assert client.post(url, data={**data, "csrf": token}).status_code == 403, url
    r = client.post("/import", data={"csrf": token}, files={"file": ("b.csv", b"x")})
    assert r.status_code == 403
    assert client.get("/import").status_code == 403
    page = client.get(f"/items/{CODE}").text
    assert "Void" not in page and "Resolve" not in page
    assert station.call(lambda s: s.item(CODE)).state is State.PENDING  # type: ignore[union-attr]


def test_supervisor_voids_with_pin(client: TestClient, station: Station) -> None:
    token = sign_in(client, SUPER)
    assert ">Void<" in client.get(f"/items/{CODE}").text
    url = f"/items/{CODE}/void"
    wrong = client.post(url, data={"reason": "withdrawn", "pin": "9999", "csrf": token})
    assert wrong.status_code == 303  # back to the screen with the refusal
    assert station.call(lambda s: s.item(CODE)).state is State.PENDING  # type: ignore[union-attr]
    ok = client.post(url, data={"reason": "withdrawn", "pin": SUPER[1], "csrf": token})
    assert ok.status_code == 303
    item = station.call(lambda s: s.item(CODE))
    assert item is not None and item.state is State.VOIDED
    records = station.call(lambda s: [r for r in s.records() if r.type == "voided"])
    assert records[-1].operator == SUPER[0]


def test_upload_size_limit(tmp_path: Path) -> None:
    st = make_station(tmp_path, limit=1000)
    st.start()
    try:
        with TestClient(create_app(st), base_url=BASE, follow_redirects=False) as client:
            token = sign_in(client, SUPER)
            big = b"mark_code,serial\n" + b"x" * 5000
            r = client.post("/import", data={"csrf": token}, files={"file": ("b.csv", big)})
            assert r.status_code == 413
            assert len(st.call(lambda s: s.items())) == 2
    finally:
        st.stop()


def test_foreign_host_is_refused(client: TestClient) -> None:
    assert client.get("/signin", headers={"Host": "evil.example"}).status_code == 400


def test_without_operators_the_local_user_acts(tmp_path: Path) -> None:
    st = make_station(tmp_path, operators=False)
    st.start()
    try:
        with TestClient(create_app(st), base_url=BASE, follow_redirects=False) as client:
            r = client.get("/campaign")
            assert r.status_code == 200 and "Mark next" in r.text
    finally:
        st.stop()
