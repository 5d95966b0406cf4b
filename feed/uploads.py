"""Receiving ingest bodies: a bound on how many are received at once, and spooling to a temporary
file instead of holding them whole (issue 12, item 12).

Four parallel 20 MB uploads took the api process from 269 to 584 MB: each body was collected into a
bytearray, copied to bytes, then split into lines and joined into batches, all in memory. Now:

- `ingest_slot` (a dependency): at most IMN_INGEST_CONCURRENCY bodies per process are received and
  stored at once; one more gets 503 with Retry-After (IMN_INGEST_RETRY_AFTER_S) at once, before its
  body is read, rather than queueing inside the process with its memory;
- `spool_body`: the body goes to a SpooledTemporaryFile (memory up to SPOOL_BYTES, then a file),
  checked for its size limit on the way; tasks.ingest.accept_file then cuts line formats into inbox
  batches while reading it, so an NDJSON/CSV upload is never whole in memory. A FHIR Bundle or an HL7
  message is one unit of acknowledgement and is read whole to be stored as one inbox row.

Both are plain FastAPI pieces, used by every route receiving a payload (the /ingest/<format> routes
generated from the registry of input formats, feed/routes/ingest.py).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import IO

from fastapi import FastAPI, HTTPException, Request, status

MAX_BODY_BYTES = 64 * 1024 * 1024
SPOOL_BYTES = 1024 * 1024  # a body up to this size stays in memory; a larger one goes to a file


class IngestGate:
    """A counting semaphore that never waits: `slot()` admits up to `limit` holders at once and
    raises Busy for one more. Thread-safe (the ASGI loop and test clients' portals alike)."""

    class Busy(Exception):
        pass

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._in_use >= self.limit:
                raise IngestGate.Busy
            self._in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use -= 1


def gate(app: FastAPI) -> IngestGate:
    """The app's gate, made from its runtime's settings on first use."""
    found = getattr(app.state, "ingest_gate", None)
    if found is None:
        found = app.state.ingest_gate = IngestGate(app.state.runtime.settings.ingest_concurrency)
    return found


async def ingest_slot(request: Request) -> AsyncIterator[None]:
    """Dependency: hold one of the process's ingest slots for the request, or answer 503."""
    retry_after = request.app.state.runtime.settings.ingest_retry_after_s
    g = gate(request.app)
    try:
        with g.slot():
            yield
    except IngestGate.Busy:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail=f"ingestion is busy ({g.limit} uploads are being received); "
                                   f"retry in {retry_after} s",
                            headers={"Retry-After": str(retry_after)}) from None


def check_media_type(request: Request, allowed: tuple[str, ...]) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in allowed:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            detail=f"Content-Type must be one of: {', '.join(allowed)}")


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                         detail=f"body too large (at most {max_bytes // (1024 * 1024)} MiB)")


async def spool_body(request: Request, max_bytes: int = MAX_BODY_BYTES) -> IO[bytes]:
    """The request body in a temporary file positioned at its start (the caller closes it); 413 when
    it is larger than max_bytes, 400 when it is empty or only whitespace."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    size, blank = 0, True
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            blank = blank and not chunk.strip()
            spool.write(chunk)
        if blank:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="empty body")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
