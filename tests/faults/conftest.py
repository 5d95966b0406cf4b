"""Fault-injection tests: the pipeline fixtures (fresh PostgreSQL database, real celery workers) on a
Redis database of their own, so a concurrent run of tests/integration/pipeline (Redis DB 14) is not
disturbed (its `stack` fixture flushes its DB), plus helpers to kill, restart and wait.

Tests that restart Redis get a redis-server of their own (`private_redis`, `rstack`) on a free port:
the shared Redis on 6379 is never restarted.

Every helper that stops a server starts it again in a `finally`, and every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.pipeline.conftest import (  # noqa: F401  (fixtures picked up by pytest)
    PG_ADMIN_URL,
    Stack,
    _unavailable,
    pg_runtime,
    stack,
)

FAULTS_REDIS_URL = os.environ.get("IMN_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/11")
PG_CTL = ["pg_ctlcluster", "--skip-systemctl-redirect"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis DB 11 (not the pipeline tests' 14): `stack` flushes it before each test."""
    import redis

    try:
        redis.Redis.from_url(FAULTS_REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis at 127.0.0.1:6379", exc)
    return FAULTS_REDIS_URL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """As the pipeline fixture, but the admin engine is not kept across the session: a test here
    restarts PostgreSQL, which would leave a pooled admin connection dead for the DROP at the end."""
    name = f"imn_fault_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    wait_pg_ready()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class FaultStack(Stack):
    """Stack with extra IMN_* settings for the workers and the CLI (e.g. a small reassess chunk)."""

    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra}

    def engine(self) -> sa.Engine:
        # one short-lived connection per query: survives a PostgreSQL restart, leaks no pools
        return sa.create_engine(self.db_url, poolclass=sa.NullPool)

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run Python code in a fresh process configured from this stack's environment."""
        return subprocess.run([sys.executable, "-c", code], env=self.env, cwd=self.tmp, capture_output=True,
                              text=True, timeout=timeout)

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log")))

    def start_nightly(self, night: str) -> None:
        """The scheduler's nightly job, in a process of its own: claim the date, enqueue reassess_all."""
        r = self.python(
            "from datetime import date\n"
            "from tasks import jobs, runtime\nfrom tasks.app import configure\n"
            "rt = runtime.get(); configure(rt.settings)\n"
            f"print(jobs.run_nightly(rt, date.fromisoformat({night!r}), 'faults-scheduler'))\n")
        assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr

    def assert_night_complete(self, night: str, patients: int) -> None:
        """After a disturbed nightly run: every active patient assessed for the night, and in effect
        once (one alert per patient, fired once, notified once), and the run recorded as finished."""
        assert self.scalar("select count(*) from patients where active") == patients
        assert self.scalar(f"select count(*) from patients where last_as_of = '{night}'") == patients
        assert self.scalar("select count(*) from alerts") == patients
        assert self.scalar("select count(distinct fingerprint) from alerts") == patients
        assert self.scalar("select count(distinct patient_id) from alerts where rule = 'albumin_low_thrombosis'") == patients
        assert self.scalar("select count(*) from alert_audit where action = 'fired'") == patients
        assert self.scalar("select count(*) from outbox where kind = 'fired'") == patients
        assert self.scalar("select count(*) from outbox") == self.scalar("select count(distinct dedupe_key) from outbox")
        assert self.scalar("select count(*) from alerts where as_of <> :d", d=night) == 0
        row = self.rows(f"select state, finished_at from nightly_runs where as_of = '{night}'")[0]
        assert row.state == "finished" and row.finished_at is not None
        assert self.scalar("select count(*) from nightly_runs") == 1

    def poll(self, sql: str, until, timeout: float, interval: float = 0.02) -> object:  # type: ignore[no-untyped-def]
        """Query until `until(value)` holds; returns the value (raises after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.scalar(sql)
            if until(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{sql!r} still {value!r} after {timeout}s\n{self.worker_logs()[-3000:]}")
            time.sleep(interval)


@pytest.fixture
def fstack(stack: Stack) -> Iterator[FaultStack]:  # noqa: F811
    """The pipeline `stack` (clean schema, empty queue) as a FaultStack; shares its worker list, so the
    `stack` fixture's teardown stops whatever workers a test left running."""
    f = FaultStack(stack.db_url, stack.broker_url, stack.tmp)
    f.workers = stack.workers
    yield f


@dataclass
class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, kept in memory only (as in
    production: no RDB, no AOF). `restart()` SIGKILLs it and starts a new one on the same port, so
    everything queued is gone. The shared Redis on 6379 is never touched."""

    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        log = open(self.dir / f"redis-{self.starts}.log", "wb")
        self.starts += 1
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.dir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"private redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
                                    socket_timeout=0.5).ping())
        except Exception:  # noqa: BLE001
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self) -> None:
        """SIGKILL (nothing saved) and start again on the same port."""
        self.kill()
        self.start()

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2, socket_timeout=5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    from shutil import which

    if which("redis-server") is None:
        _unavailable("redis-server (for a private Redis)", FileNotFoundError("redis-server"))
    d = tmp_path / "redis"
    d.mkdir()
    r = PrivateRedis(free_port(), d)
    r.start()
    try:
        yield r
    finally:
        r.kill()


@pytest.fixture
def rstack(fstack: FaultStack, private_redis: PrivateRedis) -> Iterator[FaultStack]:
    """`fstack` whose workers, CLI and Python subprocesses use the private Redis as broker (and for
    the debounce keys): IMN_BROKER_URL comes from `broker_url`."""
    fstack.broker_url = private_redis.url
    yield fstack
    # stop the workers while their broker is still up (the private Redis is torn down after this)
    fstack.kill_workers(signal.SIGTERM)


def pg_is_ready() -> bool:
    try:
        e = sa.create_engine(PG_ADMIN_URL, poolclass=sa.NullPool, connect_args={"connect_timeout": 2})
        with e.connect() as c:
            c.execute(sa.text("select 1"))
        return True
    except Exception:  # noqa: BLE001
        return False


def wait_pg_ready(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not pg_is_ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"PostgreSQL not answering after {timeout}s")
        time.sleep(0.2)


def _cluster() -> str:
    versions = sorted(os.listdir("/etc/postgresql"))
    return versions[-1]


def pg_ctl(action: str) -> None:
    subprocess.run([*PG_CTL, _cluster(), "main", action], check=True, capture_output=True, timeout=90)


def ensure_pg_running() -> None:
    """Start PostgreSQL if it is not answering (the cleanup of every test that stops it)."""
    if not pg_is_ready():
        subprocess.run([*PG_CTL, _cluster(), "main", "start"], capture_output=True, timeout=90)
    wait_pg_ready()
