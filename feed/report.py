"""The clinic outcome report over HTTP (tasks.report.clinic_report; one cached report serves all three):

    GET /report                   JSON (clinician or admin key)
    GET /report/remission.png     the remission curves per regimen (key, or the page's session)
    GET /ui/report                the clinician page (linked from the page header)

`as_of` (YYYY-MM-DD) defaults to the latest nightly assessment's date.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from feed import report_view
from feed.auth import AUTH_RESPONSES, clinician_key
from feed.report_plot import render_remission_curves
from feed.web import UiSession, _page, clinician_or_ui_session, ui_session
from monitor.outcome_report import OutcomeReport
from storage.api_keys import ApiKey
from tasks.report import clinic_report

router = APIRouter(tags=["report"], responses=AUTH_RESPONSES)
ui_router = APIRouter(include_in_schema=False)
AsOf = Annotated[date | None, Query(description="report as of this date (default: the latest nightly assessment)")]


def _report(request: Request, as_of: date | None) -> OutcomeReport:
    if as_of is not None and not (date(1900, 1, 1) <= as_of <= date(2200, 12, 31)):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="as_of must be between 1900 and 2200")
    return clinic_report(request.app.state.runtime, as_of)


@router.get("/report", responses={400: {"description": "as_of out of range"}})
def report_json(request: Request, _: ApiKey = Depends(clinician_key), as_of: AsOf = None) -> dict[str, Any]:
    """Per regimen: courses, remission at 6/12/24 months (Kaplan-Meier, 95% CI), relapse, time to
    immunological remission, alerts per patient-year, and the published figures with their sources."""
    return _report(request, as_of).as_dict()


@router.get("/report/remission.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "PNG plot"},
                       400: {"description": "as_of out of range"}})
def report_png(request: Request, _: str = Depends(clinician_or_ui_session), as_of: AsOf = None) -> Response:
    """The remission curves per regimen with the published figures (PNG)."""
    png = render_remission_curves(_report(request, as_of))
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@ui_router.get("/ui/report", response_class=HTMLResponse)
def report_page(request: Request, as_of: str | None = None, sess: UiSession = Depends(ui_session)) -> HTMLResponse:
    day, error = None, None
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            error = f"{as_of!r} is not a date (YYYY-MM-DD): showing the latest report."
    report = _report(request, day)
    return _page(request, "report.html", {
        "sess": sess, **report_view.context(report), "here": "/ui/report", "error": error,
        "plot_src": f"/report/remission.png?as_of={quote(report.as_of.isoformat())}"},
        status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK)
