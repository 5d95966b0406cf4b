"""The HTTP feed against a temporary SQLite database with the embedded runtime (no servers).

One database per test module (seeded once with a small cohort that raises alerts), an API key per
role, FastAPI's TestClient for plain requests and a real uvicorn server in a thread for streaming.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from feed import create_app
from storage import api_keys
from storage.db import session, upgrade
from tasks import runtime, service
from tasks.ingest import accept
from tasks.settings import Settings

AS_OF = date(2025, 6, 1)
ROLES = ("ingest", "clinician", "admin")


def cohort(n: int, start: int = 0) -> bytes:
    """n patients with nephrotic-range disease and severe hypoalbuminaemia (albumin_low_thrombosis)."""
    lines = []
    for i in range(start, start + n):
        pid = f"P{i:03d}"
        lines += [
            {"type": "patient", "patient_id": pid, "birth_date": "1968-03-02", "sex": "male" if i % 2 else "female"},
            {"type": "lab", "patient_id": pid, "analyte": "serum_albumin", "value": 18 + (i % 5), "unit": "g/L",
             "effective_at": "2025-05-10"},
            {"type": "lab", "patient_id": pid, "analyte": "proteinuria_24h", "value": 9.5, "unit": "g/d",
             "effective_at": "2025-05-10"},
            {"type": "lab", "patient_id": pid, "analyte": "anti_pla2r", "value": 60 + 40 * (i % 4), "unit": "RU/mL",
             "effective_at": "2025-05-01"},
        ]
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def seed(rt: runtime.Runtime, data: bytes, name: str, as_of: date = AS_OF) -> None:
    ids = [a.inbox_id for a in accept(rt, data, "ndjson", name)]
    service.process(rt, ids, as_of)


@dataclass
class Feed:
    rt: runtime.Runtime
    app: FastAPI
    client: TestClient
    keys: dict[str, str]  # role -> token (the key's name is f"{role}-tester")

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    db = tmp_path_factory.mktemp("feed") / "feed.db"
    rt = runtime.init(Settings(database_url=f"sqlite:///{db}", broker_url=None, _env_file=None))
    upgrade(rt.engine)
    seed(rt, cohort(12), "cohort.ndjson")
    keys = {}
    with session(rt.engine) as s:
        for role in ROLES:
            keys[role], _ = api_keys.create_key(s, f"{role}-tester", role)
    app = create_app(rt)
    with TestClient(app) as client:
        yield Feed(rt, app, client, keys)
    runtime.reset()


@contextmanager
def serve(app: Any, lifespan: str = "off", host: str = "127.0.0.1") -> Iterator[str]:
    """An ASGI app on a real uvicorn server (`host`, a free port) in a thread; its base URL. The one
    live-server helper of the feed tests (the page's browser tests and the fake EHR use it too)."""
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan=lifespan,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(feed: Feed) -> Iterator[str]:
    """The feed's app on a real uvicorn server."""
    with serve(feed.app) as base:
        yield base


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
