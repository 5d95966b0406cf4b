"""The ingestion context the interop unit tests read payloads with (monitor.validation).

A fixed time of receipt: the outcome of a test must not depend on the day it runs. Times written
without an offset are meant in UTC unless a test says otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.interop import ValidationContext

RECEIVED_AT = datetime(2026, 6, 1, tzinfo=UTC)
CONTEXT = ValidationContext(received_at=RECEIVED_AT)
