"""Ingestion over HTTP: 202 once stored, then processed (embedded: in the background), with the
quarantined parts and their reasons on GET /inbox/{id}."""

from __future__ import annotations

from .conftest import EXAMPLES, Feed

BODY = (b'{"type":"lab","patient_id":"H1","analyte":"serum_albumin","value":21,"unit":"g/L","effective_at":"2025-05-02"}\n'
        b'{"type":"lab","patient_id":"H1","analyte":"serum_albumin","value":21,"unit":"parsecs","effective_at":"2025-05-03"}\n'
        b'this is not json\n')


def test_ndjson_is_accepted_then_processed_with_quarantine_reasons(feed: Feed) -> None:
    r = feed.client.post("/ingest/ndjson", content=BODY, headers={**feed.auth("ingest"),
                                                                   "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    (inbox_id,) = r.json()["inbox_ids"]
    assert r.headers["location"] == f"/inbox/{inbox_id}"
    status = feed.client.get(f"/inbox/{inbox_id}", headers=feed.auth("ingest")).json()
    assert status["state"] == "processed"
    assert status["counts"]["accepted"] == 1 and status["counts"]["quarantined"] == 2
    q = status["quarantined"]
    assert [x["line"] for x in q] == [2, 3]
    assert "parsecs" in q[0]["value"] or "parsecs" in q[0]["reason"]
    assert all(x["reason"] for x in q)
    # the same bytes again: the same inbox row, not new, nothing processed twice
    again = feed.client.post("/ingest/ndjson", content=BODY, headers={**feed.auth("ingest"),
                                                                       "Content-Type": "application/x-ndjson"})
    assert again.status_code == 202 and again.json()["batches"][0] == {
        "inbox_id": inbox_id, "new": False, "status_url": f"/inbox/{inbox_id}"}


def test_fhir_bundle_and_hl7_message(feed: Feed) -> None:
    for path, ctype, data in [("/ingest/fhir", "application/fhir+json", (EXAMPLES / "bundle_r4.json").read_bytes()),
                              ("/ingest/hl7v2", "text/plain", (EXAMPLES / "oru_r01_v251.hl7").read_bytes())]:
        r = feed.client.post(path, content=data, headers={**feed.auth("ingest"), "Content-Type": ctype})
        assert r.status_code == 202, r.text
        st = feed.client.get(r.headers["location"], headers=feed.auth("ingest")).json()
        assert st["state"] == "processed" and st["counts"]["accepted"] >= 1, st


def test_unusable_payload_is_stored_and_quarantined_not_refused(feed: Feed) -> None:
    r = feed.client.post("/ingest/fhir", content=b'{"resourceType": "Nonsense"}',
                         headers={**feed.auth("ingest"), "Content-Type": "application/fhir+json"})
    assert r.status_code == 202
    st = feed.client.get(r.headers["location"], headers=feed.auth("ingest")).json()
    assert st["state"] == "processed" and st["quarantined"] and st["quarantined"][0]["reason"]


def test_wrong_media_type_empty_body_and_unknown_inbox(feed: Feed) -> None:
    h = feed.auth("ingest")
    assert feed.client.post("/ingest/ndjson", content=b"{}", headers={**h, "Content-Type": "text/csv"}).status_code == 415
    assert feed.client.post("/ingest/hl7v2", content=b"  \n", headers={**h, "Content-Type": "text/plain"}).status_code == 400
    assert feed.client.get("/inbox/987654", headers=h).status_code == 404


def test_the_openapi_descriptions_name_what_each_ingest_route_reads(feed: Feed) -> None:
    """/ingest/fhir reads the Observations of a DiagnosticReport (issue 12, item 7): its description
    said Observation, MedicationAdministration/Statement and Patient only. And no description points
    at a file outside the repository."""
    spec = feed.client.get("/openapi.json")
    assert spec.status_code == 200
    fhir = spec.json()["paths"]["/ingest/fhir"]["post"]["description"]
    for resource in ("Bundle", "Observation", "DiagnosticReport", "Patient", "MedicationAdministration"):
        assert resource in fhir, fhir
    assert "design.md" not in spec.text
