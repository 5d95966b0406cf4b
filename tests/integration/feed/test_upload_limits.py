"""Ingest bodies (issue 12, item 12): at most IMN_INGEST_CONCURRENCY are received at once per process
(one more gets 503 with Retry-After), and an NDJSON upload is spooled and cut into batches while it is
read, never held whole in memory. Both over a real uvicorn server; the memory bound is measured with
tracemalloc (Python allocations of the server, deterministic) while another process uploads."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from feed import create_app
from feed.uploads import gate
from storage import api_keys
from storage.db import session, upgrade
from tasks import runtime
from tasks.settings import Settings

from .conftest import serve

pytestmark = pytest.mark.integration
LINE = {"type": "lab", "patient_id": "P1", "analyte": "serum_albumin", "value": 31, "unit": "g/L",
        "effective_at": "2025-05-10"}


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[runtime.Runtime]:
    # a broker (kombu's in-memory transport, nothing listening) so that the uploads are only received
    # and stored here, not processed in this process: the test is about receiving them
    r = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'up.db'}", broker_url="memory://",
                              ingest_concurrency=1, ingest_retry_after_s=7, _env_file=None))
    upgrade(r.engine)
    yield r
    runtime.reset()
    from tasks import app as celery_app

    celery_app.configure(Settings(broker_url=None, _env_file=None))  # back to eager for other tests


def _key(rt: runtime.Runtime) -> str:
    with session(rt.engine) as s:
        return api_keys.create_key(s, "lis", "ingest")[0]


def _until(pred, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_one_upload_more_than_the_limit_gets_503_with_retry_after(rt: runtime.Runtime) -> None:
    key = _key(rt)
    app = create_app(rt)
    body = (json.dumps(LINE) + "\n").encode() * 50
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    with serve(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as slow:
            # an upload that has sent its headers and half its body holds the only slot
            head = (f"POST /ingest/ndjson HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                    f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            slow.sendall(head + body[: len(body) // 2])
            _until(lambda: gate(app).in_use == 1, "the slow upload to take the slot")
            busy = httpx.post(f"{base}/ingest/ndjson", content=body.replace(b"31", b"32"), headers=headers)
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "7", busy.text
            assert "busy" in busy.json()["detail"]
            slow.sendall(body[len(body) // 2:])
            answer = slow.recv(65536).decode()
            assert answer.startswith("HTTP/1.1 202"), answer
        _until(lambda: gate(app).in_use == 0, "the slot to be released")
        again = httpx.post(f"{base}/ingest/ndjson", content=body.replace(b"31", b"33"), headers=headers)
        assert again.status_code == 202, again.text


UPLOADER = """
import json, sys, httpx
line = (json.dumps({line}) + "\\n").encode()
n = {n}
def chunks():
    for i in range(0, n, 500):
        yield b"".join(line.replace(b'"P1"', b'"P%d"' % (j % 997)) for j in range(i, min(n, i + 500)))
r = httpx.post(sys.argv[1], content=chunks(), timeout=300,
               headers={{"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/x-ndjson"}})
print(r.status_code, len(r.json()["inbox_ids"]))
"""


def test_a_large_ndjson_upload_is_never_whole_in_memory(rt: runtime.Runtime) -> None:
    n = 140_000  # ~17 MB of NDJSON, sent as a stream by another process
    size = sum(len((json.dumps(LINE) + "\n").replace('"P1"', f'"P{j % 997}"')) for j in range(n))
    key = _key(rt)
    app = create_app(rt)
    with serve(app) as base:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            out = subprocess.run([sys.executable, "-c", UPLOADER.format(line=LINE, n=n),
                                  f"{base}/ingest/ndjson", key], capture_output=True, text=True, timeout=600)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert out.returncode == 0 and out.stdout.split()[0] == "202", out.stdout + out.stderr
    assert int(out.stdout.split()[1]) == -(-n // rt.settings.batch_lines)  # every batch stored
    with rt.engine.connect() as c:
        stored = c.exec_driver_sql("select sum(length(payload)) from inbox").scalar()
    assert stored == size and size > 15 * 2**20
    # before: the body whole, once as bytearray and once as bytes, then its lines (> 3x the body)
    assert peak < size / 4, f"server-side peak {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB upload"
