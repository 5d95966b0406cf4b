"""Which monitor patient an EHR's patient is: the one mapping shared by CDS Hooks and SMART App Launch.

Two modes, chosen by configuration (Settings.ehr_mrn_system, IMN_EHR_MRN_SYSTEM):

- unset: the EHR's FHIR Patient id is the monitor's patient id (a feed that ingests from the same
  FHIR server by logical id);
- set: only the Patient resource's identifier of that system (the MRN) is trusted. The FHIR id is then
  an arbitrary server id that may equal another person's MRN, so it is never used as a fallback: a
  wrong-patient card is worse than no card. Without the Patient resource nothing can be resolved.

A resolution that is not a known monitor patient, or is ambiguous, gives None; callers answer "no
data" (an empty card list, a clear page), never an error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.db import session as db_session
from storage.models import PatientRow


def mrn_values(patient_resource: dict[str, Any] | None, mrn_system: str) -> list[str]:
    """The values of the Patient's identifiers of `mrn_system`, in order, without duplicates."""
    if not isinstance(patient_resource, dict):
        return []
    values: list[str] = []
    for ident in patient_resource.get("identifier") or []:
        if not isinstance(ident, dict) or ident.get("system") != mrn_system:
            continue
        value = ident.get("value")
        if isinstance(value, str) and value.strip() and value.strip() not in values:
            values.append(value.strip())
    return values


def candidates(fhir_patient_id: str, patient_resource: dict[str, Any] | None,
               mrn_system: str | None) -> list[str]:
    """The monitor ids this EHR patient may be (pure: no database). Empty when the Patient resource
    contradicts the context (another resourceType, another id): never guess across patients."""
    if isinstance(patient_resource, dict):
        if patient_resource.get("resourceType") not in (None, "Patient"):
            return []
        rid = patient_resource.get("id")
        if rid is not None and fhir_patient_id and str(rid) != fhir_patient_id:
            return []
    if mrn_system:
        return mrn_values(patient_resource, mrn_system)
    pid = (fhir_patient_id or "").strip()
    return [pid] if pid else []


def resolve_patient(session_or_engine: Session | Engine, fhir_patient_id: str,
                    patient_resource: dict[str, Any] | None, *, mrn_system: str | None = None) -> str | None:
    """The monitor's patient id for the EHR's patient, or None (unknown, ambiguous, contradictory).

    Pass `mrn_system=settings.ehr_mrn_system`; None (the default) maps by FHIR Patient id only.
    `patient_resource` is the EHR's Patient (a CDS Hooks prefetch, a SMART FHIR read), or None."""
    ids = candidates(fhir_patient_id, patient_resource, mrn_system)
    if not ids:
        return None
    if isinstance(session_or_engine, Session):
        known = _known(session_or_engine, ids)
    else:
        with db_session(session_or_engine, write=False) as s:
            known = _known(s, ids)
    # two MRNs of the same system naming two monitor patients: ambiguous, resolve to nobody
    return known[0] if len(known) == 1 else None


def _known(s: Session, ids: list[str]) -> list[str]:
    rows = s.exec(select(PatientRow.patient_id).where(PatientRow.patient_id.in_(ids))).all()  # type: ignore[attr-defined]
    found = set(rows)
    return [i for i in ids if i in found]
