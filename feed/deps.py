"""Request-scoped access to the runtime and the database."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from storage.db import session
from tasks.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def read_session(request: Request) -> Iterator[Session]:
    """A read-only session (never waits for SQLite writers)."""
    with session(get_runtime(request).engine, write=False) as s:
        yield s
