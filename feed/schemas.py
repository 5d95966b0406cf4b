"""Request and response bodies of the feed (API schemas, apart from the table models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
# row ids in paths: positive and within what every database (and JavaScript) holds exactly
Id = Annotated[int, Path(ge=1, le=2**53 - 1)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


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
    until: datetime  # a time without a zone is taken as UTC
    comment: Text | None = None


class ResolveBody(_Body):
    comment: Text  # required: why it was closed by hand


class CommentBody(_Body):
    text: Text
