"""Fault: the whole celery worker (parent and children) SIGKILLed in the middle of a large queued
ingest. A new worker plus the sweeper (`jobs.sweep_once`: stale inbox rows and dirty patients)
finish the work: every inbox row processed, every event stored exactly once, every patient assessed.

(Moved from tests/integration/pipeline/test_pipeline.py.)
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.faults._feeds import big_feed
from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.integration
AS_OF = "2025-09-01"


def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(fstack: FaultStack) -> None:
    patients = 150  # 6,150 lines, 13 batches of 500
    f, n = big_feed(fstack.tmp, patients=patients)
    # queue everything first, then let a worker start on it and kill it after its first batch
    r = fstack.cli("ingest", str(f), "--as-of", AS_OF, "--no-wait", "--json")
    assert r.returncode == 0, r.stderr
    batches = json.loads(r.stdout)["batches"]
    assert batches >= 10
    processed = "select count(*) from inbox where state = 'processed'"
    # the last batch is held (its row locked by the test), so work is certainly left at the kill,
    # however fast or slow the machine; the other batches run, and are killed, wherever they are
    with fstack.holding("inbox", "id", [fstack.scalar("select max(id) from inbox")]):
        fstack.start_worker(concurrency=2)
        fstack.poll(processed, lambda k: k >= 1)
        fstack.kill_workers(signal.SIGKILL)  # the whole worker, parent and children, mid-run
        done_at_kill = fstack.scalar(processed)
    print(f"worker kill during ingest: {done_at_kill}/{batches} batches processed at the kill")
    assert done_at_kill < batches, "the kill came too late to interrupt anything"

    fstack.start_worker(concurrency=2)
    # the sweeper re-drives inbox rows and reassessments whose tasks died with the worker
    fstack.wait_settled(timeout=300, sweep_every=3)
    assert fstack.scalar("select count(*) from inbox") == batches
    assert fstack.scalar("select count(*) from inbox where state <> 'processed'") == 0
    assert fstack.scalar("select sum((counts->>'accepted')::int) from inbox") == n
    assert fstack.scalar("select count(*) from events") == n
    assert fstack.scalar("select count(distinct identity) from events") == n
    assert fstack.scalar("select count(*) from quarantine") == 0
    assert fstack.scalar("select count(*) from patients") == patients
    assert fstack.scalar("select count(*) from patients where last_as_of is null") == 0
    assert fstack.scalar("select count(*) from alerts") == fstack.scalar("select count(distinct fingerprint) from alerts")
    assert fstack.scalar("select count(*) from outbox") == fstack.scalar("select count(distinct dedupe_key) from outbox")
