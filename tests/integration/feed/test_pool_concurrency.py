"""More concurrent requests than the connection pool can serve twice over: every one is answered.

Each request holds up to two pooled connections at once (its read session and the key lookup). With
a pool of 15, 32 concurrent readers once deadlocked until the pool timeout (bench/api.py: all
500). create_app now admits at most half the pool's connections in requests (feed.app.ConnectionBudget).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from feed import create_app
from feed.app import request_limit
from storage import api_keys
from storage.db import make_engine, session, upgrade
from tasks import runtime
from tasks.settings import Settings

from .conftest import cohort, seed, serve

READERS = 16


@pytest.fixture
def small_pool_server(tmp_path: Path) -> Iterator[tuple[str, str, runtime.Runtime]]:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    rt = runtime.init(Settings(database_url=url, broker_url=None, _env_file=None))
    upgrade(rt.engine)
    seed(rt, cohort(6), "cohort.ndjson")
    with session(rt.engine) as s:
        token, _ = api_keys.create_key(s, "pool-tester", "clinician")
    rt.engine.dispose()
    small = runtime.Runtime(rt.settings, make_engine(url, pool_size=2, max_overflow=2, pool_timeout=5))
    with serve(create_app(small), lifespan="on") as base:
        yield base, token, small
    small.engine.dispose()
    runtime.reset()


def test_request_limit_keeps_two_connections_per_request_within_the_pool(
        small_pool_server: tuple[str, str, runtime.Runtime]) -> None:
    assert request_limit(small_pool_server[2]) == 2  # (2 + 2) // 2


def test_readers_beyond_the_pool_all_answered(small_pool_server: tuple[str, str, runtime.Runtime]) -> None:
    base, token, _ = small_pool_server
    headers = {"Authorization": f"Bearer {token}"}

    def read(i: int) -> int:
        path = "/alerts?status=firing&limit=5" if i % 2 else "/patients/P001"
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            return client.get(path).status_code

    with ThreadPoolExecutor(READERS) as pool:
        codes = list(pool.map(read, range(READERS * 3)))
    assert codes == [200] * len(codes)
