"""Real servers for the pipeline tests: a fresh PostgreSQL database, a Redis database, and real
`celery worker` processes (not eager mode) started as subprocesses.

Without the servers these tests skip, unless IMN_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("IMN_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IMN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
REQUIRE = os.environ.get("IMN_REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parents[3]


def _unavailable(what: str, exc: Exception) -> None:
    msg = f"{what} is not answering ({type(exc).__name__}: {exc})"
    if REQUIRE:
        pytest.fail(msg + " and IMN_REQUIRE_SERVICES=1")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    name = f"imn_it_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis at 127.0.0.1:6379", exc)
    return REDIS_URL


@dataclass
class Stack:
    """The production shape on this machine: PostgreSQL + Redis + celery worker processes."""

    db_url: str
    broker_url: str
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMN_")}
        env.update({
            "IMN_DATABASE_URL": self.db_url, "IMN_BROKER_URL": self.broker_url,
            "IMN_STALE_AFTER_S": "5", "IMN_VISIBILITY_TIMEOUT_S": "3600", "IMN_BATCH_LINES": "500",
            "PYTHONPATH": str(ROOT),
        })
        return env

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.db_url)

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "-Q", "imn",
             f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", f"--hostname=w{len(self.workers)}-{uuid.uuid4().hex[:6]}@%h"],
            env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers.append(proc)
        self._wait_ready(log.name)
        return proc

    def _wait_ready(self, log_path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in Path(log_path).read_bytes():
                return
            time.sleep(0.2)
        raise AssertionError(f"celery worker not ready after {timeout}s: {Path(log_path).read_text()[-2000:]}")

    def kill_workers(self, sig: int = signal.SIGKILL) -> None:
        for p in self.workers:
            if p.poll() is None:
                os.killpg(p.pid, sig)
                p.wait(timeout=30)
        self.workers.clear()

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("imn-monitor")
        return subprocess.run([str(exe), *args], env=self.env, cwd=self.tmp, capture_output=True, text=True,
                              timeout=timeout)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine().connect() as c:
            return c.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params: object) -> list[sa.Row]:
        with self.engine().connect() as c:
            return list(c.execute(sa.text(sql), params))

    def wait_settled(self, timeout: float = 120, sweep_every: float | None = None) -> None:
        """Until every inbox row is processed and no patient awaits reassessment.

        With `sweep_every`, runs the sweeper meanwhile (as the scheduler does every minute), for
        work whose task was lost with a killed worker or an emptied queue."""
        deadline = time.monotonic() + timeout
        next_sweep = time.monotonic() + (sweep_every or 0)
        while time.monotonic() < deadline:
            busy = self.scalar("select (select count(*) from inbox where state <> 'processed')"
                               " + (select count(*) from patients where dirty_since is not null)")
            if busy == 0:
                return
            if sweep_every and time.monotonic() >= next_sweep:
                assert self.cli("sweep").returncode == 0
                next_sweep = time.monotonic() + sweep_every
            time.sleep(0.3)
        raise AssertionError(f"pipeline did not settle within {timeout}s")


@pytest.fixture
def stack(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A clean schema and an empty queue per test; workers are stopped afterwards."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text("drop schema public cascade; create schema public"))
    engine.dispose()
    s = Stack(pg_url, redis_url, tmp_path)
    up = s.cli("db", "upgrade")
    assert up.returncode == 0, up.stderr
    yield s
    s.kill_workers(signal.SIGTERM)


@pytest.fixture
def pg_runtime(pg_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The embedded runtime (tasks in-process) on a clean PostgreSQL schema."""
    from storage.db import upgrade
    from tasks import runtime
    from tasks.settings import Settings

    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text("drop schema public cascade; create schema public"))
    engine.dispose()
    rt = runtime.init(Settings(database_url=pg_url, broker_url=None, _env_file=None))
    upgrade(rt.engine)
    yield rt
    runtime.reset()
