"""Fault 3: the same payload delivered three times at once — by three `imn-monitor ingest` processes
on one file (real workers then run every batch's task three times, two at a time), and by three
concurrent POST /ingest/ndjson requests (embedded processing in three threads at once). Either way:
one inbox row per batch, every event stored once, one alert per condition, one notification each.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.faults._feeds import cohort, write
from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.integration
AS_OF = "2025-09-01"


def test_three_cli_ingests_of_one_file_at_once_store_everything_once(fstack: FaultStack) -> None:
    patients = 200
    events = cohort(patients, history=8, prefix="DUP")
    n = len(events)
    f = write(fstack.tmp / "same.ndjson", events)
    exe = str(Path(sys.executable).with_name("imn-monitor"))
    # no worker yet: each process stores (or finds) the inbox rows and queues every batch, so the
    # queue ends up holding each batch's task three times
    procs = [subprocess.Popen([exe, "ingest", str(f), "--as-of", AS_OF, "--no-wait", "--json"], env=fstack.env,
                              cwd=fstack.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    batches = outs[0]["batches"]
    assert batches >= 4 and all(o["batches"] == batches for o in outs)
    assert all(o["queued_batches"] == batches for o in outs), outs  # 3 x batches tasks really queued
    assert fstack.scalar("select count(*) from inbox") == batches

    fstack.start_worker(concurrency=2)
    # no sweeper: nothing is lost here, and a re-drive would assess as of today, not AS_OF
    fstack.wait_settled(timeout=300)
    logs = fstack.worker_logs()
    assert logs.count("imn.ingest_batch[") >= 3 * batches  # each batch's task ran three times
    assert fstack.scalar("select count(*) from inbox") == batches
    assert fstack.scalar("select count(*) from inbox where state <> 'processed'") == 0
    assert fstack.scalar("select count(*) from events") == n
    assert fstack.scalar("select count(distinct identity) from events") == n
    assert fstack.scalar("select sum((counts->>'accepted')::int) from inbox") == n
    assert fstack.scalar("select count(*) from patients") == patients
    assert fstack.scalar("select count(*) from alerts") == patients
    assert fstack.scalar("select count(distinct fingerprint) from alerts") == patients
    assert fstack.scalar("select count(*) from alert_audit where action = 'fired'") == patients
    assert fstack.scalar("select count(*) from outbox") == patients
    assert fstack.scalar("select count(distinct patient_id) from outbox") == patients  # a group each


def test_three_concurrent_api_posts_of_one_body_store_everything_once(pg_runtime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from feed import create_app
    from storage import api_keys
    from storage.db import session
    from tasks import service
    from tasks.settings import Settings

    rt = pg_runtime
    # the API assesses as of "today": pin it, so the alerts do not depend on the day the test runs
    monkeypatch.setattr(Settings, "today", lambda self: date.fromisoformat(AS_OF))
    rt.settings.batch_lines = 150
    rt.settings.ingest_concurrency = 3  # all three are received at once (the default admits 2, then 503)
    patients = 60
    events = cohort(patients, history=6, prefix="API")
    n = len(events)
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    with session(rt.engine) as s:
        token, _ = api_keys.create_key(s, "lab-feed", "ingest")
    app = create_app(rt)
    barrier = threading.Barrier(3)
    responses: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    with TestClient(app) as client:
        def post() -> None:
            try:
                barrier.wait(timeout=30)
                r = client.post("/ingest/ndjson", content=body, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
                responses.append((r.status_code, r.json()))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=post) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads) and not errors, errors

    assert [code for code, _ in responses] == [202, 202, 202]
    ids = {tuple(doc["inbox_ids"]) for _, doc in responses}
    assert len(ids) == 1, "the three deliveries must name the same inbox rows"
    batches = len(next(iter(ids)))
    assert batches == -(-n // 150)
    with rt.engine.connect() as c:
        pending = [r[0] for r in c.exec_driver_sql("select id from inbox where state <> 'processed'")]
    print(f"api: {len(pending)} inbox rows left to the sweeper by the concurrent requests")
    if pending:  # a processing thread that lost a lock race leaves its rows to the sweeper's re-drive
        service.process(rt, pending, None)
    with rt.engine.connect() as c:
        q = lambda sql: c.exec_driver_sql(sql).scalar()  # noqa: E731
        assert q("select count(*) from inbox") == batches
        assert q("select count(*) from inbox where state <> 'processed'") == 0
        assert q("select count(*) from events") == n
        assert q("select count(distinct identity) from events") == n
        assert q("select sum((counts->>'accepted')::int) from inbox") == n
        alerts = q("select count(*) from alerts")
        assert alerts == patients  # albumin_low_thrombosis, once each
        assert q("select count(distinct fingerprint) from alerts") == alerts
        assert q("select count(*) from alert_audit where action = 'fired'") == alerts
        assert q("select count(*) from outbox, jsonb_array_elements(payload->'changes') c"
                 " where c->>'change' = 'fired'") == alerts
        assert q("select count(*) from outbox") == q("select count(distinct patient_id) from outbox")
        assert q("select count(*) from outbox") == q("select count(distinct dedupe_key) from outbox")
