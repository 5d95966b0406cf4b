"""CDS Hooks use cases: answer a hook with cards, record the EHR's feedback on them.

The cards themselves are built by monitor/cds.py (pure); this module finds the patient
(tasks/ehr_identity.py), loads what the cards are built from, and writes feedback through the same
storage calls as the alert actions of the API (storage.repository.acknowledge / comment).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from monitor import cds
from monitor.egfr import egfr_series
from storage import repository as repo
from storage import views
from storage.db import session
from tasks.cds_auth import CdsClient
from tasks.ehr_identity import resolve_patient
from tasks.runtime import Runtime

log = logging.getLogger("imn.cds")

HOOKS = {cds.PATIENT_VIEW: "patient-view", cds.ORDER_SELECT: "order-select"}
# reading the Patient from the EHR's FHIR server when it sent no prefetch (MRN mapping only)
FHIR_TIMEOUT_S = 5.0
FHIR_MAX_BYTES = 1024 * 1024


class HookRequestError(ValueError):
    """A hook request the service cannot read (answered 400 with this reason)."""


@dataclass(frozen=True)
class HookRequest:
    service: str
    hook: str
    patient_id: str  # the EHR's FHIR Patient id (context.patientId)
    context: dict[str, Any]
    prefetch: dict[str, Any]
    fhir_server: str | None = None
    fhir_authorization: dict[str, Any] | None = None


def parse_request(service: str, body: Any) -> HookRequest:
    if not isinstance(body, dict):
        raise HookRequestError("the request body must be a JSON object")
    hook = body.get("hook")
    if hook != HOOKS[service]:
        raise HookRequestError(f"service {service} answers the {HOOKS[service]} hook, not {hook!r}")
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        raise HookRequestError("hookInstance is required")
    context = body.get("context")
    if not isinstance(context, dict):
        raise HookRequestError("context is required")
    pid = context.get("patientId")
    if not isinstance(pid, str) or not pid.strip():
        raise HookRequestError("context.patientId is required")
    prefetch = body.get("prefetch")
    server, auth = body.get("fhirServer"), body.get("fhirAuthorization")
    return HookRequest(service, hook, pid.strip(), context, prefetch if isinstance(prefetch, dict) else {},
                       server if isinstance(server, str) else None, auth if isinstance(auth, dict) else None)


def patient_link(rt: Runtime, base_url: str, patient_id: str) -> cds.PatientLink:
    """The SMART launch when SMART is configured (the EHR launches it in the patient's context), else the
    patient page's absolute URL (the clinician signs in there)."""
    if rt.settings.smart_clients:
        return cds.PatientLink(f"{base_url}/smart/launch", "smart")
    return cds.PatientLink(f"{base_url}/ui/patients/{quote(patient_id, safe='')}", "absolute")


def _patient_resource(prefetch: dict[str, Any]) -> dict[str, Any] | None:
    res = prefetch.get("patient")
    return res if isinstance(res, dict) and res.get("resourceType") == "Patient" else None


def fetch_patient(req: HookRequest) -> dict[str, Any] | None:
    """The Patient read from the EHR's FHIR server with the access token the hook carries (CDS Hooks
    "FHIR resource access"), or None: no server or token, or any failure (logged without the body)."""
    auth = req.fhir_authorization or {}
    token = auth.get("access_token")
    if not req.fhir_server or not req.fhir_server.startswith(("https://", "http://")) or not isinstance(token, str) \
            or str(auth.get("token_type", "")).lower() != "bearer":
        return None
    url = f"{req.fhir_server.rstrip('/')}/Patient/{quote(req.patient_id, safe='')}"
    try:
        resp = httpx.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
                         timeout=FHIR_TIMEOUT_S, follow_redirects=False)
        if resp.status_code != 200 or len(resp.content) > FHIR_MAX_BYTES:
            log.info("cds: Patient read from the EHR answered %s", resp.status_code)
            return None
        doc = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.info("cds: Patient read from the EHR failed: %s", type(exc).__name__)
        return None
    return doc if isinstance(doc, dict) and doc.get("resourceType") == "Patient" else None


def answer(rt: Runtime, req: HookRequest, base_url: str) -> dict[str, Any]:
    """{"cards": [...]} for the hook; an EHR patient the monitor does not know gets no cards."""
    patient = _patient_resource(req.prefetch)
    if patient is None and rt.settings.ehr_mrn_system:
        patient = fetch_patient(req)  # the MRN is in the Patient: without prefetch, read it
    pid = resolve_patient(rt.engine, req.patient_id, patient, mrn_system=rt.settings.ehr_mrn_system)
    if pid is None:
        log.info("cds %s: EHR patient not known to the monitor, no cards", req.service)
        return {"cards": []}
    link = patient_link(rt, base_url, pid)
    with session(rt.engine, write=False) as s:
        if req.service == cds.PATIENT_VIEW:
            return {"cards": cds.alert_cards(views.list_alerts(s, patient_id=pid, status="open"), link)}
        orders = cds.draft_orders(req.context.get("draftOrders"), req.context.get("selections"), rt.code_map,
                                  rt.settings.today())
        if not orders:
            return {"cards": []}
        egfr = egfr_series(repo.load_timeline(s, pid))
    cards = [c for o in orders if (c := cds.renal_impairment_card(o, egfr, link)) is not None]
    return {"cards": cards}


@dataclass
class FeedbackResult:
    accepted: int = 0
    overridden: int = 0
    ignored: int = 0  # not a card of an alert (an order card), or no such alert

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "overridden": self.overridden, "ignored": self.ignored}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _override_comment(item: dict[str, Any]) -> str:
    reason = _obj(item.get("overrideReason"))
    coding = _obj(reason.get("reason"))
    said = [str(coding.get("display") or coding.get("code") or "").strip(), str(reason.get("userComment") or "").strip()]
    text = "; ".join(p for p in said if p)
    return f"Card overridden in the EHR: {text}" if text else "Card overridden in the EHR (no reason given)"


def parse_feedback(body: Any) -> list[dict[str, Any]]:
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise HookRequestError("feedback must be a non-empty list")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("card"), str):
            raise HookRequestError("each feedback item needs the card's uuid")
        if item.get("outcome") not in ("accepted", "overridden"):
            raise HookRequestError("outcome must be accepted or overridden")
    return items


def record_feedback(rt: Runtime, items: list[dict[str, Any]], client: CdsClient) -> FeedbackResult:
    """Accepted: a comment in the alert's audit trail. Overridden: the alert is acknowledged with the
    reason (repo.acknowledge, as POST /alerts/{id}/acknowledge does); an alert that cannot be
    acknowledged any more (already acknowledged, resolved) gets the reason as a comment instead."""
    out = FeedbackResult()
    for item in items:
        alert_id = cds.alert_id_of_card(item["card"])
        if alert_id is None:
            out.ignored += 1
            continue
        at = item.get("outcomeTimestamp")
        when = f" at {at}" if isinstance(at, str) and len(at) <= 40 else ""
        try:
            with session(rt.engine) as s:
                if item["outcome"] == "accepted":
                    repo.comment(s, alert_id, client.actor, f"Card accepted in the EHR{when}")
                    out.accepted += 1
                    continue
                text = _override_comment(item)[:2000]
                try:
                    # the lifecycle refuses before anything is written, so the session goes on
                    repo.acknowledge(s, alert_id, client.actor, comment=text)
                except repo.AlertNotFound:
                    raise
                except repo.AlertActionError:
                    repo.comment(s, alert_id, client.actor, text)
                out.overridden += 1
        except repo.AlertNotFound:
            out.ignored += 1
    return out
