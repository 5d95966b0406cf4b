"""Alerts as FHIR R4 Flag resources, for EHR integration (application/fhir+json)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from feed import fhir
from feed.auth import AUTH_RESPONSES, clinician_key
from feed.deps import read_session
from feed.schemas import Storable
from storage.api_keys import ApiKey
from storage.models import OPEN_STATUSES, AlertRow
from storage.serialize import alert_as_dict

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=AUTH_RESPONSES)
_alerts = AlertRow.__table__  # type: ignore[attr-defined]


class FhirResponse(JSONResponse):
    media_type = fhir.MEDIA_TYPE


def _patient_param(value: str) -> str:
    # FHIR reference search: "P1" or "Patient/P1"
    return value.removeprefix("Patient/")


@router.get("/Flag", response_class=FhirResponse, responses={200: {"content": {fhir.MEDIA_TYPE: {}}}})
def search_flags(
    request: Request, s: Session = Depends(read_session), _: ApiKey = Depends(clinician_key),
    patient: Annotated[Storable | None, Query(max_length=80, description="patient id or Patient/<id>")] = None,
    status: Annotated[str | None, Query(pattern="^(active|inactive)$", description="active|inactive")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
) -> FhirResponse:
    """A searchset Bundle of Flags (newest first), by patient and status."""
    q = select(_alerts).order_by(_alerts.c.raised_at.desc(), _alerts.c.id.desc()).limit(count)
    if patient is not None:
        q = q.where(_alerts.c.patient_id == _patient_param(patient))
    if status == "active":
        q = q.where(_alerts.c.status.in_(OPEN_STATUSES))
    elif status == "inactive":
        q = q.where(_alerts.c.status == "resolved")
    flags = [fhir.alert_to_flag(alert_as_dict(r._mapping)) for r in s.execute(q)]
    base = str(request.base_url).rstrip("/") + "/fhir"
    return FhirResponse(fhir.searchset(flags, str(request.url), base))


@router.get("/Flag/{flag_id}", response_class=FhirResponse,
            responses={200: {"content": {fhir.MEDIA_TYPE: {}}}, 404: {"description": "OperationOutcome"}})
def read_flag(flag_id: Annotated[str, Path(max_length=64)], s: Session = Depends(read_session),
              _: ApiKey = Depends(clinician_key)) -> FhirResponse:
    """One alert as a Flag."""
    row: Any = None
    if flag_id.isascii() and flag_id.isdigit() and 0 < int(flag_id) < 2**53:  # "²".isdigit() is True
        row = s.execute(select(_alerts).where(_alerts.c.id == int(flag_id))).one_or_none()
    if row is None:
        return FhirResponse(fhir.operation_outcome("not-found", f"Flag/{flag_id} is not known"), status_code=404)
    return FhirResponse(fhir.alert_to_flag(alert_as_dict(row._mapping)))
