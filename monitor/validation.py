"""What an input value must be before it may become part of an event (used by monitor.events).

Three things live here, apart from the event models themselves:

- `ValidationContext`: when the payload was received and in which zone a time written without an
  offset is meant. monitor/ reads no clock: the caller (tasks.ingest) passes both in.
- Strict readers for numbers and dates. pydantic's lax mode turns `true` into 1.0, `"1_000"` into
  1000, `20250110` (a number) or `"20250110"` into a Unix timestamp in 1970: each of those became a
  clinical value it is not (albumin `true` g/dL was stored as 10 g/L and raised a critical alert).
  Here a number is a JSON number or decimal text, and a date is ISO 8601 text; anything else is
  refused with the reason.
- The plausible window of clinical times: nothing before 1900 and nothing more than a day after it
  was received (0001-01-01 and 9999-12-31 are placeholders, not results, and made charts fail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from pydantic import ValidationInfo

from monitor.analytes import FieldError

# The plausible window of clinical dates and times. Not clinical thresholds: limits on what a date
# in a feed can mean. Earlier than 1900 is a placeholder (0001-01-01) or a typo; a patient alive
# today was born after it.
EARLIEST_CLINICAL_DATE = date(1900, 1, 1)
# A result is never from the future; one day of slack absorbs a sender's clock running ahead and
# a zone up to 14 hours ahead of ours.
FUTURE_TOLERANCE = timedelta(days=1)
# A medication course may be planned to end in the future, but not decades ahead: 9999-12-31 is
# how some systems write "no end", which the contract writes by leaving `end` out.
PLANNED_END_HORIZON = timedelta(days=5 * 365)


@dataclass(frozen=True)
class ValidationContext:
    """The moment and place of ingestion, as validation needs them.

    received_at: when the payload was accepted (the inbox row's time): clinical times more than
    FUTURE_TOLERANCE after it are refused. Using the time of receipt, not of processing, keeps a
    re-processed payload's outcome the same.
    zone: the zone of a time written without an offset (IMN_TIMEZONE), as the README promises for
    "today"; dates stay calendar dates.
    """

    received_at: datetime
    zone: tzinfo = UTC

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise ValueError("ValidationContext.received_at must be timezone-aware")

    @property
    def latest_time(self) -> datetime:
        return self.received_at + FUTURE_TOLERANCE

    @property
    def received_day(self) -> date:
        """The calendar day of receipt in the configured zone."""
        return self.received_at.astimezone(self.zone).date()


def context_of(info: ValidationInfo) -> ValidationContext | None:
    ctx = info.context
    return ctx if isinstance(ctx, ValidationContext) else None


# ------------------------------------------------------------------ numbers

# decimal text as laboratories and spreadsheets write it: ASCII digits, one optional point, an
# optional exponent. No thousands separators, spaces, underscores, decimal commas, hex, or the
# non-ASCII digits that Python's float() would accept.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def strict_number(value: Any) -> Any:
    """A number from a JSON number or decimal text; a boolean or any other text is refused."""
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic reports only ValueError as a validation error
        raise ValueError("a boolean (true/false) is not a number")  # noqa: TRY004
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            raise ValueError(
                "not a decimal number (digits with an optional '.' and exponent; no thousands "
                "separators, spaces, underscores or decimal commas)"
            )
        return float(text)
    return value  # int, float, Decimal; pydantic refuses lists, objects and null


# ------------------------------------------------------------------ dates and times

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_TIME_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _not_a_number(value: Any, what: str, form: str) -> None:
    if isinstance(value, (bool, int, float)):
        raise ValueError(f"{what} must be ISO 8601 text ({form}), not a number or boolean")  # noqa: TRY004


def strict_date(value: Any) -> Any:
    """A calendar date as 'YYYY-MM-DD' (or a date object from a parser); numbers are refused."""
    _not_a_number(value, "a date", "YYYY-MM-DD")
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value.strip()):
        raise ValueError("not a date as YYYY-MM-DD")
    if isinstance(value, datetime):
        return value.date()
    return value


def strict_datetime(value: Any) -> Any:
    """A date-time as ISO 8601 text or an object from a parser. A bare date stands for its midnight
    in UTC: a calendar day, the same whatever the zone (and the identity date-only results always
    had)."""
    _not_a_number(value, "a datetime", "YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][±hh:mm|Z]")
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DAY.fullmatch(text):
            value = date.fromisoformat(text)
        elif not _ISO_TIME_START.match(text):
            raise ValueError("not an ISO 8601 datetime (YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][±hh:mm|Z])")
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=UTC)
    return value


def in_zone(value: datetime, info: ValidationInfo) -> datetime:
    """A time written without an offset is meant in the context's zone (UTC without a context)."""
    if value.tzinfo is not None:
        return value
    ctx = context_of(info)
    return value.replace(tzinfo=ctx.zone if ctx is not None else UTC)


def check_time(name: str, when: datetime | None, ctx: ValidationContext | None) -> None:
    """A clinical time between 1900 and one day after receipt (FieldError naming the field)."""
    if when is None:
        return
    if when.year < EARLIEST_CLINICAL_DATE.year:
        raise FieldError(f"{name} {when.isoformat()} is before {EARLIEST_CLINICAL_DATE.year}: not a plausible date", name)
    if ctx is None:
        return
    # compare years first: 9999-12-31T23:59-14:00 cannot even be converted to UTC
    if when.year > ctx.latest_time.year + 1 or when > ctx.latest_time:
        raise FieldError(
            f"{name} {when.isoformat()} is more than one day after the payload was received "
            f"({_shown(ctx.received_at)}): a result cannot come from the future",
            name,
        )


def check_day(name: str, day: date | None, ctx: ValidationContext | None, *, latest: date | None = None,
              why: str = "cannot lie in the future") -> None:
    """A clinical date between 1900 and `latest` (default: one day after receipt)."""
    if day is None:
        return
    if day < EARLIEST_CLINICAL_DATE:
        raise FieldError(f"{name} {day.isoformat()} is before {EARLIEST_CLINICAL_DATE.year}: not a plausible date", name)
    if ctx is None:
        return
    limit = latest if latest is not None else (ctx.received_at.astimezone(ctx.zone) + FUTURE_TOLERANCE).date()
    if day > limit:
        raise FieldError(
            f"{name} {day.isoformat()} is after {limit.isoformat()} (received {_shown(ctx.received_at)}): "
            f"{why}",
            name,
        )


def planned_end_limit(ctx: ValidationContext) -> date:
    return (ctx.received_at.astimezone(ctx.zone) + PLANNED_END_HORIZON).date()


def _shown(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
