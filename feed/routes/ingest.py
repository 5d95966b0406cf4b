"""Ingestion over HTTP: one route `POST /ingest/<format>` per registered input format
(monitor/interop/formats.py: its media types, description and example make the route and its
OpenAPI text), generated when the app is built. The body is stored in the inbox (durable) before
the 202; processing follows through tasks.service after the response (with a broker: an
`ingest_batch` task per batch; embedded: the same tasks run in this process). Bodies are received
through feed.uploads: at most IMN_INGEST_CONCURRENCY at once (else 503 with Retry-After), spooled to
a temporary file and cut into inbox batches while it is read."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from feed.auth import AUTH_RESPONSES, ingest_key
from feed.deps import get_runtime
from feed.schemas import Id, IngestAccepted
from feed.uploads import check_media_type, ingest_slot, spool_body
from monitor.interop import formats
from monitor.interop.formats import InputFormat
from storage import views
from storage.api_keys import ApiKey
from storage.db import session
from tasks import service

log = logging.getLogger("imn.feed.ingest")

_ACCEPTED = {
    202: {"description": "stored in the inbox; processing follows (see GET /inbox/{id})"},
    400: {"description": "empty body"},
    413: {"description": "body too large"},
    415: {"description": "unsupported media type"},
    503: {"description": "ingestion busy (too many uploads at once); retry after Retry-After seconds"},
    **AUTH_RESPONSES,
}


def _body_doc(media_types: tuple[str, ...], example: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        mt: {"schema": {"type": "string"}, "example": example} for mt in media_types}}}


async def _ingest(request: Request, response: Response, background: BackgroundTasks, key: ApiKey,
                  fmt: InputFormat) -> IngestAccepted:
    check_media_type(request, fmt.media_types)
    rt = get_runtime(request)
    body = await spool_body(request)
    try:
        stored = await run_in_threadpool(service.store, rt, [(body, f"api:{key.name}")], fmt.name)
    finally:
        body.close()
    if stored.todo:
        # after the response: the rows are stored; if processing fails the sweeper re-drives them
        background.add_task(service.process_or_leave, rt, stored.todo)
    ids = stored.inbox_ids
    log.info("accepted %d %s batch(es) from key %s: inbox %s", len(ids), fmt.name, key.prefix, ids)
    if len(ids) == 1:
        response.headers["Location"] = f"/inbox/{ids[0]}"
    return IngestAccepted(inbox_ids=ids, batches=[
        {"inbox_id": a.inbox_id, "new": a.new, "status_url": f"/inbox/{a.inbox_id}"} for a in stored.batches])


def _endpoint(fmt: InputFormat) -> Callable[..., Awaitable[IngestAccepted]]:
    async def endpoint(request: Request, response: Response, background: BackgroundTasks,
                       key: ApiKey = Depends(ingest_key), _: None = Depends(ingest_slot)) -> IngestAccepted:
        return await _ingest(request, response, background, key, fmt)

    endpoint.__name__ = f"ingest_{fmt.name}"
    return endpoint


def build_router() -> APIRouter:
    """`POST /ingest/<name>` for every registered format, then GET /inbox/{id}."""
    r = APIRouter(tags=["ingestion"])
    for fmt in formats.REGISTRY.values():
        r.add_api_route(
            f"/ingest/{fmt.name}", _endpoint(fmt), methods=["POST"], status_code=202, responses=_ACCEPTED,
            response_model=IngestAccepted, name=f"ingest_{fmt.name}", summary=f"Ingest {fmt.title}",
            description=f"{fmt.description}\n\nContent-Type: {', '.join(fmt.media_types)}.",
            openapi_extra=_body_doc(fmt.media_types, fmt.example))
    r.add_api_route("/inbox/{inbox_id}", inbox, methods=["GET"],
                    responses={404: {"description": "no such inbox row"}, **AUTH_RESPONSES})
    return r


def inbox(inbox_id: Id, request: Request, _: ApiKey = Depends(ingest_key)) -> dict[str, Any]:
    """Processing state of one inbox row (received|processing|processed|failed), its counts, and
    what was quarantined from it, with the reasons."""
    with session(get_runtime(request).engine, write=False) as s:
        rows = views.inbox_status(s, [inbox_id])
        if not rows:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such inbox row")
        out = rows[0]
        out["quarantined"] = [{k: q[k] for k in ("id", "line", "field", "value", "reason", "created_at")}
                              for q in reversed(views.list_quarantine(s, inbox_id=inbox_id))]
    return out
