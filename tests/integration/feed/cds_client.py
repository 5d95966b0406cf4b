"""A test CDS Hooks client (a fake EHR): signs hook requests with its own keys, builds hook bodies
and draft orders, and checks documents against the JSON Schemas of cds_schemas/. Shared by the CDS
Hooks API tests and the browser test that renders the cards as an EHR would."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import jwt

from monitor import cds
from tests.integration.feed.conftest_web import cohort, lab, med, relapse_case

SCHEMAS = Path(__file__).parent / "cds_schemas"
BASE = "http://testserver"
PV, OS = cds.PATIENT_VIEW, cds.ORDER_SELECT
ISS_FILE = "https://ehr-a.example.org"
ISS_URL = "https://ehr-b.example.org"


def schema(name: str) -> jsonschema.Validator:
    doc = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    cls = jsonschema.validators.validator_for(doc)
    cls.check_schema(doc)
    return cls(doc, format_checker=cls.FORMAT_CHECKER)


@dataclass
class Ehr:
    """A CDS client: signs hook requests with its key."""

    iss: str
    kid: str
    alg: str
    private: Any
    sub: str = "ehr-client"
    jtis: list[str] = field(default_factory=list)
    base: str = BASE  # the service's base URL, for the default aud

    def token(self, service: str, *, aud: str | None = None, exp_in: int = 300, jti: str | None = None,
              alg: str | None = None, key: Any = None, kid: str | None = None, iss: str | None = None) -> str:
        now = datetime.now(UTC)
        jti = jti or str(uuid.uuid4())
        self.jtis.append(jti)
        claims = {"iss": iss or self.iss, "sub": self.sub, "aud": aud or f"{self.base}/cds-services/{service}",
                  "exp": now + timedelta(seconds=exp_in), "iat": now, "jti": jti}
        return jwt.encode(claims, key if key is not None else self.private, algorithm=alg or self.alg,
                          headers={"kid": kid or self.kid, "typ": "JWT"})

    def headers(self, service: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(service, **kw)}"}


def hook_body(hook: str, patient: str, prefetch: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "fhirServer": "https://ehr.example.org/fhir",
            "context": {"userId": "Practitioner/dr-1", "patientId": patient, **context}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    schema("hook_request").validate(body)
    return body


def cyclosporine_order(oid: str, start: str, text: str = "cyclosporine 100 MG Oral Capsule") -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": oid, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/x"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "197553", "display": text}], "text": text},
            "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": start}}}}]}


def order_context(*orders: dict[str, Any]) -> dict[str, Any]:
    return {"selections": [f"MedicationRequest/{o['id']}" for o in orders],
            "draftOrders": {"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": o} for o in orders]}}


def relapse_with_low_egfr() -> list[dict[str, Any]]:
    """P-REL: a critical relapse muting titer_rising, and an eGFR of 52 (a cyclosporine order warns)."""
    return relapse_case("P-REL") + [lab("P-REL", "egfr", 52, "mL/min/1.73m2", "2025-08-10")]


def events() -> list[dict[str, Any]]:
    ev = cohort() + relapse_with_low_egfr()
    # P-GFR: kidney function impaired (eGFR 48), no cyclosporine yet; P-OK: eGFR 75
    ev += [{"type": "patient", "patient_id": "P-GFR", "birth_date": "1960-01-01", "sex": "female"},
           lab("P-GFR", "egfr", 48.4, "mL/min/1.73m2", "2025-08-15"),
           {"type": "patient", "patient_id": "P-OK", "birth_date": "1960-01-01", "sex": "female"},
           lab("P-OK", "egfr", 75, "mL/min/1.73m2", "2025-08-15"),
           # P-CIR: cyclosporine started on an eGFR of 45 (csa_renal_impairment's own alert)
           {"type": "patient", "patient_id": "P-CIR", "birth_date": "1955-03-03", "sex": "male"},
           lab("P-CIR", "egfr", 45, "mL/min/1.73m2", "2025-07-01"),
           med("P-CIR", "cyclosporine", "2025-07-10", dose=100, unit="mg", frequency="bid")]
    return ev


@contextmanager
def serve_static(files: dict[str, tuple[bytes, str]], seen: list[tuple[str, str | None]] | None = None) -> Iterator[str]:
    """Serve {path: (body, content type)} on 127.0.0.1 (a JWKS, the fake EHR's page or FHIR server);
    the base URL. `seen` collects (path, Authorization header) of each request."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if seen is not None:
                seen.append((self.path, self.headers.get("Authorization")))
            body, ctype = files.get(self.path.split("?")[0], (b"not found", "text/plain"))
            self.send_response(200 if self.path.split("?")[0] in files else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def public_jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.ECAlgorithm if alg == "ES384" else jwt.algorithms.RSAAlgorithm
    jwk = algo.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


