"""GET /patients/{id}/chart.png and the pure renderer behind it."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from feed.chart import render_chart, therapy_spans
from monitor.timeline import Timeline
from tests.integration.feed.conftest_web import AS_OF, app, bearer, client, keys, seeded, web_rt  # noqa: F401

pytestmark = pytest.mark.integration
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _image(data: bytes) -> Image.Image:
    assert data[:8] == PNG_MAGIC
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_chart_of_a_patient_with_courses_and_alerts(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    alerts = client.get("/alerts", params={"patient": "P-RTX"}, headers=bearer(keys.clinician)).json()
    r = client.get("/patients/P-RTX/chart.png", params={"as_of": "2025-09-01"}, headers=bearer(keys.clinician))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert "no-store" in r.headers["cache-control"]
    img = _image(r.content)
    assert 900 <= img.width <= 1600 and 500 <= img.height <= 1400
    assert 20_000 < len(r.content) < 1_000_000
    assert alerts  # the chart had alerts to mark (the list shape is the API's business)


def test_chart_for_unknown_patient_is_404_and_needs_a_clinician(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/patients/NOPE/chart.png", headers=bearer(keys.clinician)).status_code == 404
    assert client.get("/patients/P-RTX/chart.png").status_code == 401
    assert client.get("/patients/P-RTX/chart.png", headers=bearer(keys.ingest)).status_code == 403
    assert client.get("/patients/P-RTX/chart.png", headers=bearer(keys.admin)).status_code == 200


def test_render_chart_is_pure_and_handles_an_empty_timeline() -> None:
    png = render_chart(Timeline.build("P-EMPTY", []), [], date(2025, 1, 1))
    img = _image(png)
    assert img.width > 500


def test_therapy_spans_use_anti_cd20_courses(seeded) -> None:  # type: ignore[no-untyped-def]
    from storage import repository as repo
    from storage.db import session

    with session(seeded.engine, write=False) as s:
        tl = repo.load_timeline(s, "P-RTX")
    spans = therapy_spans(tl, AS_OF)
    assert spans["anti-CD20"] == [(date(2024, 9, 2), date(2024, 9, 16), "rituximab x2")]
    assert spans["steroids"][0][:2] == (date(2024, 9, 2), date(2024, 9, 16))
