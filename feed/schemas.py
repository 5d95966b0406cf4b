"""Request and response bodies of the feed (API schemas, apart from the table models), and the
checks every user-supplied value passes before it reaches the database or a date computation.

A value the database cannot store (a NUL character, a lone UTF-16 surrogate), a date-time that has no
UTC equivalent, or a date outside the range the read side computes with is answered 400/422 with a
reason, never a 500 (issue 12, item 9)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import HTTPException, Path, status
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

# the dates the read side (assessment, charts) computes with: a window around any real patient's course
AS_OF_MIN, AS_OF_MAX = date(1900, 1, 1), date(2200, 12, 31)


def storable_text(value: str) -> str:
    """A string PostgreSQL and SQLite can store: no NUL character, valid UTF-8 (no lone surrogate)."""
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("invalid Unicode (a lone surrogate)") from None
    return value


def in_utc(value: datetime, what: str) -> datetime:
    """The same instant in UTC (a time without a zone is taken as UTC); ValueError when it has none
    (0001-01-01T00:00+05:00 lies before the year 1 in UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{what} {value.isoformat()} has no UTC equivalent (outside the years 1 to 9999)") from None


def check_as_of(day: date | None) -> None:
    if day is not None and not AS_OF_MIN <= day <= AS_OF_MAX:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="as_of must be between 1900 and 2200")


Storable = Annotated[str, AfterValidator(storable_text)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000),
                 AfterValidator(storable_text)]
# row ids in paths: positive and within what every database (and JavaScript) holds exactly
Id = Annotated[int, Path(ge=1, le=2**53 - 1)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(storable_text)]


def _snooze_until(value: datetime) -> datetime:
    return in_utc(value, "until")


class BatchRef(BaseModel):
    inbox_id: int
    new: bool
    status_url: str


class IngestAccepted(BaseModel):
    inbox_ids: list[int]
    batches: list[BatchRef]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcknowledgeBody(_Body):
    comment: Text | None = None


class AssignBody(_Body):
    assignee: Name


class SnoozeBody(_Body):
    until: Annotated[datetime, AfterValidator(_snooze_until)]  # a time without a zone is taken as UTC
    comment: Text | None = None


class ResolveBody(_Body):
    comment: Text  # required: why it was closed by hand


class CommentBody(_Body):
    text: Text
