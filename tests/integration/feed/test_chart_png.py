"""GET /patients/{id}/chart.png and the pure renderer behind it."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from feed.chart_plot import render_chart, therapy_spans
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


def _rich_timeline() -> tuple[Timeline, list[dict]]:
    """Every series, four therapy rows and three alert severities: the most legend entries a chart has."""
    from tests.unit.rules.builders import PID, lab, med, patient

    events = [patient(birth_date="1960-01-01", sex="male"),
              med(PID, "rituximab", 0, 1000, "mg"), med(PID, "rituximab", 14, 1000, "mg"),
              med(PID, "cyclosporine", 200, 100, "mg", frequency="bid"),
              med(PID, "tacrolimus", 500, 2, "mg", frequency="bid"),
              med(PID, "glucocorticoid", 0, 50, "mg", frequency="qd", end=60),
              med(PID, "cyclophosphamide", 300, 100, "mg", frequency="qd", end=360)]
    for d, titer, upcr, alb, csa, tac in [(-10, 600, 900, 19, None, None), (90, 80, 700, 22, None, None),
                                          (210, 30, 500, 25, 90, None), (300, 14.5, 360, 28, 99.95, None),
                                          (520, 21, 200, 33, None, 4.2), (600, 12, 124.644, 36, None, 2.9)]:
        events += [lab(PID, "anti_pla2r", titer, "RU/mL", d), lab(PID, "upcr", upcr, "mg/mmol", d),
                   lab(PID, "serum_albumin", alb, "g/L", d)]
        events += [lab(PID, "csa_trough", csa, "ng/mL", d)] if csa else []
        events += [lab(PID, "tac_trough", tac, "ng/mL", d)] if tac else []
    alerts = [{"rule": "rtx_non_response", "severity": "critical", "status": "firing",
               "evidence": [{"effective_at": "2025-07-01"}]},
              {"rule": "csa_trough_low", "severity": "warning", "status": "resolved",
               "evidence": [{"effective_at": "2025-10-28"}]},
              {"rule": "monitoring_overdue", "severity": "info", "status": "firing",
               "evidence": [{"effective_at": "2026-05-01"}]}]
    return Timeline.build(PID, events), alerts


@pytest.mark.parametrize("width_px", [900, 1100, 1400])
def test_the_title_and_the_legend_do_not_overlap_each_other_or_the_panels(width_px: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from feed.chart_plot import chart_figure

    timeline, alerts = _rich_timeline()
    fig = chart_figure(timeline, alerts, date(2026, 9, 1), width_px=width_px)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    [legend] = fig.legends
    assert len(legend.get_texts()) == 12  # 5 series, 4 therapy rows, 3 alert severities
    title = fig._suptitle.get_window_extent(renderer)  # type: ignore[union-attr]
    box = legend.get_window_extent(renderer)
    assert not title.overlaps(box), (title, box)
    for ax in fig.axes:  # neither touches a panel, its tick labels or its title ("therapy")
        tight = ax.get_tightbbox(renderer)
        assert not tight.overlaps(box) and not tight.overlaps(title), (ax, tight, box)
    figure_box = fig.bbox
    assert box.x1 <= figure_box.x1 and box.y1 <= figure_box.y1  # the legend is wholly inside the image
