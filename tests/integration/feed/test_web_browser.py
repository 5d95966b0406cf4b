"""The clinician page in a real browser: headless Debian chromium (playwright) against uvicorn.

Skipped only when /usr/bin/chromium is absent and IMN_REQUIRE_BROWSER is not "1" (CI sets it).
Set IMN_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.feed.conftest_web import app, keys, live_server, seeded, web_rt  # noqa: F401

pytestmark = pytest.mark.integration
CHROMIUM = Path(os.environ.get("IMN_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        if os.environ.get("IMN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is absent and IMN_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is absent (set IMN_REQUIRE_BROWSER=1 to fail instead)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_clinician_logs_in_sees_the_critical_alert_and_acknowledges_it(  # type: ignore[no-untyped-def]
        seeded, keys, live_server, browser, tmp_path) -> None:
    shots = Path(os.environ.get("IMN_SCREENSHOT_DIR") or tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(live_server + "/")
    assert "/ui/login" in page.url  # not logged in: the login form
    page.fill("input[name=key]", keys.clinician)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    card = page.locator("article.alert.critical", has_text="albumin_low_thrombosis")
    assert card.count() == 1
    assert card.get_attribute("data-status") == "firing"
    assert "P-ALB" in card.inner_text()
    page.screenshot(path=str(shots / "alerts.png"), full_page=True)
    card.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(".flash.ok")
    card = page.locator("article.alert.critical", has_text="albumin_low_thrombosis")
    assert card.get_attribute("data-status") == "acknowledged"
    assert "acknowledged by dr-clinician" in card.inner_text()
    page.screenshot(path=str(shots / "acknowledged.png"), full_page=True)
    page.locator("a[href='/ui/patients/P-RTX']").first.click()  # the patient page and its chart
    page.wait_for_url(live_server + "/ui/patients/P-RTX")
    page.wait_for_function("() => document.querySelector('img.chart').naturalWidth > 800")
    page.screenshot(path=str(shots / "patient.png"), full_page=True)
    page.close()


def test_an_inhibited_alert_is_marked_in_its_patient_group_and_links_to_its_inhibitor(  # type: ignore[no-untyped-def]
        seeded, keys, live_server, browser, tmp_path) -> None:
    from tests.integration.feed.conftest_web import ingest, relapse_case

    ingest(seeded, relapse_case())
    shots = Path(os.environ.get("IMN_SCREENSHOT_DIR") or tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(live_server + "/ui/login")
    page.fill("input[name=key]", keys.clinician)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    group = page.locator("section.group[data-group='patient:P-REL']")
    muted = group.locator("article.alert.inhibited")
    assert muted.count() == 1 and "titer_rising" in muted.inner_text()
    assert "inhibited" in muted.locator(".badge.inhibited").inner_text().lower()
    inhibitor = group.locator("article.alert.critical", has_text="relapse")
    target = inhibitor.get_attribute("id")
    page.screenshot(path=str(shots / "grouped.png"), full_page=True)
    muted.locator("p.inhibition a").click()
    page.wait_for_url(f"{live_server}/#{target}")
    assert page.evaluate("() => location.hash") == f"#{target}"
    page.close()
