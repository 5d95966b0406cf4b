"""Patients, FHIR Flags (valid R4 per fhir.resources.R4B), health, readiness and metrics."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.flag import Flag

from .conftest import Feed


def test_patient_summary_and_timeline(feed: Feed) -> None:
    h = feed.auth("clinician")
    p = feed.client.get("/patients/P001", headers=h).json()
    assert p["patient_id"] == "P001" and p["as_of"] == "2025-06-01"  # the patient's last as_of
    assert p["remission"]["state"] and p["risk"]["category"]
    assert "serum_albumin" in p["latest"] and isinstance(p["active_therapies"], list)
    assert p["open_alerts"] and p["open_alerts"][0]["patient_id"] == "P001"
    assert feed.client.get("/patients/P001", params={"as_of": "2025-05-05"}, headers=h).json()["as_of"] == "2025-05-05"
    t = feed.client.get("/patients/P001/timeline", headers=h).json()
    assert {x["analyte"] for x in t["labs"]} >= {"serum_albumin", "proteinuria_24h", "anti_pla2r"}
    assert feed.client.get("/patients/NOPE", headers=h).status_code == 404
    assert feed.client.get("/patients/NOPE/timeline", headers=h).status_code == 404


def test_patient_summary_shows_the_immunological_state_and_values_as_people_read_them(feed: Feed) -> None:
    p = feed.client.get("/patients/P001", headers=feed.auth("clinician")).json()
    # P001: anti-PLA2R 100 RU/mL on 2025-05-01 (the cohort's 60 + 40 x (1 % 4))
    state = p["immunological_state"]
    assert (state["state"], state["value"], state["date"]) == ("positive", 100.0, "2025-05-01")
    assert state["display"] == "positive (100 RU/mL on 2025-05-01)"
    albumin = p["latest"]["serum_albumin"]
    assert albumin["value"] == 19.0 and albumin["display"] == "19 g/L"


def test_fhir_flags_validate_as_r4(feed: Feed) -> None:
    h = feed.auth("clinician")
    r = feed.client.get("/fhir/Flag", params={"patient": "Patient/P002"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(r.json())
    assert bundle.type == "searchset" and bundle.total >= 1
    for entry in bundle.entry:
        flag = Flag.model_validate(entry.resource.model_dump() if hasattr(entry.resource, "model_dump")
                                   else entry.resource)
        assert flag.subject.reference == "Patient/P002" and flag.status == "active"
    one = feed.client.get(f"/fhir/Flag/{bundle.entry[0].resource.id}", headers=h)
    flag = Flag.model_validate(one.json())
    assert flag.code.coding[0].code == "albumin_low_thrombosis"
    missing = feed.client.get("/fhir/Flag/abc", headers=h)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    inactive = feed.client.get("/fhir/Flag", params={"status": "inactive"}, headers=h).json()
    for e in inactive.get("entry", []):
        assert Flag.model_validate(e["resource"]).status == "inactive"


def test_health_readiness_and_metrics(feed: Feed) -> None:
    assert feed.client.get("/healthz").json() == {"status": "ok"}
    ready = feed.client.get("/readyz").json()
    assert ready == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    m = feed.client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    for name in ("imn_inbox_batches{state=\"processed\"}", "imn_ingest_failed_batches", "imn_queue_lag_seconds",
                 "imn_alerts{rule=\"albumin_low_thrombosis\"", "imn_outbox_notifications{state=\"pending\"}",
                 "imn_outbox_notifications{state=\"dead\"}"):
        assert name in m.text, name
    assert "P00" not in m.text  # aggregates only


def test_readyz_is_503_when_the_schema_is_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from feed import create_app
    from storage.db import make_engine, upgrade
    from tasks.runtime import Runtime
    from tasks.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path}/old.db", broker_url=None, _env_file=None)
    rt = Runtime(settings, make_engine(settings.database_url))
    try:
        upgrade(rt.engine, "0001")
        r = TestClient(create_app(rt)).get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["migrations"].startswith("at 0001")
    finally:
        rt.engine.dispose()
