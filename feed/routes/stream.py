"""GET /stream/alerts: alert changes as Server-Sent Events.

Every row of the append-only `alert_audit` table is one change, and its id is the event id, so a
client that reconnects with `Last-Event-ID` receives every change after the last one it saw (the
table keeps them all). Without it the stream starts at the newest change (only what happens next),
unless `after` says where to start. The table is polled every POLL_S seconds; each event carries the
action, who took it, and the alert as it is now.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from feed import queries
from feed.auth import AUTH_RESPONSES, clinician_key
from feed.schemas import Storable
from storage.api_keys import ApiKey
from storage.db import session

router = APIRouter(tags=["stream"])
POLL_S = 0.5
BATCH = 500


def _fetch(engine: Any, after: int, patient: str | None) -> list[dict[str, Any]]:
    with session(engine, write=False) as s:
        return queries.audit_after(s, after, BATCH, patient)


def _start(engine: Any) -> int:
    with session(engine, write=False) as s:
        return queries.last_audit_id(s)


async def alert_events(request: Request, engine: Any, after: int | None, patient: str | None,
                       poll_s: float = POLL_S) -> AsyncIterator[ServerSentEvent]:
    """The event source: changes after `after` (None: from now on), polled until the client leaves."""
    last = after if after is not None else await run_in_threadpool(_start, engine)
    yield ServerSentEvent(comment=f"alert changes after event {last}", retry=2000)
    while not await request.is_disconnected():
        changes = await run_in_threadpool(_fetch, engine, last, patient)
        for change in changes:
            last = change["event_id"]
            yield ServerSentEvent(data=json.dumps(change, separators=(",", ":")), id=str(last), event="alert")
        if len(changes) < BATCH:
            await asyncio.sleep(poll_s)


@router.get("/stream/alerts", response_class=EventSourceResponse, responses={
    200: {"description": "text/event-stream of `alert` events (id = audit row id)",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    **AUTH_RESPONSES})
async def stream_alerts(
    request: Request,
    _: ApiKey = Depends(clinician_key),
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=2**53 - 1,
                                                description="resume after this event")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**53 - 1,
                                       description="start after this event id (0: from the beginning)")] = None,
    patient: Annotated[Storable | None, Query(max_length=64, description="only this patient's alerts")] = None,
) -> EventSourceResponse:
    """Alert changes as Server-Sent Events, resumable with Last-Event-ID."""
    start = last_event_id if last_event_id is not None else after
    engine = request.app.state.runtime.engine
    return EventSourceResponse(alert_events(request, engine, start, patient), ping=15)
