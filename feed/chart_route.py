"""GET /patients/{id}/chart.png: the route serving the chart that feed/chart_plot.py draws (this module
loads the patient's timeline and alerts; the drawing is pure and lives there)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from feed.auth import AUTH_RESPONSES
from feed.chart_plot import render_chart
from feed.schemas import Storable, check_as_of
from feed.web import clinician_or_ui_session
from storage import repository as repo
from storage import views
from storage.db import session

router = APIRouter(tags=["patients"], responses=AUTH_RESPONSES)


@router.get("/patients/{patient_id}/chart.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "PNG chart"},
                       400: {"description": "as_of out of range"}, 404: {"description": "unknown patient"}})
def patient_chart(
    patient_id: Annotated[Storable, Path(min_length=1, max_length=64)],
    request: Request,
    _: str = Depends(clinician_or_ui_session),
    as_of: Annotated[date | None, Query(description="chart up to this date (default: today)")] = None,
) -> Response:
    """anti-PLA2R and proteinuria over time (two y-axes), albumin and CNI troughs, therapy courses as
    bands, alerts as markers, KDIGO reference lines. Clinician or admin key, or the web page's session."""
    check_as_of(as_of)
    rt = request.app.state.runtime
    day = as_of or rt.settings.today()
    with session(rt.engine, write=False) as s:
        if views.patient_view(s, patient_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no patient {patient_id}")
        timeline = repo.load_timeline(s, patient_id)
        alerts = views.list_alerts(s, patient_id=patient_id)
    png = render_chart(timeline, alerts, day)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})
