"""Grouping and routing of notifications (Alertmanager's group_by and routes), on JSON-ready alerts.

Grouping: every notification of one pass over a patient's alerts (a reassessment, a sweep expiring
snoozes, a clinician's action releasing inhibited alerts) travels in one document, the patient's
*alert group*: one outbox row, one webhook delivery per receiver. The document (version 1):

    {"kind": "alert_group", "version": 1, "group": "patient:P1", "patient_id": "P1",
     "cause": "reassessment" | "snooze_expired" | "action", "as_of": "2025-06-01" | null,
     "at": "<ISO time of the change>",
     "changes": [{"change": "fired" | "reopened" | "escalated" | "uninhibited" | "unsnoozed" | "resolved",
                  "alert": {...the alert as the API shows it...}}, ...]}

Routing: a webhook subscription's filters ({"rules": [...], "severities": [...], "patients": [...]},
an absent or empty list matching everything) select the changes whose alert matches all of them; a
subscription receives the group with those changes only, or nothing when none matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from monitor.severity import SEVERITIES

KIND = "alert_group"
VERSION = 1
CAUSES = ("reassessment", "snooze_expired", "action")
GROUP_BY = ("patient_id",)  # one group per patient: what the clinician acts on is the patient
FILTER_KEYS = ("rules", "severities", "patients")
_FILTER_FIELDS = (("rules", "rule"), ("severities", "severity"), ("patients", "patient_id"))


class FilterError(ValueError):
    """Subscription filters that cannot be used as given (the message says why)."""


def group_key(patient_id: str) -> str:
    return f"patient:{patient_id}"


def group_document(patient_id: str, cause: str, as_of: date | None, at: datetime,
                   changes: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The alert group of one pass: `changes` are (change, alert as the API shows it) pairs."""
    if cause not in CAUSES:
        raise ValueError(f"unknown cause {cause!r}")
    return {"kind": KIND, "version": VERSION, "group": group_key(patient_id), "patient_id": patient_id,
            "cause": cause, "as_of": as_of.isoformat() if as_of else None, "at": at.isoformat(),
            "changes": [{"change": change, "alert": dict(alert)} for change, alert in changes]}


def dedupe_key(patient_id: str, items: Iterable[tuple[int, str, int]]) -> str:
    """Stable for the same (alert id, change, revision) set: a replayed pass adds no second row."""
    raw = ",".join(f"{i}:{c}:{r}" for i, c, r in sorted(items))
    return f"group:{patient_id}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


# ------------------------------------------------------------------------------------- routing


def normalise_filters(filters: Mapping[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in (filters or {}).items():
        if k not in FILTER_KEYS:
            raise FilterError(f"unknown filter {k!r}; expected one of {', '.join(FILTER_KEYS)}")
        if v is None:
            continue
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise FilterError(f"filter {k!r} must be a list of strings")
        if k == "severities" and (bad := [x for x in v if x not in SEVERITIES]):
            raise FilterError(f"unknown severities {bad}; expected {', '.join(SEVERITIES)}")
        if v:
            out[k] = sorted(set(v))
    return out


def matches(filters: Mapping[str, Any], alert: Mapping[str, Any]) -> bool:
    """One alert (as the API shows it) against a subscription's filters (empty = everything)."""
    for key, field in _FILTER_FIELDS:
        wanted = filters.get(key)
        if wanted and alert.get(field) not in wanted:
            return False
    return True


def route(filters: Mapping[str, Any], document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The group as this subscription receives it: only its matching changes; None when none match."""
    changes = [c for c in document.get("changes", ()) if matches(filters, c["alert"])]
    if not changes:
        return None
    return {**document, "changes": changes}
