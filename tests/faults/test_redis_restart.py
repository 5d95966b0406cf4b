"""Fault: Redis (the broker) SIGKILLed and started again, empty, on a private redis-server (the
`rstack` fixture; the machine's Redis is never touched).

1. With an ingest queued and no worker yet: every queued task is gone; the sweeper re-drives the
   inbox rows from the database and everything is stored exactly once.
2. In the middle of the nightly fan-out, with the worker running: the queued chunks are gone, the
   worker reconnects to the new Redis, and the sweeper (redrive_nightly) re-drives the patients not
   yet assessed for the night: every active patient assessed for that date, no alert or
   notification twice, the run closed.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.faults._feeds import big_feed, cohort, write
from tests.faults.conftest import FaultStack, PrivateRedis

pytestmark = pytest.mark.integration
AS_OF = "2025-09-01"


def test_redis_restarted_with_queued_work_loses_nothing(rstack: FaultStack, private_redis: PrivateRedis) -> None:
    f, n = big_feed(rstack.tmp, patients=30, per_patient=30)
    r = rstack.cli("ingest", str(f), "--as-of", AS_OF, "--no-wait", "--json")  # no worker: all queued
    assert r.returncode == 0, r.stderr
    accepted_at = time.monotonic()
    batches = json.loads(r.stdout)["batches"]
    assert rstack.scalar("select count(*) from inbox where state = 'received'") == batches
    assert private_redis.client().llen("imn") == batches  # the tasks really are in this Redis
    private_redis.restart()  # SIGKILL; keeps nothing on disk: every queued task is gone
    assert private_redis.client().llen("imn") == 0
    rstack.start_worker()
    # older than IMN_STALE_AFTER_S=5: the sweeper's business now
    time.sleep(max(0.0, accepted_at + 5.5 - time.monotonic()))
    assert rstack.scalar("select count(*) from events") == 0, "nothing can have run: the queue was emptied"
    sweep = rstack.cli("sweep")  # the operator's command, once
    assert sweep.returncode == 0, sweep.stderr
    assert json.loads(sweep.stdout)["inbox"] == batches  # the sweeper re-drove every batch
    rstack.wait_settled(timeout=300, sweep_every=3)
    assert rstack.scalar("select count(*) from inbox") == batches
    assert rstack.scalar("select count(*) from inbox where state <> 'processed'") == 0
    assert rstack.scalar("select sum((counts->>'accepted')::int) from inbox") == n
    assert rstack.scalar("select count(*) from events") == n
    assert rstack.scalar("select count(distinct identity) from events") == n
    assert rstack.scalar("select count(*) from patients where last_as_of is null") == 0


PATIENTS = 200
INGEST_AS_OF = "2025-01-01"  # the 2025-08-25 results are not visible yet: no alert at ingest
NIGHT = "2025-09-01"


def test_redis_restarted_during_nightly_run_every_patient_assessed_once(
        rstack: FaultStack, private_redis: PrivateRedis) -> None:
    rstack.extra.update(IMN_REASSESS_CHUNK="5")
    f = write(rstack.tmp / "cohort.ndjson", cohort(PATIENTS, history=4, prefix="RN"))
    worker = rstack.start_worker(concurrency=2)
    r = rstack.cli("ingest", str(f), "--as-of", INGEST_AS_OF, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == PATIENTS * 7
    rstack.wait_settled(timeout=300)
    assert rstack.scalar("select count(*) from alerts") == 0
    assert rstack.scalar("select count(*) from patients where last_as_of = :d", d=INGEST_AS_OF) == PATIENTS

    done_sql = f"select count(*) from patients where last_as_of = '{NIGHT}'"
    # one patient of the 3rd and one of the 4th chunk are held by the test: the two worker children
    # wait there after chunks 1-2, so chunks are certainly still queued when Redis dies, on a fast
    # machine or a loaded one
    held = [rstack.scalar(f"select patient_id from patients order by patient_id offset {k} limit 1")
            for k in (10, 15)]
    with rstack.holding("patients", "patient_id", held):
        rstack.start_nightly(NIGHT)
        rstack.poll(done_sql, lambda k: k >= 10)  # at least two chunks done ...
        queued = private_redis.client().llen("imn")
        private_redis.restart()  # ... then the broker dies with everything queued and unacknowledged
        done_at_restart = rstack.scalar(done_sql)
    print(f"nightly: {done_at_restart}/{PATIENTS} patients assessed, {queued} tasks queued at the Redis restart")
    assert done_at_restart < PATIENTS, "the restart came too late to interrupt the nightly run"
    assert queued > 0 and private_redis.client().llen("imn") == 0
    assert rstack.scalar(f"select state from nightly_runs where as_of = '{NIGHT}'") == "running"

    # the same worker (not restarted) reconnects; the sweeper re-drives the patients behind and then
    # closes the run (it waits IMN_STALE_AFTER_S=5 after the run's start before touching it)
    state_sql = f"select state from nightly_runs where as_of = '{NIGHT}'"
    sweeps = rstack.sweep_until(lambda: rstack.scalar(state_sql) == "finished", every=0.5)
    redriven = sum(s["nightly_patients"] for s in sweeps)
    assert worker.poll() is None, "the worker died with its broker"
    assert redriven > 0, "the sweeper re-drove nothing: the restart lost no work?"
    rstack.wait_settled(timeout=300, sweep_every=3)
    logs = rstack.worker_logs()
    # the worker noticed the broker go and connected again (once at start, once after the restart)
    assert "Connection to broker lost" in logs and logs.count("Connected to redis://") >= 2, logs[-3000:]

    rstack.assert_night_complete(NIGHT, PATIENTS)
