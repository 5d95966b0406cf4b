"""`imn-monitor api --workers N`: the CLI accepts it and starts N server processes; the API keeps no
state of its own, so a change made through one process reaches a Server-Sent-Events client of
another (the stream reads the alert_audit table, not process memory).

One `--workers 2` server (a real subprocess, SQLite in embedded mode) and this test process's own
app on the same database file: results ingested through this process reach a stream served by the
workers, and an action taken through the workers reaches a stream served by this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from feed import create_app
from storage import api_keys
from storage.db import session, upgrade
from tasks import runtime
from tasks.settings import Settings

from ..._servers import free_port
from .conftest import serve
from .test_stream import read_events


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def _cohort(n: int, day: date) -> bytes:
    """n patients with severe hypoalbuminaemia and nephrotic proteinuria measured on `day`."""
    lines = []
    for i in range(n):
        pid = f"W{i:03d}"
        lines += [{"type": "patient", "patient_id": pid, "birth_date": "1970-01-01", "sex": "female"},
                  {"type": "lab", "patient_id": pid, "analyte": "serum_albumin", "value": 18, "unit": "g/L",
                   "effective_at": day.isoformat()},
                  {"type": "lab", "patient_id": pid, "analyte": "proteinuria_24h", "value": 9.5, "unit": "g/d",
                   "effective_at": day.isoformat()}]
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[str, str], int]]:
    """(base URL of `imn-monitor api --workers 2`, base URL of this process's app, key by role, its pid)."""
    tmp = tmp_path_factory.mktemp("workers")
    url = f"sqlite:///{tmp / 'feed.db'}"
    rt = runtime.init(Settings(database_url=url, broker_url=None, _env_file=None))
    upgrade(rt.engine)
    keys = {}
    with session(rt.engine) as s:
        for role in ("ingest", "clinician"):
            keys[role], _ = api_keys.create_key(s, f"{role}-workers", role)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMN_")}
    env["IMN_DATABASE_URL"] = url
    log = tmp / "api.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", "api", "--port", str(port),
                                 "--workers", "2"], env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"--workers 2 not ready: {log.read_text()[-2000:]}"
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200 and len(_children(proc.pid)) >= 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        with serve(create_app(rt)) as local:
            yield base, local, keys, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        runtime.reset()


def test_cli_parses_workers() -> None:
    r = CliRunner().invoke(cli_app, ["api", "--workers", "0"])
    assert r.exit_code == 2 and "--workers" in r.output
    assert "--workers" in CliRunner().invoke(cli_app, ["api", "--help"]).output


def test_workers_start_that_many_server_processes(two_servers) -> None:  # type: ignore[no-untyped-def]
    base, _, keys, pid = two_servers
    workers = [c for c in _children(pid) if "multiprocessing" in Path(f"/proc/{c}/cmdline").read_text()
               and "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]
    assert len(workers) == 2
    h = {"Authorization": f"Bearer {keys['clinician']}"}
    assert all(httpx.get(base + "/alerts", headers=h).status_code == 200 for _ in range(6))


def test_results_ingested_through_one_process_reach_a_stream_of_another(two_servers) -> None:  # type: ignore[no-untyped-def]
    workers, local, keys, _ = two_servers
    h = {"Authorization": f"Bearer {keys['clinician']}"}

    def ingest() -> None:  # through this test process's app: the stream below is served by a worker
        r = httpx.post(local + "/ingest/ndjson", content=_cohort(2, date.today() - timedelta(days=3)),
                       headers={"Authorization": f"Bearer {keys['ingest']}", "Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text

    events = read_events(workers, h, 1, timeout=30, during=ingest)
    assert events[0]["data"]["action"] == "fired" and events[0]["data"]["alert"]["patient_id"].startswith("W")

    # and the other way: an action through the workers reaches this process's stream
    target = events[0]["data"]["alert"]["id"]

    def act() -> None:
        r = httpx.post(workers + f"/alerts/{target}/comment", json={"text": "seen by another process"}, headers=h)
        assert r.status_code == 200, r.text

    back = read_events(local, h, 1, timeout=30, during=act)
    assert back[0]["data"]["comment"] == "seen by another process" and back[0]["data"]["alert"]["id"] == target
