"""Due-only nightly == full nightly through the real storage path (SQLite, embedded tasks).

The pure proof over every archetype and every night is tests/unit/test_due_nightly.py; this one runs
a few archetypes through inbox -> store_events -> reassess -> reconcile -> alerts, audit and outbox,
on a coarser step: every STEP days the results that arrived since the last step are ingested, then
the nightly run. Once with every night full, once due-only (no weekly safety net). The clock is
pinned to the simulated night, so both databases must hold the same alerts, the same audit trail and
the same outbox, but for alerts.as_of (the date an alert was last seen).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from synthetic import generate_patient
from tasks import bootstrap, runtime, service
from tasks.ingest import accept
from tasks.settings import Settings

pytestmark = pytest.mark.integration

START = date(2023, 1, 1)
YEARS = 2.0
STEP = 5
ARCHETYPES = ("rtx_non_responder", "modified_ponticelli", "tac_under_exposure", "severe_hypoalbuminaemia")


def _arrival(e: dict[str, Any]) -> date:
    return date.fromisoformat(str(e.get("effective_at") or e.get("start") or START.isoformat())[:10])


def _events() -> list[dict[str, Any]]:
    return [e for k, name in enumerate(ARCHETYPES) for e in generate_patient(k, START, YEARS, archetype=name)]


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full: bool) -> tuple[dict[str, list[Any]], int]:
    clock = {"now": datetime.combine(START, time(2), UTC)}
    for module in ("tasks.ingest", "tasks.reassess", "tasks.jobs"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: clock["now"])
    rt = bootstrap.init(Settings(database_url=f"sqlite:///{tmp_path / ('full' if full else 'due')}.db",
                                 broker_url=None, full_reassess_weekday="never", _env_file=None), schema="upgrade")
    events = _events()
    assessed = 0
    try:
        day, end = START, START + timedelta(days=round(365.25 * YEARS))
        while day <= end:
            clock["now"] = datetime.combine(day, time(2), UTC)
            batch = [e for e in events if e["type"] == "patient" and day == START
                     or e["type"] != "patient" and day - timedelta(days=STEP) < _arrival(e) <= day]
            if batch:
                data = ("\n".join(json.dumps(e) for e in batch) + "\n").encode()
                service.process(rt, [a.inbox_id for a in accept(rt, data, "ndjson", f"{day}.ndjson")], day)
            done = service.reassess_everyone(rt, day, full=full)
            assert done is not None  # embedded: it ran here
            assessed += done.patients
            day += timedelta(days=STEP)
        with rt.engine.connect() as c:
            tables = {
                "alerts": [r for r in c.execute(sa.text("select * from alerts order by id")).mappings()],
                "alert_audit": [dict(r) for r in c.execute(sa.text("select * from alert_audit order by id")).mappings()],
                "outbox": [dict(r) for r in c.execute(sa.text("select * from outbox order by id")).mappings()],
            }
    finally:
        runtime.reset()
    tables["alerts"] = [{k: v for k, v in r.items() if k != "as_of"} for r in tables["alerts"]]
    return tables, assessed


def test_due_only_nightly_stores_the_same_alerts_audit_and_outbox_as_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full, full_assessed = _run(tmp_path, monkeypatch, full=True)
    due, due_assessed = _run(tmp_path, monkeypatch, full=False)
    assert len(full["alerts"]) >= len(ARCHETYPES) and len(full["outbox"]) > 0
    assert {r["action"] for r in full["alert_audit"]} >= {"fired", "resolved"}
    assert due_assessed < full_assessed / 2, (due_assessed, full_assessed)  # it did skip
    print(f"assessed: full {full_assessed}, due-only {due_assessed}; alerts {len(full['alerts'])}, "
          f"audit {len(full['alert_audit'])}, outbox {len(full['outbox'])}")
    assert due["alerts"] == full["alerts"]
    assert due["alert_audit"] == full["alert_audit"]
    assert due["outbox"] == full["outbox"]
