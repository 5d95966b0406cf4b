"""Rows as the API shows them (JSON-ready dicts). Shared by the views and the outbox payloads, so a
webhook receives exactly what `imn-monitor alerts --json` prints."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

ALERT_FIELDS = (
    "id", "patient_id", "rule", "episode", "fingerprint", "severity", "status", "message", "evidence",
    "reference", "raised_at", "updated_at", "resolved_at", "resolution", "resolved_reason", "snoozed_until",
    "assigned_to", "acknowledged_by", "as_of",
)


def iso(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def alert_as_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: iso(row[k]) for k in ALERT_FIELDS}
    out["evidence"] = list(row["evidence"] or [])
    return out


def row_as_dict(row: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: iso(v) for k, v in row.items() if k not in exclude}
