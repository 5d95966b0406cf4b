"""The whole SMART App Launch in headless Chromium: from the fake EHR's patient chart (http://localhost:…)
through imn-monitor's /smart/launch (http://127.0.0.1:…, another site), the EHR's consent page and
the callback, to the patient page showing that patient's alerts, signed in without an API key.

Skipped only when /usr/bin/chromium is absent and IMN_REQUIRE_BROWSER is not "1" (CI sets it).
Set IMN_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.feed import conftest_web, smart_fake_ehr, test_web_browser

# fixtures shared by name (web_rt is this module's own, below)
app, live_server, seeded = conftest_web.app, conftest_web.live_server, conftest_web.seeded
browser = test_web_browser.browser

pytestmark = pytest.mark.integration


@pytest.fixture
def ehr():  # type: ignore[no-untyped-def]
    with smart_fake_ehr.running() as e:
        yield e


@pytest.fixture
def web_rt(tmp_path, ehr):  # type: ignore[no-untyped-def]
    from storage.db import upgrade
    from tasks import runtime
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'imn.db'}", broker_url=None, webhook_url=None,
                               smart_clients={ehr.iss: smart_fake_ehr.CLIENT_ID}, smart_http_timeout_s=5,
                               _env_file=None))
    upgrade(rt.engine)
    yield rt
    runtime.reset()


def test_an_ehr_launch_opens_the_patient_page_with_its_alerts(  # type: ignore[no-untyped-def]
        seeded, ehr, live_server, browser, tmp_path) -> None:
    ehr.app_base = live_server
    shots = Path(os.environ.get("IMN_SCREENSHOT_DIR") or tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(ehr.base + "/ehr/chart/P-ALB")  # the clinician has the patient's chart open in the EHR
    page.click("#launch")
    page.wait_for_url(ehr.base + "/auth/authorize?**")  # imn-monitor sent the browser to the EHR's sign-in
    page.screenshot(path=str(shots / "smart-consent.png"))
    page.click("#allow")
    page.wait_for_url(live_server + "/ui/patients/P-ALB")
    card = page.locator("article.alert.critical", has_text="albumin_low_thrombosis")
    assert card.count() == 1
    assert "opened from the EHR for patient P-ALB" in page.locator("header").inner_text()
    assert ehr.iss + "/Practitioner/dr-ehr" in page.locator("header").inner_text()
    page.wait_for_function("() => document.querySelector('img.chart').naturalWidth > 800")  # the chart, too
    page.screenshot(path=str(shots / "smart-patient.png"), full_page=True)
    cookies = {c["name"]: c for c in context.cookies(live_server)}
    assert cookies["imn_session"]["sameSite"] == "Strict" and cookies["imn_session"]["httpOnly"]
    assert "imn_smart_launch" not in cookies  # the launch's binding cookie is gone with the launch
    # the session is this patient's only: the clinic-wide list leads back to the patient
    page.goto(live_server + "/")
    assert page.url == live_server + "/ui/patients/P-ALB"
    context.close()
