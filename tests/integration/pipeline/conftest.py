"""Real servers for the pipeline tests: a fresh PostgreSQL database, a Redis database, and real
`celery worker` processes (not eager mode) started as subprocesses.

The servers are the test session's own (tests/_servers.py: a private PostgreSQL cluster and a
private redis-server, on free ports, gone at the end), never the machine's: `stack` flushes the
broker and drops the schema before every test. Without the server binaries these tests skip,
unless IMN_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import select
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

from tests._servers import PrivatePostgres, PrivateRedis

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def pg_url(pg_server: PrivatePostgres) -> str:
    """A database of its own for this test session, on the session's private cluster."""
    return pg_server.create_database("imn_it")


@pytest.fixture(scope="session")
def pg_template(pg_server: PrivatePostgres, redis_server: PrivateRedis,
                tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a database migrated to head once per session by `imn-monitor db upgrade`; each
    `stack` gets a copy of it (CREATE DATABASE ... TEMPLATE: a file copy, where running the
    migrations again would cost a CLI process per test)."""
    url = pg_server.create_database("imn_template")
    up = Stack(url, redis_server.url, tmp_path_factory.mktemp("template")).cli("db", "upgrade")
    assert up.returncode == 0, up.stderr
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def redis_url(redis_server: PrivateRedis) -> str:
    return redis_server.url


_SWEEPER = """
import json, sys, traceback
from tasks import jobs, runtime
from tasks.app import configure
rt = runtime.get()
configure(rt.settings)
for _ in sys.stdin:
    try:
        print(json.dumps(jobs.sweep_once(rt)), flush=True)
    except Exception:
        print(json.dumps({"error": traceback.format_exc()}), flush=True)
"""


class Sweeper:
    """A process that runs `jobs.sweep_once` for each line it reads and prints the counts as JSON."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = dict(env)
        with open(cwd / "sweeper.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _SWEEPER], env=env, cwd=cwd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sweep(self, timeout: float = 300) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("sweep\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        assert line, f"the sweeper did not answer within {timeout}s (exit code {self.proc.poll()})"
        counts = json.loads(line)
        assert "error" not in counts, counts["error"]
        return counts

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@dataclass
class Stack:
    """The production shape on this machine: PostgreSQL + Redis + celery worker processes."""

    db_url: str
    broker_url: str
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sweeper: Sweeper | None = None

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
        # one short-lived connection per query: survives a server restart, leaves no pool behind
        return sa.create_engine(self.db_url, poolclass=sa.NullPool)

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

    def _wait_ready(self, log_path: str, timeout: float = 300) -> None:
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

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("imn-monitor")
        return subprocess.run([str(exe), *args], env=self.env, cwd=self.tmp, capture_output=True, text=True,
                              timeout=timeout)

    def sweep(self) -> dict[str, int]:
        """One `jobs.sweep_once`, what `imn-monitor sweep` and the scheduler's sweeper run; its counts.

        Runs in one long-lived process per stack (started on first use, restarted when the
        environment changed), not a new `imn-monitor sweep` process each time: on a busy 2-core
        machine each new interpreter costs seconds of CPU in imports alone, and the fault tests sweep
        dozens of times."""
        if self.sweeper is None or self.sweeper.env != self.env or not self.sweeper.alive():
            self.stop_sweeper()
            self.sweeper = Sweeper(self.env, self.tmp)
        return self.sweeper.sweep()

    def stop_sweeper(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine().connect() as c:
            return c.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params: object) -> list[sa.Row]:
        with self.engine().connect() as c:
            return list(c.execute(sa.text(sql), params))

    def wait_settled(self, timeout: float = 300, sweep_every: float | None = None) -> None:
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
                self.sweep()
                next_sweep = time.monotonic() + sweep_every
            time.sleep(0.3)
        raise AssertionError(f"pipeline did not settle within {timeout}s")


@pytest.fixture
def stack(pg_server: PrivatePostgres, pg_template: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A fresh migrated database (a copy of `pg_template`) and an empty queue per test, both on the
    session's private servers; workers are stopped and the database dropped afterwards."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    s = Stack(pg_server.create_database("imn_it", template=pg_template), redis_url, tmp_path)
    yield s
    s.stop_sweeper()
    s.kill_workers(signal.SIGTERM)
    pg_server.drop_database(s.db_url)


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
