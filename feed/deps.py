"""Request-scoped access to the runtime and the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

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


def reading(request: Request) -> AbstractContextManager[Session]:
    """A read-only session opened inside a (sync) route itself. The hot read routes use this rather
    than the `read_session` dependency: FastAPI runs a sync generator dependency's start and end in
    two more hops through the thread pool, and the session's connection is then held only while the
    route queries, not until the response has been sent."""
    return session(get_runtime(request).engine, write=False)
