"""Patients: a summary (assessed now from the stored timeline) and the timeline itself."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from feed.auth import AUTH_RESPONSES, clinician_key
from feed.deps import get_runtime, reading
from feed.responses import JSON
from feed.schemas import Storable, check_as_of
from storage import repository as repo
from storage import views
from storage.api_keys import ApiKey
from tasks import service

router = APIRouter(tags=["patients"], responses={**AUTH_RESPONSES, 404: {"description": "no such patient"}})
PatientId = Annotated[Storable, Path(min_length=1, max_length=64)]


def _stored(s: Session, patient_id: str) -> dict[str, Any]:
    stored = views.patient_view(s, patient_id, stored_summary=False)  # only whether it exists
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such patient")
    return stored


@router.get("/patients/{patient_id}", response_model=dict[str, Any],
            responses={400: {"description": "as_of out of range"}})
def patient_summary(
    patient_id: PatientId, request: Request,
    _: Annotated[ApiKey, Depends(clinician_key)],
    as_of: Annotated[date | None, Query(description="assess as of this date (default: the patient's last "
                                                    "assessment date, else today)")] = None,
) -> Response:
    """Remission state, risk category, active therapies, latest values (canonical units), treatment
    courses with their outcomes, the anti-PLA2R kinetics of the current course (half-life, projected
    dates below 14 and 2 RU/mL) and open alerts, from an assessment of the stored timeline."""
    check_as_of(as_of)
    with reading(request) as s:
        found = service.patient_summary(get_runtime(request), patient_id, as_of, s)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such patient")
    stored = found.stored
    return JSON({**found.assessment.summary(), "anti_pla2r_kinetics": found.kinetics.as_dict(),
            "open_alerts": stored["open_alerts"], "events": stored["events"],
            "pending_reassessment": stored["pending_reassessment"],
            "last_assessed_at": stored.get("last_assessed_at"), "last_as_of": stored.get("last_as_of"),
            "stored_remission_state": stored.get("remission_state"),
            "stored_risk_category": stored.get("risk_category")})


@router.get("/patients/{patient_id}/timeline", response_model=dict[str, Any])
def patient_timeline(patient_id: PatientId, request: Request,
                     _: Annotated[ApiKey, Depends(clinician_key)]) -> Response:
    """Usable lab results (clinical order, canonical units), medications and preliminary results."""
    with reading(request) as s:
        _stored(s, patient_id)
        t = repo.load_timeline(s, patient_id)

    def lab(r: Any) -> dict[str, Any]:
        return {"analyte": r.analyte, "value": r.value, "unit": r.unit, "comparator": r.comparator,
                "effective_at": r.effective_at.isoformat(), "status": r.status}

    return JSON({"patient_id": patient_id,
            "labs": [lab(r) for r in t.labs],
            "medications": [{"drug": m.drug, "dose": m.dose, "unit": m.unit, "route": m.route,
                             "frequency": m.frequency, "start": m.start.isoformat(),
                             "end": m.end.isoformat() if m.end else None, "status": m.status}
                            for m in t.medications],
            "preliminary": [lab(r) for r in t.preliminary]})
