"""Rows as the API shows them (JSON-ready dicts). Shared by the views and the outbox payloads, so a
webhook receives exactly what `imn-monitor alerts --json` prints.

An alert also shows `inhibited_by` ({"id", "fingerprint"} of the open alert muting it, or null) and
`group` (the notification group it belongs to: its patient, monitor.notifications.group_key)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from monitor.notifications import group_key

ALERT_FIELDS = (
    "id", "patient_id", "rule", "episode", "fingerprint", "severity", "status", "message", "evidence",
    "reference", "raised_at", "updated_at", "resolved_at", "resolution", "resolved_reason", "snoozed_until",
    "assigned_to", "acknowledged_by", "as_of",
)


def iso(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


# the alert fields that hold dates or date-times (alert rows are read 50 at a time by the feed's
# list: converting these alone, rather than testing every field, is a third of alert_as_dict's cost)
ALERT_TIME_FIELDS = ("raised_at", "updated_at", "resolved_at", "snoozed_until", "as_of")


def alert_as_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ALERT_FIELDS}
    for k in ALERT_TIME_FIELDS:
        v = out[k]
        if v is not None:
            out[k] = v.isoformat()
    out["evidence"] = list(row["evidence"] or [])
    by = row["inhibited_by_fingerprint"]
    out["inhibited_by"] = {"id": row["inhibited_by"], "fingerprint": by} if by else None
    out["group"] = group_key(row["patient_id"])
    return out


def row_as_dict(row: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: iso(v) for k, v in row.items() if k not in exclude}
