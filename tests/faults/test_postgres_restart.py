"""Fault 2: PostgreSQL stopped for a few seconds (fast shutdown) and started again while a worker is in
the middle of a large queued ingest. The server is a cluster of this test's own (`private_postgres`),
never the machine's. Tasks that meet the outage fail with OperationalError and are retried with
backoff (autoretry_for); pooled connections that died with the server are replaced (pool_pre_ping).
Afterwards every event is stored exactly once and every inbox row is processed.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests._servers import PrivatePostgres
from tests.faults._feeds import cohort, write
from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.integration
PATIENTS = 600
HISTORY = 20
OUTAGE_S = 3


def test_postgres_restarted_mid_ingest_every_event_stored_once(pgstack: FaultStack,
                                                              private_postgres: PrivatePostgres) -> None:
    # as_of is "today" here, as in production: the sweeper re-drives lost or stale work as of today
    # (it does not know an --as-of given at ingest), so a fixed past as_of would race with it
    today = datetime.now(UTC).date()
    events = cohort(PATIENTS, history=HISTORY, prefix="PG", recent=(today - timedelta(days=5)).isoformat())
    n = len(events)
    f = write(pgstack.tmp / "big.ndjson", events)
    r = pgstack.cli("ingest", str(f), "--no-wait", "--json")  # all queued, no worker yet
    assert r.returncode == 0, r.stderr
    batches = json.loads(r.stdout)["batches"]
    assert batches >= 25
    started = pgstack.scalar("select pg_postmaster_start_time()")
    # the last batch is held (row locked by the test, until the stop ends that session): work is
    # certainly in progress when the server stops, however fast or slow the machine
    with pgstack.holding("inbox", "id", [pgstack.scalar("select max(id) from inbox")]):
        pgstack.start_worker(concurrency=2)
        pgstack.poll("select count(*) from inbox where state = 'processed'", lambda k: k >= 1)
        done_before = pgstack.scalar("select count(*) from inbox where state = 'processed'")
        try:
            private_postgres.stop()  # fast shutdown: the workers' open transactions are cut
            time.sleep(OUTAGE_S)  # the worker keeps taking tasks meanwhile: each fails and is retried
        finally:
            private_postgres.start()  # same port: the workers' pools reconnect to it
    assert pgstack.scalar("select pg_postmaster_start_time()") > started, "PostgreSQL was not restarted"
    print(f"postgres restart: {done_before}/{batches} batches processed before the stop")
    assert done_before < batches, "the restart came too late to interrupt the ingest"

    pgstack.wait_settled(timeout=300, sweep_every=5)
    logs = pgstack.worker_logs()
    # the outage was really met by tasks, and they were retried rather than lost
    assert "OperationalError" in logs and "Retry in" in logs, logs[-3000:]
    assert pgstack.scalar("select count(*) from inbox") == batches
    assert pgstack.scalar("select count(*) from inbox where state <> 'processed'") == 0
    assert pgstack.scalar("select count(*) from events") == n
    assert pgstack.scalar("select count(distinct identity) from events") == n
    assert pgstack.scalar("select count(*) from quarantine") == 0
    assert pgstack.scalar("select sum((counts->>'accepted')::int) from inbox") == n
    # the reassessments that met the outage were retried too: one alert per patient, notified once
    assert pgstack.scalar("select count(*) from patients where last_as_of >= :d", d=today) == PATIENTS
    assert pgstack.scalar("select count(*) from alerts") == PATIENTS
    assert pgstack.scalar("select count(distinct fingerprint) from alerts") == PATIENTS
    assert pgstack.scalar("select count(*) from outbox, jsonb_array_elements(payload->'changes') c"
                          " where c->>'change' = 'fired'") == PATIENTS  # in one group per patient
