"""Ingestion over HTTP: the body is stored in the inbox (durable) before the 202; processing follows
(embedded: in a background thread of this process; with a broker: an `ingest_batch` task each).
Bodies are received through feed.uploads: at most IMN_INGEST_CONCURRENCY at once (else 503 with
Retry-After), spooled to a temporary file and cut into inbox batches while it is read."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from feed.auth import AUTH_RESPONSES, ingest_key
from feed.deps import get_runtime
from feed.schemas import Id, IngestAccepted
from feed.uploads import check_media_type, ingest_slot, spool_body
from storage import views
from storage.api_keys import ApiKey
from storage.db import session
from tasks import jobs
from tasks.ingest import accept_file

log = logging.getLogger("imn.feed.ingest")
router = APIRouter(tags=["ingestion"])

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
FHIR_TYPES = ("application/fhir+json", "application/json")
HL7_TYPES = ("x-application/hl7-v2+er7", "application/hl7-v2", "text/plain")

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
                  fmt: str, allowed: tuple[str, ...]) -> IngestAccepted:
    check_media_type(request, allowed)
    rt = get_runtime(request)
    source = f"api:{key.name}"
    body = await spool_body(request)
    try:
        accepted = await run_in_threadpool(accept_file, rt, body, fmt, source)
    finally:
        body.close()
    ids = list(dict.fromkeys(a.inbox_id for a in accepted))
    with session(rt.engine, write=False) as s:
        states = {r["id"]: r["state"] for r in views.inbox_status(s, ids)}
    todo = [i for i in ids if states.get(i) != "processed"]
    if todo:
        if rt.settings.embedded:
            background.add_task(_process_inline, rt, todo)
        else:
            for inbox_id in todo:
                await run_in_threadpool(jobs.ingest_batch.delay, inbox_id)
    log.info("accepted %d %s batch(es) from key %s: inbox %s", len(ids), fmt, key.prefix, ids)
    if len(ids) == 1:
        response.headers["Location"] = f"/inbox/{ids[0]}"
    return IngestAccepted(inbox_ids=ids, batches=[
        {"inbox_id": a.inbox_id, "new": a.new, "status_url": f"/inbox/{a.inbox_id}"} for a in accepted])


def _process_inline(rt: Any, inbox_ids: list[int]) -> None:
    try:
        jobs.run_inline_ingest(rt, inbox_ids, None)
    except Exception:  # noqa: BLE001 - the rows stay unprocessed; the sweeper re-drives them
        log.exception("processing inbox %s failed; it stays pending for the sweeper", inbox_ids)


@router.post("/ingest/ndjson", status_code=202, responses=_ACCEPTED,
             openapi_extra=_body_doc(NDJSON_TYPES, '{"type":"lab","patient_id":"P1","analyte":"anti_pla2r",'
                                                   '"value":168,"unit":"RU/mL","effective_at":"2025-01-10"}\n'))
async def ingest_ndjson(request: Request, response: Response, background: BackgroundTasks,
                        key: ApiKey = Depends(ingest_key), _: None = Depends(ingest_slot)) -> IngestAccepted:
    """NDJSON events (one JSON object per line, design.md); large bodies are cut into batches."""
    return await _ingest(request, response, background, key, "ndjson", NDJSON_TYPES)


@router.post("/ingest/fhir", status_code=202, responses=_ACCEPTED,
             openapi_extra=_body_doc(FHIR_TYPES, '{"resourceType":"Bundle","type":"collection","entry":[]}'))
async def ingest_fhir(request: Request, response: Response, background: BackgroundTasks,
                      key: ApiKey = Depends(ingest_key), _: None = Depends(ingest_slot)) -> IngestAccepted:
    """A FHIR R4 Bundle or a single resource (Observation, MedicationAdministration/Statement, Patient)."""
    return await _ingest(request, response, background, key, "fhir", FHIR_TYPES)


@router.post("/ingest/hl7v2", status_code=202, responses=_ACCEPTED,
             openapi_extra=_body_doc(HL7_TYPES, "MSH|^~\\&|LIS|HOSP|IMN|NEPH|20250301093000||ORU^R01|1|P|2.5.1\r"))
async def ingest_hl7v2(request: Request, response: Response, background: BackgroundTasks,
                       key: ApiKey = Depends(ingest_key), _: None = Depends(ingest_slot)) -> IngestAccepted:
    """One HL7 v2 ORU^R01 message (ER7 encoding)."""
    return await _ingest(request, response, background, key, "hl7v2", HL7_TYPES)


@router.get("/inbox/{inbox_id}", responses={404: {"description": "no such inbox row"}, **AUTH_RESPONSES})
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
