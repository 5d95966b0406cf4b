"""Alerts: a filtered, sorted, cursor-paginated list; one alert with evidence and audit trail; and
clinicians' actions, each audited with the acting API key's name."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from feed import queries
from feed.auth import AUTH_RESPONSES, clinician_key
from feed.deps import get_runtime, reading
from feed.responses import JSON
from feed.schemas import (
    AcknowledgeBody,
    AssignBody,
    CommentBody,
    Id,
    ResolveBody,
    SnoozeBody,
    Storable,
    in_utc,
)
from monitor.findings import SEVERITY_RANK
from monitor.rules import RULE_IDS
from storage import repository as repo
from storage import views
from storage.api_keys import ApiKey
from storage.models import ALERT_STATUSES
from tasks import service

router = APIRouter(tags=["alerts"], responses=AUTH_RESPONSES)

Rule = Enum("Rule", {r: r for r in RULE_IDS}, type=str)  # type: ignore[misc]


# choices derived from their one definition, like Rule above
Severity = Enum("Severity", {k: k for k in SEVERITY_RANK}, type=str)  # type: ignore[misc]
StatusFilter = Enum("StatusFilter", {k: k for k in ("open", *ALERT_STATUSES)}, type=str)  # type: ignore[misc]


class Sort(str, Enum):
    severity = "severity"
    raised_at = "raised_at"
    updated_at = "updated_at"


class Order(str, Enum):
    asc = "asc"
    desc = "desc"


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            detail="since must be a date (YYYY-MM-DD) or an ISO-8601 date-time") from None
    try:
        return in_utc(dt, "since")
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None


@router.get("/alerts", response_model=dict[str, Any], responses={400: {"description": "invalid cursor or since"}})
def list_alerts(
    request: Request,
    _: Annotated[ApiKey, Depends(clinician_key)],
    patient: Annotated[Storable | None, Query(max_length=64, description="patient id")] = None,
    rule: Rule | None = None,
    severity: Severity | None = None,
    status_: Annotated[StatusFilter | None, Query(alias="status",
                                                  description="'open' = firing, acknowledged or snoozed")] = None,
    since: Annotated[str | None, Query(description="only alerts updated at or after this date / date-time")] = None,
    sort: Sort = Sort.severity,
    order: Order = Order.desc,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page")] = None,
) -> Response:
    """Alerts, one page at a time. Sort by severity (then raised_at), raised_at or updated_at, with
    the alert id as the last tie-breaker; `next_cursor` is null on the last page. A cursor is only
    valid with the same filters, sort and order."""
    flt = queries.AlertFilter(patient, rule.value if rule else None, severity.value if severity else None,
                              status_.value if status_ else None, _since(since))
    try:
        with reading(request) as s:
            return JSON(queries.alert_page(s, flt, sort.value, order.value, limit, cursor))
    except queries.CursorError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None


@router.get("/alerts/{alert_id}", response_model=dict[str, Any], responses={404: {"description": "no such alert"}})
def get_alert(alert_id: Id, request: Request, _: Annotated[ApiKey, Depends(clinician_key)]) -> Response:
    """One alert with its evidence, reference and audit history (oldest first)."""
    with reading(request) as s:
        out = views.alert_detail(s, alert_id)
    if out is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such alert")
    return JSON(out)


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such alert"},
    409: {"description": "the alert's state does not allow this action"},
}


def _act(request: Request, alert_id: Id, action: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return service.act(get_runtime(request), alert_id, action, **kwargs)
    except repo.AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such alert") from None
    except repo.AlertActionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.post("/alerts/{alert_id}/acknowledge", responses=_ACTION_RESPONSES)
def acknowledge(alert_id: Id, request: Request, body: AcknowledgeBody | None = None,
                key: ApiKey = Depends(clinician_key)) -> dict[str, Any]:
    """Acknowledge a firing or snoozed alert (optional comment)."""
    return _act(request, alert_id, "acknowledge", actor=key.name, comment=body.comment if body else None)


@router.post("/alerts/{alert_id}/assign", responses=_ACTION_RESPONSES)
def assign(alert_id: Id, body: AssignBody, request: Request, key: ApiKey = Depends(clinician_key)) -> dict[str, Any]:
    """Assign an open alert to someone."""
    return _act(request, alert_id, "assign", assignee=body.assignee, actor=key.name)


@router.post("/alerts/{alert_id}/snooze", responses=_ACTION_RESPONSES)
def snooze(alert_id: Id, body: SnoozeBody, request: Request, key: ApiKey = Depends(clinician_key)) -> dict[str, Any]:
    """Snooze an open alert until a future time; it fires again then if the condition persists."""
    return _act(request, alert_id, "snooze", until=body.until, actor=key.name, comment=body.comment)


@router.post("/alerts/{alert_id}/resolve", responses=_ACTION_RESPONSES)
def resolve(alert_id: Id, body: ResolveBody, request: Request, key: ApiKey = Depends(clinician_key)) -> dict[str, Any]:
    """Resolve an alert by hand; the comment (why) is required."""
    return _act(request, alert_id, "resolve", actor=key.name, comment=body.comment)


@router.post("/alerts/{alert_id}/comment", responses=_ACTION_RESPONSES)
def comment(alert_id: Id, body: CommentBody, request: Request, key: ApiKey = Depends(clinician_key)) -> dict[str, Any]:
    """Add a comment to the alert's audit trail (the alert itself does not change)."""
    return _act(request, alert_id, "comment", actor=key.name, text=body.text)
