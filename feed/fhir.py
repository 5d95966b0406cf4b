"""Alerts as FHIR R4 `Flag` resources (validated against fhir.resources.R4B in the tests).

An open alert is an *active* Flag, a resolved one *inactive*. The rule is the Flag's code (with the
alert's message as its text), the severity goes in the standard flag-priority extension, the period
runs from raised_at to resolved_at, and the patient is the subject. An inhibited alert (muted by
another open alert of the patient, monitor/inhibitions.py) carries an extension referencing the
inhibiting alert's Flag; FHIR has no standard element for it.
"""

from __future__ import annotations

import re
from typing import Any

RULE_SYSTEM = "urn:imn-monitor:alert-rule"
ALERT_ID_SYSTEM = "urn:imn-monitor:alert-id"
PATIENT_ID_SYSTEM = "urn:imn-monitor:patient-id"
PRIORITY_EXT = "http://hl7.org/fhir/StructureDefinition/flag-priority"
PRIORITY_SYSTEM = "http://hl7.org/fhir/flag-priority-code"
INHIBITED_BY_EXT = "urn:imn-monitor:fhir:extension:inhibited-by"
PRIORITY = {"info": ("PL", "Low priority"), "warning": ("PM", "Medium priority"),
            "critical": ("PH", "High priority")}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MEDIA_TYPE = "application/fhir+json"


def _subject(patient_id: str) -> dict[str, Any]:
    ident = {"system": PATIENT_ID_SYSTEM, "value": patient_id}
    if FHIR_ID.match(patient_id):
        return {"reference": f"Patient/{patient_id}", "identifier": ident}
    return {"identifier": ident}  # not a valid FHIR id: a logical reference only


def alert_to_flag(alert: dict[str, Any]) -> dict[str, Any]:
    code, display = PRIORITY.get(alert["severity"], PRIORITY["info"])
    period = {"start": alert["raised_at"]}
    if alert.get("resolved_at"):
        period["end"] = alert["resolved_at"]
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "id": str(alert["id"]),
        "meta": {"lastUpdated": alert["updated_at"]},
        "extension": [{"url": PRIORITY_EXT, "valueCodeableConcept": {
            "coding": [{"system": PRIORITY_SYSTEM, "code": code, "display": display}],
            "text": alert["severity"]}}],
        "identifier": [{"system": ALERT_ID_SYSTEM, "value": str(alert["id"])}],
        "status": "inactive" if alert["status"] == "resolved" else "active",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                  "code": "clinical", "display": "Clinical"}]}],
        "code": {"coding": [{"system": RULE_SYSTEM, "code": alert["rule"]}], "text": alert["message"]},
        "subject": _subject(alert["patient_id"]),
        "period": period,
    }
    by = alert.get("inhibited_by")
    if by and alert["status"] != "resolved":
        flag["extension"].append({"url": INHIBITED_BY_EXT, "valueReference": {
            "reference": f"Flag/{by['id']}", "display": f"inhibited by alert {by['fingerprint']}"}})
    return flag


def searchset(flags: list[dict[str, Any]], self_url: str, base: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(flags),
            "link": [{"relation": "self", "url": self_url}],
            "entry": [{"fullUrl": f"{base.rstrip('/')}/Flag/{f['id']}", "resource": f, "search": {"mode": "match"}}
                      for f in flags]}


def operation_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}
