"""Fixtures of the web page, chart and webhook tests (imported by them explicitly: conftest.py of this
directory belongs to the API tests). Embedded default: a SQLite file and in-process tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

AS_OF = date(2025, 9, 1)


def lab(pid: str, analyte: str, value: float, unit: str, day: str) -> dict:
    return {"type": "lab", "patient_id": pid, "analyte": analyte, "value": value, "unit": unit,
            "effective_at": day, "source": "lis", "source_id": f"{pid}-{analyte}-{day}"}


def med(pid: str, drug: str, start: str, **kw: object) -> dict:
    return {"type": "medication", "patient_id": pid, "drug": drug, "start": start, "source": "ehr",
            "source_id": f"{pid}-{drug}-{start}", **kw}


def cohort() -> list[dict]:
    """P-ALB: a critical albumin alert. P-CSA: cyclosporine with a low trough (warning). P-RTX: a
    rituximab course, titres and proteinuria over a year (the chart's full case)."""
    ev: list[dict] = [
        {"type": "patient", "patient_id": "P-ALB", "birth_date": "1950-06-30", "sex": "female"},
        lab("P-ALB", "serum_albumin", 1.5, "g/dL", "2025-08-25"),
        {"type": "patient", "patient_id": "P-CSA", "birth_date": "1961-04-02", "sex": "male"},
        med("P-CSA", "cyclosporine", "2025-01-01", dose=100, unit="mg", frequency="bid"),
        lab("P-CSA", "csa_trough", 70, "ng/mL", "2025-08-20"),
        lab("P-CSA", "upcr", 180, "mg/mmol", "2025-08-20"),
        lab("P-CSA", "anti_pla2r", 35, "RU/mL", "2025-08-20"),
        {"type": "patient", "patient_id": "P-RTX", "birth_date": "1958-02-11", "sex": "male"},
        med("P-RTX", "rituximab", "2024-09-02", dose=1000, unit="mg", route="iv"),
        med("P-RTX", "rituximab", "2024-09-16", dose=1000, unit="mg", route="iv"),
        med("P-RTX", "glucocorticoid", "2024-09-02", dose=100, unit="mg", end="2024-09-16", frequency="qd"),
    ]
    for day, pla2r, prot, alb in [("2024-08-01", 410, 9.5, 19), ("2024-10-15", 160, 8.1, 21),
                                  ("2025-01-10", 60, 6.8, 23), ("2025-03-20", 45, 6.9, 22),
                                  ("2025-06-01", 70, 7.4, 21), ("2025-08-20", 95, 7.9, 20)]:
        ev += [lab("P-RTX", "anti_pla2r", pla2r, "RU/mL", day), lab("P-RTX", "proteinuria_24h", prot, "g/d", day),
               lab("P-RTX", "serum_albumin", alb, "g/L", day)]
    return ev


def relapse_case(pid: str = "P-REL") -> list[dict]:
    """A complete remission, then proteinuria back above 3.5 g/d (confirmed a week later: a critical
    relapse) with the anti-PLA2R titer rising from 12 to 80 RU/mL (titer_rising, inhibited by it)."""
    ev: list[dict] = [{"type": "patient", "patient_id": pid, "birth_date": "1966-05-05", "sex": "male"}]
    for day, prot in [("2024-01-10", 6.0), ("2024-06-01", 0.2), ("2024-06-15", 0.2), ("2025-08-01", 5.0),
                      ("2025-08-10", 5.2)]:
        ev.append(lab(pid, "proteinuria_24h", prot, "g/d", day))
    for day, titer in [("2024-06-01", 10), ("2025-01-02", 12), ("2025-08-01", 80)]:
        ev.append(lab(pid, "anti_pla2r", titer, "RU/mL", day))
    return ev


def ndjson(events: list[dict]) -> bytes:
    return ("\n".join(json.dumps(e) for e in events) + "\n").encode()


@dataclass
class Keys:
    clinician: str
    admin: str
    ingest: str


@pytest.fixture
def web_rt(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The embedded runtime on a fresh SQLite file, migrated; webhooks may reach loopback receivers."""
    from storage.db import upgrade
    from tasks import runtime
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'imn.db'}", broker_url=None,
                               webhook_url=None, webhook_allow_private=True, _env_file=None))
    upgrade(rt.engine)
    yield rt
    runtime.reset()


def ingest(rt, events: list[dict], as_of: date = AS_OF) -> None:  # type: ignore[no-untyped-def]
    from tasks import service
    from tasks.ingest import accept

    service.process(rt, [a.inbox_id for a in accept(rt, ndjson(events), "ndjson", "feed.ndjson")], as_of)


@pytest.fixture
def seeded(web_rt):  # type: ignore[no-untyped-def]
    ingest(web_rt, cohort())
    return web_rt


@pytest.fixture
def keys(web_rt) -> Keys:  # type: ignore[no-untyped-def]
    from storage import api_keys
    from storage.db import session

    with session(web_rt.engine) as s:
        made = {role: api_keys.create_key(s, f"dr-{role}" if role == "clinician" else role, role)[0]
                for role in ("clinician", "admin", "ingest")}
    return Keys(**made)


@pytest.fixture
def app(web_rt):  # type: ignore[no-untyped-def]
    from feed.app import create_app

    return create_app(web_rt)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real uvicorn server in a thread on 127.0.0.1:<free port>; stopped afterwards."""
    from tests.integration.feed.conftest import serve

    with serve(app, lifespan="on") as base:
        yield base
