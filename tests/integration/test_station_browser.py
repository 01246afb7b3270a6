"""The marking station in a real browser: Chromium driven by Playwright (sync API).

The station runs in-process (uvicorn on a thread, 127.0.0.1, a free port) over a real store and
``sim://lmc`` with its ledger, so what the screens did is checked against what the simulated
marker burned. Every wait is Playwright's auto-waiting ``expect`` (or a wait for a condition in
the page), never a sleep. Skipped, with the reason, only when no Chromium can be had.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from _paths import REPO

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("starlette", reason="the station extra is not installed")

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from markstation.devices.sim.ledger import read_jobs  # noqa: E402
from markstation.queue.batch import import_batch  # noqa: E402
from markstation.queue.models import Actor  # noqa: E402
from markstation.queue.operators import Role, add_operator  # noqa: E402
from markstation.queue.sqlite import SqliteStore  # noqa: E402
from markstation.queue.states import State  # noqa: E402
from markstation.station.server import BackgroundStation  # noqa: E402
from markstation.station.service import Station, StationConfig  # noqa: E402

TIMEOUT_MS = 20_000
#: a progress value above zero: the board runs the list
STARTED = re.compile(r"^(0\.0*[1-9][0-9]*|1(\.0*)?)$")
ROWS = [
    ("PE-SUCAMEC-2026-000201", "BXK512", "Glock", "17"),
    ("PE-SUCAMEC-2026-000202", "C00549", "CZ", "75 B"),
    ("PE-SUCAMEC-2026-000203", "TAV0586", "Taurus", "PT 92"),
]
TECH = ("Juan Quispe", "1357")
SUPER = ("Ana Flores", "2468")


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("MARKSTATION_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium on this machine (.ci/run installs the 'chromium' package)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"], timeout=TIMEOUT_MS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    expect.set_options(timeout=TIMEOUT_MS)


@contextmanager
def station(
    tmp_path: Path, *, lang: str = "en", timing: str = "instant", operators: bool = True
) -> Iterator[tuple[BackgroundStation, Path, Path]]:
    db = tmp_path / f"campaign-{lang}.db"
    ledger = tmp_path / f"ledger-{lang}.jsonl"
    batch = tmp_path / "batch.csv"
    batch.write_text(
        "mark_code,serial,make,model,caliber,owner\n"
        + "".join(f"{c},{s},{mk},{md},9x19mm,Seguridad Andina SAC\n" for c, s, mk, md in ROWS),
        encoding="utf-8",
    )
    admin = Actor("setup", "test")
    with SqliteStore(db) as store:
        import_batch(batch, store, actor=admin)
        if operators:
            add_operator(store, SUPER[0], Role.SUPERVISOR, SUPER[1], actor=admin)
            add_operator(store, TECH[0], Role.TECHNICIAN, TECH[1], actor=admin)
    config = StationConfig(
        db=db,
        device=f"sim://lmc?ledger={ledger}&timing={timing}",
        lang=lang,
        station_name="test-station",
    )
    with BackgroundStation(Station(config)) as bg:
        yield bg, db, ledger


def sign_in(page: Page, url: str, who: tuple[str, str], *, es: bool = False) -> None:
    page.goto(f"{url}/signin")
    page.get_by_role("textbox", name="Operador" if es else "Operator").fill(who[0])
    page.get_by_role("textbox", name="PIN").fill(who[1])
    page.get_by_role("button", name="Ingresar" if es else "Sign in").click()
    expect(page).to_have_url(f"{url}/campaign")


def state_of(page: Page) -> Any:
    return page.get_by_test_id("item-state")


def confirm_serial(page: Page, serial: str, *, es: bool = False) -> None:
    box = page.get_by_role("textbox", name="Número de serie de fábrica" if es else "Factory serial")
    expect(box).to_be_focused()  # a USB scanner types into it at once
    box.fill(serial)
    box.press("Enter")
    expect(state_of(page)).to_have_attribute("data-state", "ready")


def store_state(db: Path, code: str) -> State:
    with SqliteStore(db, recover=False) as store:
        item = store.item(code)
    assert item is not None
    return item.state


def test_sign_in_is_required_and_refuses_a_wrong_pin(browser: Browser, tmp_path: Path) -> None:
    with station(tmp_path) as (bg, _db, _ledger):
        page = browser.new_page()
        page.goto(f"{bg.url}/item")
        expect(page).to_have_url(f"{bg.url}/signin")
        page.get_by_role("textbox", name="Operator").fill(TECH[0])
        page.get_by_role("textbox", name="PIN").fill("0000")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert").filter(has_text="wrong PIN")).to_be_visible()
        sign_in(page, bg.url, TECH)
        expect(page.get_by_role("button", name="Mark next")).to_be_visible()
        cookies = page.context.cookies()
        session = next(c for c in cookies if c["name"] == "markstation_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        page.close()


def test_three_items_marked_through_the_ui(browser: Browser, tmp_path: Path) -> None:
    with station(tmp_path) as (bg, db, ledger):
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        sign_in(page, bg.url, TECH)
        page.get_by_role("button", name="Mark next").click()
        expect(page).to_have_url(f"{bg.url}/item")
        for n, (code, serial, make, _model) in enumerate(ROWS):
            expect(page.get_by_test_id("mark-code")).to_have_text(code)
            expect(state_of(page)).to_have_attribute("data-state", "awaiting-serial")
            expect(page.get_by_text(make, exact=True)).to_be_visible()
            if n == 0:
                # a scanned serial that does not match is refused on screen; nothing fires
                box = page.get_by_role("textbox", name="Factory serial")
                box.fill("XX999")
                box.press("Enter")
                expect(page.get_by_role("alert").filter(has_text="XX999")).to_be_visible()
                expect(state_of(page)).to_have_attribute("data-state", "awaiting-serial")
                assert read_jobs(ledger) == []
            confirm_serial(page, serial)
            expect(page.locator("img#preview")).to_be_visible()
            if n == 0:
                page.screenshot(path=str(tmp_path / "station-item-en.png"), full_page=True)
                page.get_by_role("button", name="Frame").click()
                expect(state_of(page)).to_have_attribute("data-state", "framing")
                page.get_by_role("button", name="Stop framing").click()
                expect(state_of(page)).to_have_attribute("data-state", "ready")
            page.get_by_role("button", name="Mark", exact=True).click()
            expect(state_of(page)).to_have_attribute("data-state", "marked")
            page.get_by_role("button", name="Pass").click()
            if n < len(ROWS) - 1:
                expect(page.get_by_test_id("mark-code")).to_have_text(ROWS[n + 1][0])
        expect(state_of(page)).to_have_attribute("data-state", "idle")
        expect(page.get_by_text("3 marked")).to_be_visible()
        jobs = read_jobs(ledger)
        assert len(jobs) == 3 and all(j.complete for j in jobs), jobs
        assert all(store_state(db, code) is State.MARKED for code, *_ in ROWS)
        with SqliteStore(db, recover=False) as store:
            inspections = [r for r in store.records() if r.type == "inspection"]
            started = [r for r in store.records() if r.type == "item-started"]
            refused = [r for r in store.records() if r.type == "serial-refused"]
        assert [r.payload["result"] for r in inspections] == ["pass"] * 3
        # the mismatch is journaled, as in the CLI, under the signed-in technician
        assert [(r.payload["code"], r.payload["typed"], r.operator) for r in refused] == [
            (ROWS[0][0], "XX999", TECH[0])
        ]
        assert {r.operator for r in started} == {TECH[0]}
        assert (tmp_path / "station-item-en.png").stat().st_size > 10_000
        page.close()


def test_abort_mid_mark_then_a_supervisor_resolves(browser: Browser, tmp_path: Path) -> None:
    code, serial = ROWS[0][0], ROWS[0][1]
    with station(tmp_path, timing="realtime") as (bg, db, ledger):
        page = browser.new_page()
        sign_in(page, bg.url, TECH)
        page.get_by_role("button", name="Mark next").click()
        expect(page.get_by_test_id("mark-code")).to_have_text(code)
        confirm_serial(page, serial)
        page.get_by_role("button", name="Mark", exact=True).click()
        expect(state_of(page)).to_have_attribute("data-state", "marking")
        expect(page.get_by_role("button", name="Abort")).to_be_visible()
        # the burn has begun (the board reports progress) before Esc is pressed
        expect(page.locator("progress#progress")).to_have_attribute("value", STARTED)
        page.keyboard.press("Escape")
        expect(state_of(page)).to_have_attribute("data-state", "interrupted")
        jobs = read_jobs(ledger)
        assert len(jobs) == 1 and jobs[0].complete is False, jobs
        assert store_state(db, code) is State.INTERRUPTED

        # a technician may not resolve or void: the buttons are absent and the server says 403
        page.goto(f"{bg.url}/items/{code}")
        expect(state_of(page)).to_have_attribute("data-state", "interrupted")
        expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
        expect(page.get_by_role("button", name="Void")).to_have_count(0)
        csrf = page.locator("body").get_attribute("data-csrf") or ""
        for url, form in (
            (f"/items/{code}/resolve", {"marked": "no", "reason": "x", "pin": TECH[1]}),
            (f"/items/{ROWS[1][0]}/void", {"reason": "x", "pin": TECH[1]}),
        ):
            response = page.request.post(
                f"{bg.url}{url}", form={**form, "csrf": csrf}, headers={"Origin": bg.url}
            )
            assert response.status == 403, (url, response.status)
        assert store_state(db, ROWS[1][0]) is State.PENDING
        page.get_by_role("button", name="Sign out").click()

        sign_in(page, bg.url, SUPER)
        page.get_by_role("link", name=code).first.click()
        page.get_by_label("No trace of the mark").check()
        page.get_by_role("textbox", name="Reason").fill("inspected: no trace on the frame")
        page.get_by_role("textbox", name="PIN").fill(SUPER[1])
        page.get_by_role("button", name="Resolve").click()
        expect(state_of(page)).to_have_attribute("data-state", "pending")
        assert store_state(db, code) is State.PENDING
        with SqliteStore(db, recover=False) as store:
            resolution = [r for r in store.records() if r.type == "resolution"]
        assert resolution[-1].operator == SUPER[0]
        page.close()


def test_import_of_an_invalid_file_shows_its_problems_and_changes_nothing(
    browser: Browser, tmp_path: Path
) -> None:
    with station(tmp_path) as (bg, db, _ledger):
        with SqliteStore(db, recover=False) as store:
            before = (len(store.items()), store.head().records)
        page = browser.new_page()
        sign_in(page, bg.url, TECH)
        page.goto(f"{bg.url}/import")
        expect(page.get_by_role("button", name="Validate and import")).to_have_count(0)
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, bg.url, SUPER)
        page.get_by_role("link", name="Import").click()
        page.get_by_label("Registry file").set_input_files(
            str(REPO / "examples" / "invalid-code-outside-scheme.csv")
        )
        page.get_by_role("button", name="Validate and import").click()
        expect(page.get_by_test_id("import-result")).to_contain_text("Nothing imported")
        problems = page.get_by_role("table", name="Problems").locator("tbody tr")
        expect(problems).not_to_have_count(0)
        expect(problems.first).to_contain_text("3")  # line 3 is the first bad row
        with SqliteStore(db, recover=False) as store:
            items = len(store.items())
        assert items == before[0]
        page.close()


def test_the_whole_flow_in_spanish(browser: Browser, tmp_path: Path) -> None:
    code, serial = ROWS[0][0], ROWS[0][1]
    with station(tmp_path, lang="es") as (bg, db, ledger):
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        sign_in(page, bg.url, TECH, es=True)
        expect(page.locator("html")).to_have_attribute("lang", "es")
        page.get_by_role("button", name="Marcar siguiente").click()
        expect(page.get_by_test_id("mark-code")).to_have_text(code)
        confirm_serial(page, serial, es=True)
        expect(page.get_by_role("button", name="Abortar")).to_be_visible()
        page.screenshot(path=str(tmp_path / "station-item-es.png"), full_page=True)
        page.get_by_role("button", name="Encuadrar").click()
        expect(state_of(page)).to_have_attribute("data-state", "framing")
        page.get_by_role("button", name="Detener el encuadre").click()
        expect(state_of(page)).to_have_attribute("data-state", "ready")
        page.get_by_role("button", name="Marcar", exact=True).click()
        expect(state_of(page)).to_have_attribute("data-state", "marked")
        expect(page.get_by_role("button", name="No conforme")).to_be_visible()
        page.get_by_role("button", name="Conforme", exact=True).click()
        expect(page.get_by_test_id("mark-code")).to_have_text(ROWS[1][0])
        assert store_state(db, code) is State.MARKED
        assert len(read_jobs(ledger)) == 1
        assert (tmp_path / "station-item-es.png").stat().st_size > 10_000
        page.close()
