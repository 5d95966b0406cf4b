"""The fake EHR shows the monitor's CDS Hooks cards in headless Chromium (playwright) against uvicorn.

The test signs the hook calls like an EHR, renders the cards in the fake EHR's chart page
(cds_fake_ehr.py) served from another origin, and the page itself calls the service from the browser
(CORS). Set IMN_SCREENSHOT_DIR to keep the screenshot (docs/img/cds_hooks_cards.png is made so).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from feed.app import create_app
from storage.db import upgrade
from tasks import runtime
from tasks.settings import Settings
from tests.integration.feed.cds_client import (
    ISS_FILE,
    OS,
    PV,
    Ehr,
    cyclosporine_order,
    hook_body,
    order_context,
    public_jwk,
    relapse_with_low_egfr,
    schema,
    serve_static,
)
from tests.integration.feed.cds_fake_ehr import page
from tests.integration.feed.conftest import serve
from tests.integration.feed.conftest_web import ingest
from tests.integration.feed.test_web_browser import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_fake_ehr_shows_the_cards(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public_jwk(key, "k1", "ES384")]}))
    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'imn.db'}", broker_url=None, webhook_url=None,
                               cds_trusted_issuers={ISS_FILE: str(tmp_path / "jwks.json")}, _env_file=None))
    try:
        upgrade(rt.engine)
        ingest(rt, relapse_with_low_egfr())
        with serve(create_app(rt)) as base:
            ehr = Ehr(ISS_FILE, "k1", "ES384", key, base=base)
            pv = httpx.post(f"{base}/cds-services/{PV}", json=hook_body("patient-view", "P-REL"),
                            headers=ehr.headers(PV)).json()
            order = cyclosporine_order("mr-1", "2025-09-05", "Cyclosporine 100 MG Oral Capsule")
            os_cards = httpx.post(f"{base}/cds-services/{OS}",
                                  json=hook_body("order-select", "P-REL", **order_context(order)),
                                  headers=ehr.headers(OS)).json()
            for doc in (pv, os_cards):
                schema("response").validate(doc)
            assert pv["cards"] and os_cards["cards"]
            in_browser = {"url": f"{base}/cds-services/{PV}", "token": ehr.token(PV),
                          "body": hook_body("patient-view", "P-REL")}
            chart = page({"name": "Test patient P-REL", "mrn": "P-REL", "born": "1966-05-05"},
                         "Cyclosporine 100 mg orally twice daily, from 2025-09-05 (draft)",
                         [("Chart opened (patient-view)", pv["cards"]),
                          ("Cyclosporine being ordered (order-select)", os_cards["cards"])], in_browser)
            with serve_static({"/chart.html": (chart.encode(), "text/html; charset=utf-8")}) as ehr_base:
                tab = browser.new_page(viewport={"width": 1280, "height": 900})
                tab.set_default_timeout(15_000)
                tab.goto(f"{ehr_base}/chart.html")
                # the page's own call from another origin went through (CORS) and got the same cards
                tab.wait_for_function("document.getElementById('browser-count').textContent !== '\u2026'")
                assert tab.inner_text("#browser-count") == str(len(pv["cards"]))
                assert tab.locator("article.card").count() == len(pv["cards"]) + len(os_cards["cards"])
                critical = tab.locator("article.card.critical")
                assert critical.count() == 1
                text = critical.inner_text()
                assert "Relapse" in text and "muted by this alert" in text and "Anti-PLA2R titer rising" in text
                assert critical.locator("td", has_text="5.2 g/d").count() == 1  # the markdown table rendered
                warning = tab.locator("article.card.warning", has_text="Cyclosporine ordered")
                assert "52 mL/min/1.73 m\u00b2" in warning.inner_text()
                shots = Path(os.environ.get("IMN_SCREENSHOT_DIR") or tmp_path)
                tab.screenshot(path=str(shots / "cds_hooks_cards.png"), full_page=True)
    finally:
        runtime.reset()
