"""Fault 1: every worker SIGKILLed in the middle of the nightly fan-out (reassess_all over 300 patients
in chunks of 5). A restarted worker plus the sweeper (`jobs.sweep_once`, as `imn-monitor sweep` and
the scheduler run it: redrive_nightly) finish the night: every active patient assessed for that
date, no alert or notification twice, the run closed.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.faults._feeds import cohort, write
from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.integration
PATIENTS = 300
INGEST_AS_OF = "2025-01-01"  # the 2025-08-25 results are not visible yet: no alert at ingest
NIGHT = "2025-09-01"


def test_workers_killed_during_nightly_run_every_patient_assessed_once(fstack: FaultStack) -> None:
    fstack.extra.update(IMN_REASSESS_CHUNK="5")
    f = write(fstack.tmp / "cohort.ndjson", cohort(PATIENTS))
    fstack.start_worker(concurrency=2)
    r = fstack.cli("ingest", str(f), "--as-of", INGEST_AS_OF, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == PATIENTS * 9
    fstack.wait_settled(timeout=300)
    assert fstack.scalar("select count(*) from alerts") == 0
    assert fstack.scalar("select count(*) from patients where last_as_of = :d", d=INGEST_AS_OF) == PATIENTS

    done_sql = f"select count(*) from patients where last_as_of = '{NIGHT}'"
    # the last patient's row is held by the test, so the run cannot finish before the kill however
    # fast the workers are; every other chunk runs, and is killed, wherever it happens to be
    with fstack.holding("patients", "patient_id", [fstack.scalar("select max(patient_id) from patients")]):
        fstack.start_nightly(NIGHT)
        fstack.poll(done_sql, lambda n: n >= 10)  # at least two chunks done ...
        fstack.kill_workers(signal.SIGKILL)  # ... then every worker process, parent and children, dies
        done_at_kill = fstack.scalar(done_sql)
    print(f"nightly: {done_at_kill}/{PATIENTS} patients assessed when the workers were killed")
    assert done_at_kill < PATIENTS, "the kill came too late to interrupt the nightly run"
    assert fstack.scalar(f"select state from nightly_runs where as_of = '{NIGHT}'") == "running"

    # a new worker drains what is left in the queue; the sweeper re-drives the chunks that died with
    # the old one (unacknowledged, invisible until the visibility timeout) and then closes the run
    fstack.start_worker(concurrency=2)
    state_sql = f"select state from nightly_runs where as_of = '{NIGHT}'"
    fstack.sweep_until(lambda: fstack.scalar(state_sql) == "finished", every=2)
    fstack.wait_settled(timeout=300, sweep_every=3)

    fstack.assert_night_complete(NIGHT, PATIENTS)
