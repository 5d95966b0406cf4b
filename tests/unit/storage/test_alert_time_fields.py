"""alert_as_dict converts only ALERT_TIME_FIELDS to ISO 8601: they must be exactly the alert fields
that hold a date or a date-time, or a new time field would reach the JSON as a Python object."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import get_args

from storage.models import AlertRow
from storage.serialize import ALERT_FIELDS, ALERT_TIME_FIELDS, alert_as_dict


def _is_time(annotation: object) -> bool:
    return annotation in (date, datetime) or any(_is_time(a) for a in get_args(annotation))


def test_time_fields_are_the_date_and_datetime_fields() -> None:
    fields = AlertRow.model_fields
    assert set(ALERT_TIME_FIELDS) == {k for k in ALERT_FIELDS if _is_time(fields[k].annotation)}


def test_alert_as_dict_renders_times_as_iso_and_keeps_none() -> None:
    row = dict.fromkeys(ALERT_FIELDS)
    row.update(id=7, patient_id="P1", evidence=[{"value": 1.0}], raised_at=datetime(2025, 5, 1, 8, tzinfo=UTC),
               updated_at=datetime(2025, 5, 2, tzinfo=UTC), as_of=date(2025, 5, 2), inhibited_by=None,
               inhibited_by_fingerprint=None)
    out = alert_as_dict(row)
    assert out["raised_at"] == "2025-05-01T08:00:00+00:00" and out["as_of"] == "2025-05-02"
    assert out["resolved_at"] is None and out["snoozed_until"] is None and out["evidence"] == [{"value": 1.0}]
