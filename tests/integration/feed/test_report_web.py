"""The outcome report over HTTP (JSON, plot, clinician page) and the anti-PLA2R kinetics on the patient
summary, page and chart (embedded default: SQLite, in-process tasks)."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from tests.integration.feed.conftest_web import (  # noqa: F401
    AS_OF,
    app,
    bearer,
    client,
    ingest,
    keys,
    lab,
    med,
    seeded,
    web_rt,
)

pytestmark = pytest.mark.integration


def _kinetics_patient() -> list[dict]:
    """P-KIN: rituximab on 2025-05-01; anti-PLA2R 160, 80, 40 RU/mL a month apart (half-life 30 days)."""
    ev: list[dict] = [{"type": "patient", "patient_id": "P-KIN", "birth_date": "1970-01-01", "sex": "female"},
                      med("P-KIN", "rituximab", "2025-05-01", dose=1000, unit="mg", route="iv")]
    for d, v in [("2025-05-01", 160), ("2025-05-31", 80), ("2025-06-30", 40)]:
        ev += [lab("P-KIN", "anti_pla2r", v, "RU/mL", d), lab("P-KIN", "proteinuria_24h", 6.0, "g/d", d)]
    return ev


@pytest.fixture
def with_kinetics(seeded):  # type: ignore[no-untyped-def]
    ingest(seeded, _kinetics_patient())
    return seeded


def _login(client, key: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/ui/login", data={"key": key, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_report_json_needs_a_clinician_and_states_the_caveat(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/report").status_code == 401
    assert client.get("/report", headers=bearer(keys.ingest)).status_code == 403
    r = client.get("/report", headers=bearer(keys.clinician))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of"] == AS_OF.isoformat()  # the latest assessment's date
    assert body["caveat"].startswith("Not a randomised trial")
    regimens = {x["regimen"]: x for x in body["regimens"]}
    assert {"anti_cd20", "cyclosporine", "supportive"} <= set(regimens)
    assert regimens["anti_cd20"]["published"]
    assert client.get("/report", params={"as_of": "2025-02-01"}, headers=bearer(keys.admin)).json()["as_of"] == "2025-02-01"


def test_report_plot_is_a_png_for_a_key_or_the_page_session(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/report/remission.png").status_code == 401
    r = client.get("/report/remission.png", headers=bearer(keys.clinician))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.width >= 900 and img.height >= 300
    _login(client, keys.clinician)
    assert client.get("/report/remission.png").status_code == 200


def test_report_page_is_linked_and_needs_a_login(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/ui/report", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    _login(client, keys.clinician)
    assert 'href="/ui/report"' in client.get("/").text  # in the header of every page
    page = client.get("/ui/report")
    assert page.status_code == 200
    assert "Not a randomised trial" in page.text and "MENTOR" in page.text and "GEMRITUX" in page.text
    assert f'src="/report/remission.png?as_of={AS_OF.isoformat()}"' in page.text
    bad = client.get("/ui/report", params={"as_of": "soon"})
    assert bad.status_code == 400 and "is not a date" in bad.text


def test_patient_summary_page_and_chart_show_the_kinetics(with_kinetics, client, keys) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/patients/P-KIN", params={"as_of": "2025-07-05"}, headers=bearer(keys.clinician))
    assert r.status_code == 200, r.text
    kinetics = r.json()["anti_pla2r_kinetics"]
    assert kinetics["state"] == "falling" and kinetics["half_life_days"] == 30.0
    below14 = kinetics["crossings"][0]
    assert below14["state"] == "projected" and below14["date"] == "2025-08-14"  # 45 days after 40 RU/mL
    assert r.json()["courses"][-1]["regimen"] == "anti_cd20"
    _login(client, keys.clinician)
    page = client.get("/ui/patients/P-KIN")
    assert page.status_code == 200
    assert "anti-PLA2R kinetics" in page.text and "half-life 30 days" in page.text
    chart = client.get("/patients/P-KIN/chart.png", params={"as_of": "2025-07-05"})
    assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"


def test_draw_kinetics_adds_the_fit_and_the_projection() -> None:
    from matplotlib.figure import Figure

    from feed.chart_plot import draw_kinetics, kinetics_extent
    from monitor.kinetics import titer_kinetics
    from monitor.timeline import Timeline
    from tests.unit.rules.builders import day
    from tests.unit.rules.builders import lab as unit_lab
    from tests.unit.rules.builders import med as unit_med

    events = [unit_med("P", "rituximab", 0, 1000, "mg")] + [
        unit_lab("P", "anti_pla2r", v, "RU/mL", 30 * i) for i, v in enumerate([160, 80, 40])]
    k = titer_kinetics(Timeline.build("P", events), day(70))
    ax = Figure().add_subplot()
    draw_kinetics(ax, k, day(70))
    labels = ax.get_legend_handles_labels()[1]
    assert "anti-PLA2R fit (half-life 30 d)" in labels
    assert max(kinetics_extent(k)).date() >= date(2025, 7, 9)  # the 2 RU/mL crossing lies ahead
