"""Fault-injection tests: the pipeline fixtures (a fresh PostgreSQL database, a Redis database, real
celery workers) plus helpers to kill, restart and wait.

Every server here is the test session's own (tests/_servers.py), never the machine's: the session's
private PostgreSQL cluster and redis-server for most tests, and for a test that kills or restarts a
server, a cluster (`pgstack`, `private_postgres`) or a redis-server (`rstack`, `private_redis`) of that
test's own on a free port, so no other test sees the outage.

Every helper that stops a server starts it again, and every wait is bounded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests._servers import PrivatePostgres, PrivateRedis
from tests.integration.pipeline.conftest import (  # noqa: F401  (fixtures picked up by pytest)
    Stack,
    pg_runtime,
    pg_template,
    pg_url,
    redis_url,
    stack,
)


@dataclass
class FaultStack(Stack):
    """Stack with extra IMN_* settings for the workers and the CLI (e.g. a small reassess chunk)."""

    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra}

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run Python code in a fresh process configured from this stack's environment."""
        return subprocess.run([sys.executable, "-c", code], env=self.env, cwd=self.tmp, capture_output=True,
                              text=True, timeout=timeout)

    @contextmanager
    def holding(self, table: str, column: str, keys: list[object]) -> Iterator[None]:
        """Hold row locks (SELECT ... FOR UPDATE, in a transaction of the test's own) on the rows of
        `table` whose `column` is in `keys`, until the block ends.

        The fault tests need work to be left when the fault hits, on a fast machine and on a loaded
        one alike. A worker that reaches a held row (an inbox batch: `lock_inbox`; a patient:
        reassessment locks the patient's row first) waits there, so that work cannot finish before
        the test lets go. Everything else runs (and is killed) wherever it happens to be."""
        conn = self.engine().connect()
        try:
            conn.begin()
            got = conn.execute(sa.text(f"select {column} from {table} where {column} = any(:k) for update"),
                               {"k": keys}).scalars().all()
            assert sorted(got) == sorted(keys), (table, got, keys)
            yield
        finally:
            try:
                conn.close()  # ends the transaction (NullPool: the connection itself), so the locks go
            except sa.exc.SQLAlchemyError:
                pass  # the server was restarted under it: its locks went with it

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
        # one notification group per patient (outbox row), holding its one alert's "fired"
        assert self.scalar("select count(distinct patient_id) from outbox") == patients
        assert self.scalar("select count(*) from outbox") == patients
        assert self.scalar("select count(*) from outbox, jsonb_array_elements(payload->'changes') c"
                           " where c->>'change' = 'fired'") == patients
        assert self.scalar("select count(*) from outbox") == self.scalar("select count(distinct dedupe_key) from outbox")
        assert self.scalar("select count(*) from alerts where as_of <> :d", d=night) == 0
        row = self.rows(f"select state, finished_at from nightly_runs where as_of = '{night}'")[0]
        assert row.state == "finished" and row.finished_at is not None
        assert self.scalar("select count(*) from nightly_runs") == 1

    def sweep_until(self, done: Callable[[], bool], every: float, timeout: float = 300) -> list[dict[str, int]]:
        """Run the sweeper every `every` seconds (as the scheduler does) until `done()`; returns each
        sweep's counts. Bounded by time, not by a number of sweeps: on a loaded machine the workers
        need more sweeps' worth of time, and only a hang reaches `timeout`."""
        sweeps = []
        deadline = time.monotonic() + timeout
        while True:
            sweeps.append(self.sweep())
            if done():
                return sweeps
            if time.monotonic() > deadline:
                raise AssertionError(f"not done after {timeout}s of sweeps\n{self.worker_logs()[-3000:]}")
            time.sleep(every)

    def poll(self, sql: str, until, timeout: float = 300, interval: float = 0.02) -> object:  # type: ignore[no-untyped-def]
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


@pytest.fixture
def rstack(fstack: FaultStack, private_redis: PrivateRedis) -> Iterator[FaultStack]:
    """`fstack` whose workers, CLI and Python subprocesses use this test's own redis-server as broker
    (and for the debounce keys): IMN_BROKER_URL comes from `broker_url`."""
    fstack.broker_url = private_redis.url
    yield fstack
    # stop the workers while their broker is still up (the private Redis is torn down after this)
    fstack.stop_sweeper()
    fstack.kill_workers(signal.SIGTERM)


@pytest.fixture
def pgstack(private_postgres: PrivatePostgres, redis_url: str, tmp_path: Path) -> Iterator[FaultStack]:  # noqa: F811
    """A FaultStack whose database lives on this test's own PostgreSQL cluster (`private_postgres`),
    which the test may stop and start: no other test's database is on it."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    f = FaultStack(private_postgres.create_database("imn_fault"), redis_url, tmp_path)
    up = f.cli("db", "upgrade")
    assert up.returncode == 0, up.stderr
    yield f
    # stop the workers while their database is still up (the cluster is torn down after this)
    f.stop_sweeper()
    f.kill_workers(signal.SIGTERM)
