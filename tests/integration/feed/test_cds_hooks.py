"""CDS Hooks: a test EHR (the CDS client) sends signed hook requests to the feed and reads the cards.

Two trusted issuers: one whose JWKS is a file (ES384, P-384 key), one whose JWKS is served over HTTP
on 127.0.0.1 (RS384). Every document is validated against JSON Schemas of the specification's shapes
(cds_schemas/), and the cards are compared with the open alerts stored for the patient.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from feed.app import create_app
from monitor import cds, display
from monitor.rules import csa_renal_impairment
from storage import views
from storage.db import session, upgrade
from storage.models import AlertAuditRow
from tasks import runtime
from tasks.settings import Settings
from tests.integration.feed.cds_client import (
    BASE,
    ISS_FILE,
    ISS_URL,
    OS,
    PV,
    Ehr,
    cyclosporine_order,
    events,
    hook_body,
    order_context,
    public_jwk,
    schema,
    serve_static,
)
from tests.integration.feed.conftest_web import ingest


@dataclass
class World:
    rt: runtime.Runtime
    client: TestClient
    file_ehr: Ehr
    url_ehr: Ehr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cds")
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_ec = ec.generate_private_key(ec.SECP384R1())
    (tmp / "jwks-a.json").write_text(json.dumps({"keys": [public_jwk(ec_key, "a-1", "ES384"),
                                                          public_jwk(other_ec, "a-2", "ES384")]}))
    jwks_b = json.dumps({"keys": [public_jwk(rsa_key, "b-1", "RS384")]}).encode()
    with serve_static({"/jwks.json": (jwks_b, "application/json")}) as jwks_base:
        trusted = {ISS_FILE: str(tmp / "jwks-a.json"), ISS_URL: f"{jwks_base}/jwks.json"}
        rt = runtime.init(Settings(database_url=f"sqlite:///{tmp / 'imn.db'}", broker_url=None, webhook_url=None,
                                   cds_trusted_issuers=trusted, _env_file=None))
        upgrade(rt.engine)
        ingest(rt, events())
        with TestClient(create_app(rt)) as client:
            yield World(rt, client, Ehr(ISS_FILE, "a-1", "ES384", ec_key), Ehr(ISS_URL, "b-1", "RS384", rsa_key))
        runtime.reset()


def open_alerts(rt: runtime.Runtime, pid: str) -> list[dict[str, Any]]:
    with session(rt.engine, write=False) as s:
        return views.list_alerts(s, patient_id=pid, status="open")


def call(w: World, service: str, body: dict[str, Any], ehr: Ehr | None = None, **token: Any) -> Any:
    return w.client.post(f"/cds-services/{service}", json=body, headers=(ehr or w.file_ehr).headers(service, **token))


# ---------------------------------------------------------------------------------------- discovery


def test_discovery_lists_patient_view_and_order_select(world: World) -> None:
    r = world.client.get("/cds-services")
    assert r.status_code == 200
    schema("discovery").validate(r.json())
    services = {s["id"]: s for s in r.json()["services"]}
    assert services[PV]["hook"] == "patient-view" and services[OS]["hook"] == "order-select"
    assert services[PV]["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "Observation?patient={{context.patientId}}" in services[PV]["prefetch"]["observations"]


# ------------------------------------------------------------------------------------- patient-view


def test_patient_view_cards_are_the_open_alerts_and_inhibited_ones_are_folded_in(world: World) -> None:
    r = call(world, PV, hook_body("patient-view", "P-REL"))
    assert r.status_code == 200, r.text
    schema("response").validate(r.json())
    cards = r.json()["cards"]
    stored = open_alerts(world.rt, "P-REL")
    inhibited = [a for a in stored if a["inhibited_by"]]
    assert inhibited, "the relapse case must have an inhibited titer_rising alert"
    shown = {a["id"] for a in stored if not a["inhibited_by"]}
    assert {cds.alert_id_of_card(c["uuid"]) for c in cards} == shown
    by_id = {a["id"]: a for a in stored}
    for card in cards:
        alert = by_id[cds.alert_id_of_card(card["uuid"])]
        assert card["indicator"] == alert["severity"]
        assert len(card["summary"]) < 140
        assert card["links"] == [{"label": "Open in imn-monitor", "url": f"{BASE}/ui/patients/P-REL",
                                  "type": "absolute"}]
        assert card["source"]["label"].startswith("imn-monitor")
    for muted in inhibited:
        holder = next(c for c in cards if cds.alert_id_of_card(c["uuid"]) == muted["inhibited_by"]["id"])
        assert f"alert {muted['id']}" in holder["detail"] and "muted by this alert" in holder["detail"]


def test_evidence_values_are_shown_at_lab_precision(world: World) -> None:
    cards = call(world, PV, hook_body("patient-view", "P-CIR")).json()["cards"]
    alert = next(a for a in open_alerts(world.rt, "P-CIR") if a["rule"] == "csa_renal_impairment")
    card = next(c for c in cards if cds.alert_id_of_card(c["uuid"]) == alert["id"])
    egfr = next(e for e in alert["evidence"] if e.get("analyte") == "egfr")
    cell = f"{display.evidence_number(egfr)} {display.evidence_unit(egfr)}"
    assert f"| {cell} |" in card["detail"]
    assert card["source"]["url"].startswith("https://")  # the guideline link (KDIGO 2012 CKD)
    assert card["indicator"] == "warning"


def test_unknown_patient_gets_no_cards(world: World) -> None:
    r = call(world, PV, hook_body("patient-view", "not-a-patient"))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_rs384_issuer_with_jwks_over_http(world: World) -> None:
    r = call(world, PV, hook_body("patient-view", "P-ALB"), ehr=world.url_ehr)
    assert r.status_code == 200, r.text
    assert [c["indicator"] for c in r.json()["cards"]] == ["critical"]


def test_mrn_mapping_and_smart_links(world: World) -> None:
    settings = world.rt.settings.model_copy(update={"ehr_mrn_system": "urn:oid:1.2.3", "public_url": "https://imn.example.org",
                                                    "smart_clients": {"https://ehr.example.org/fhir": "imn"}})
    rt = runtime.Runtime(settings, world.rt.engine)
    with TestClient(create_app(rt)) as client:
        aud = "https://imn.example.org/cds-services/" + PV
        patient = {"resourceType": "Patient", "id": "ehr-991", "identifier": [{"system": "urn:oid:1.2.3", "value": "P-ALB"}]}
        r = client.post(f"/cds-services/{PV}", json=hook_body("patient-view", "ehr-991", {"patient": patient}),
                        headers=world.file_ehr.headers(PV, aud=aud))
        assert r.status_code == 200, r.text
        cards = r.json()["cards"]
        assert len(cards) == 1
        assert cards[0]["links"][0] == {"label": "Open in imn-monitor", "url": "https://imn.example.org/smart/launch",
                                        "type": "smart"}
        # with the MRN system configured the FHIR id alone maps to nobody (no prefetch: no cards)
        r = client.post(f"/cds-services/{PV}", json=hook_body("patient-view", "P-ALB"),
                        headers=world.file_ehr.headers(PV, aud=aud))
        assert r.json() == {"cards": []}
        # the request's own base URL is not the audience once IMN_PUBLIC_URL is set
        r = client.post(f"/cds-services/{PV}", json=hook_body("patient-view", "P-ALB"), headers=world.file_ehr.headers(PV))
        assert r.status_code == 401


def test_mrn_mapping_reads_the_patient_from_the_ehr_without_prefetch(world: World) -> None:
    settings = world.rt.settings.model_copy(update={"ehr_mrn_system": "urn:oid:1.2.3"})
    patient = {"resourceType": "Patient", "id": "ehr-555", "identifier": [{"system": "urn:oid:1.2.3", "value": "P-ALB"}]}
    seen: list[tuple[str, str | None]] = []
    with TestClient(create_app(runtime.Runtime(settings, world.rt.engine))) as client, \
            serve_static({"/fhir/Patient/ehr-555": (json.dumps(patient).encode(), "application/fhir+json")},
                         seen) as fhir:
        body = hook_body("patient-view", "ehr-555")
        body["fhirServer"] = f"{fhir}/fhir"
        body["fhirAuthorization"] = {"access_token": "tok-123", "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/Patient.read", "subject": "imn-monitor"}
        schema("hook_request").validate(body)
        r = client.post(f"/cds-services/{PV}", json=body, headers=world.file_ehr.headers(PV))
        assert r.status_code == 200 and len(r.json()["cards"]) == 1
        assert seen == [("/fhir/Patient/ehr-555", "Bearer tok-123")]
        # no token to read it with: nothing is read, nobody is resolved
        del body["fhirAuthorization"]
        r = client.post(f"/cds-services/{PV}", json=body, headers=world.file_ehr.headers(PV))
        assert r.json() == {"cards": []} and len(seen) == 1
        # the EHR's FHIR server does not answer: still no error
        body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "expires_in": 1, "scope": "s",
                                     "subject": "s"}
        body["fhirServer"] = "http://127.0.0.1:9/fhir"
        r = client.post(f"/cds-services/{PV}", json=body, headers=world.file_ehr.headers(PV))
        assert r.status_code == 200 and r.json() == {"cards": []}


# ------------------------------------------------------------------------------------- order-select


def test_order_select_warns_for_cyclosporine_with_low_egfr(world: World) -> None:
    order = cyclosporine_order("mr-1", "2025-09-05")
    r = call(world, OS, hook_body("order-select", "P-GFR", **order_context(order)))
    assert r.status_code == 200, r.text
    schema("response").validate(r.json())
    [card] = r.json()["cards"]
    assert card["indicator"] == "warning"
    assert "48.4" not in card["summary"] and "48 mL/min/1.73 m\u00b2" in card["summary"]  # eGFR: whole numbers
    assert "MedicationRequest/mr-1" in card["detail"]
    assert cds.alert_id_of_card(card["uuid"]) is None


@pytest.mark.parametrize(("patient", "order"), [
    ("P-OK", cyclosporine_order("mr-2", "2025-09-05")),  # eGFR 75
    ("P-GFR", cyclosporine_order("mr-3", "2026-03-01")),  # no eGFR in the 90 days before the start
    ("P-GFR", cyclosporine_order("mr-4", "2025-09-05", text="tacrolimus 1 MG Oral Capsule")),
    ("nobody", cyclosporine_order("mr-5", "2025-09-05")),
])
def test_order_select_quiet_otherwise(world: World, patient: str, order: dict[str, Any]) -> None:
    r = call(world, OS, hook_body("order-select", patient, **order_context(order)))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_order_select_asks_the_rule_itself(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order check is csa_renal_impairment.renal_impairment_at, not a copy of its logic."""
    asked: list[Any] = []

    def never(egfr: Any, start: Any, arrays: Any = None) -> None:
        asked.append(start)

    monkeypatch.setattr(csa_renal_impairment, "renal_impairment_at", never)
    order = cyclosporine_order("mr-6", "2025-09-05")
    r = call(world, OS, hook_body("order-select", "P-GFR", **order_context(order)))
    assert r.json() == {"cards": []} and [d.isoformat() for d in asked] == ["2025-09-05"]


# ------------------------------------------------------------------------------------------ security


def _refused(r: Any, why: str = "") -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert why in r.json()["detail"]


def test_refusals(world: World) -> None:
    body = hook_body("patient-view", "P-ALB")
    ehr = world.file_ehr
    url = f"/cds-services/{PV}"
    post = world.client.post
    _refused(post(url, json=body), "bearer is required")
    _refused(post(url, json=body, headers=ehr.headers(PV, exp_in=-120)), "expired")
    _refused(post(url, json=body, headers=ehr.headers(PV, aud=f"{BASE}/cds-services/{OS}")), "aud")
    _refused(post(url, json=body, headers=ehr.headers(PV, aud="https://elsewhere.example.org/cds-services/" + PV)), "aud")
    _refused(post(url, json=body, headers=ehr.headers(PV, iss="https://rogue.example.org")), "issuer 'https://rogue.example.org' is not trusted")
    _refused(post(url, json=body, headers=ehr.headers(PV, kid="nope")), "kid")
    _refused(post(url, json=body, headers=ehr.headers(PV, kid="a-2")), "InvalidSignature")  # another key of the issuer
    rogue = ec.generate_private_key(ec.SECP384R1())
    _refused(post(url, json=body, headers=ehr.headers(PV, key=rogue)), "InvalidSignature")  # someone else's key
    _refused(post(url, json=body, headers=ehr.headers(PV, alg="ES256", key=ec.generate_private_key(ec.SECP256R1()))),
             "ES384 or RS384")
    # alg none, and HS256 keyed with the issuer's public key (the algorithm-confusion attack)
    none = jwt.encode({"iss": ehr.iss, "aud": f"{BASE}{url}", "exp": datetime.now(UTC) + timedelta(minutes=5),
                       "iat": datetime.now(UTC), "jti": str(uuid.uuid4())}, None, algorithm="none",
                      headers={"kid": ehr.kid})
    _refused(post(url, json=body, headers={"Authorization": f"Bearer {none}"}), "ES384 or RS384")
    pem = ehr.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    hs = jwt.api_jws.PyJWS()
    hs._algorithms["HS256"].prepare_key = lambda key: key  # PyJWT itself refuses PEM keys for HMAC
    claims = json.dumps({"iss": ehr.iss, "aud": f"{BASE}{url}", "iat": int(datetime.now(UTC).timestamp()),
                         "exp": int(datetime.now(UTC).timestamp()) + 300, "jti": str(uuid.uuid4())}).encode()
    hs256 = hs.encode(claims, pem, algorithm="HS256", headers={"kid": ehr.kid})
    _refused(post(url, json=body, headers={"Authorization": f"Bearer {hs256}"}), "ES384 or RS384")
    _refused(post(url, json=body, headers={"Authorization": "Bearer not.a.jwt"}), "not a JWT")


def test_replayed_jti_is_refused(world: World) -> None:
    body = hook_body("patient-view", "P-ALB")
    headers = world.file_ehr.headers(PV)
    assert world.client.post(f"/cds-services/{PV}", json=body, headers=headers).status_code == 200
    _refused(world.client.post(f"/cds-services/{PV}", json=body, headers=headers), "jti was used before")
    # the same jti from the other issuer is another token
    jti = world.file_ehr.jtis[-1]
    ok = world.client.post(f"/cds-services/{PV}", json=body, headers=world.url_ehr.headers(PV, jti=jti))
    assert ok.status_code == 200


def test_bad_requests_are_400_unknown_services_404(world: World) -> None:
    r = call(world, PV, {"hook": "order-select", "hookInstance": "x", "context": {"patientId": "P-ALB"}})
    assert r.status_code == 400 and "patient-view" in r.json()["detail"]
    r = call(world, PV, {"hook": "patient-view", "hookInstance": "x", "context": {}})
    assert r.status_code == 400 and "patientId" in r.json()["detail"]
    r = world.client.post("/cds-services/nope", json={}, headers=world.file_ehr.headers("nope"))
    assert r.status_code == 404


def test_cors_preflight(world: World) -> None:
    r = world.client.options(f"/cds-services/{PV}", headers={"Origin": "https://sandbox.cds-hooks.org",
                                                             "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert world.client.get("/cds-services").headers["access-control-allow-origin"] == "*"


# ------------------------------------------------------------------------------------------ feedback


def _audit(rt: runtime.Runtime, alert_id: int) -> list[AlertAuditRow]:
    with session(rt.engine, write=False) as s:
        return list(s.exec(select(AlertAuditRow).where(AlertAuditRow.alert_id == alert_id)  # type: ignore[call-overload]
                           .order_by(AlertAuditRow.id)).scalars())


def test_feedback_accepted_and_overridden_go_to_the_audit_trail(world: World) -> None:
    cards = call(world, PV, hook_body("patient-view", "P-CSA")).json()["cards"]
    trough = next(a for a in open_alerts(world.rt, "P-CSA") if a["rule"] == "csa_trough_low")
    card = next(c for c in cards if cds.alert_id_of_card(c["uuid"]) == trough["id"])
    alert_id = trough["id"]
    now = datetime.now(UTC).isoformat()
    accepted = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": now}]}
    schema("feedback").validate(accepted)
    url = f"/cds-services/{PV}/feedback"
    _refused(world.client.post(url, json=accepted))
    r = world.client.post(url, json=accepted, headers=world.file_ehr.headers(PV))
    assert r.status_code == 200 and r.json() == {"accepted": 1, "overridden": 0, "ignored": 0}
    reason = card["overrideReasons"][0]
    overridden = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": now,
                                "overrideReason": {"reason": reason, "userComment": "trough rechecked tomorrow"}}]}
    schema("feedback").validate(overridden)
    r = world.client.post(url, json=overridden, headers=world.file_ehr.headers(PV))
    assert r.status_code == 200 and r.json()["overridden"] == 1
    trail = _audit(world.rt, alert_id)[-2:]
    assert [a.action for a in trail] == ["commented", "acknowledged"]
    assert all(a.actor == "cds-hooks:ehr-client" for a in trail)
    assert trail[1].comment == f"Card overridden in the EHR: {reason['display']}; trough rechecked tomorrow"
    [alert] = [a for a in open_alerts(world.rt, "P-CSA") if a["id"] == alert_id]
    assert alert["status"] == "acknowledged" and alert["acknowledged_by"] == "cds-hooks:ehr-client"
    # overridden again: already acknowledged, the reason is still kept (as a comment)
    r = world.client.post(url, json=overridden, headers=world.file_ehr.headers(PV))
    assert r.json()["overridden"] == 1 and _audit(world.rt, alert_id)[-1].action == "commented"
    # a card that is not an alert's (an order card), and junk, are counted as ignored, not errors
    other = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": now}]}
    assert world.client.post(url, json=other, headers=world.file_ehr.headers(PV)).json()["ignored"] == 1
    bad = world.client.post(url, json={"feedback": [{"outcome": "maybe"}]}, headers=world.file_ehr.headers(PV))
    assert bad.status_code == 400
