"""A fake EHR for the SMART App Launch tests: the EHR's launch page, a SMART authorization server
(discovery, authorize with a consent page, token endpoint checking PKCE, JWKS, signed id_tokens) and a
FHIR Patient endpoint, served by uvicorn in a thread on 127.0.0.1.

It is reached as http://localhost:<port> while imn-monitor runs at http://127.0.0.1:<port>: two
different sites for the browser, as an EHR and imn-monitor are, so the SameSite rules of the session
cookie are exercised for real. What it saw is kept (`token_requests`), and switches make it misbehave
(`token_status`, `issue_id_token`, `deny`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

CLIENT_ID = "imn-monitor"
KID = "fake-ehr-key-1"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.999.1"


@dataclass
class FakeEhr:
    base: str = ""  # http://localhost:<port>, set once serving
    app_base: str = ""  # where imn-monitor runs (for the EHR's launch link)
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    # FHIR Patient id -> the Patient resource the FHIR endpoint serves
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    launches: dict[str, str] = field(default_factory=dict)  # launch id -> FHIR patient id
    requests: dict[str, dict[str, str]] = field(default_factory=dict)  # pending authorize requests
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # authorization code -> its request
    token_requests: list[dict[str, str]] = field(default_factory=list)
    auto_approve: bool = False  # skip the consent page (the non-browser tests)
    deny: bool = False  # the user clicks "Deny" (auto_approve mode)
    token_status: int = 200  # anything else: the token endpoint fails with it
    issue_id_token: bool = True
    id_token_key: Any = None  # sign id_tokens with another key than the JWKS's (a forgery)
    token_endpoint: str | None = None  # announce another token endpoint (one that is down)
    user: str = "Practitioner/dr-ehr"

    @property
    def iss(self) -> str:
        return self.base + "/fhir"

    def launch_url(self, fhir_patient_id: str) -> str:
        """The URL the EHR opens for imn-monitor from this patient's chart."""
        launch = secrets.token_urlsafe(12)
        self.launches[launch] = fhir_patient_id
        return f"{self.app_base}/smart/launch?" + urlencode({"iss": self.iss, "launch": launch})

    def sign(self, claims: dict[str, Any], key: Any = None, kid: str = KID) -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def id_token(self) -> str:
        now = int(time.time())
        return self.sign({"iss": self.iss, "sub": "user-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                          "fhirUser": self.user}, key=self.id_token_key)


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def build_app(ehr: FakeEhr) -> FastAPI:
    app = FastAPI()

    @app.get("/fhir/.well-known/smart-configuration")
    def smart_configuration() -> dict[str, Any]:
        return {"issuer": ehr.iss, "jwks_uri": ehr.base + "/jwks",
                "authorization_endpoint": ehr.base + "/auth/authorize",
                "token_endpoint": ehr.token_endpoint or ehr.base + "/auth/token",
                "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "fhirUser", "launch", "patient/*.read"],
                "capabilities": ["launch-ehr", "client-public", "sso-openid-connect", "context-ehr-patient",
                                 "permission-v2"]}

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ehr.key.public_key()))
        return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}

    @app.get("/ehr/chart/{fhir_patient_id}", response_class=HTMLResponse)
    def chart(fhir_patient_id: str) -> str:
        url = html.escape(ehr.launch_url(fhir_patient_id))
        return (f"<html><body><h1>Fake EHR: chart of {html.escape(fhir_patient_id)}</h1>"
                f"<a id='launch' href='{url}'>Open imn-monitor</a></body></html>")

    @app.get("/auth/authorize", response_model=None)
    def authorize(request: Request) -> Response:
        q = dict(request.query_params)
        problems = [name for name, ok in [
            ("response_type", q.get("response_type") == "code"),
            ("client_id", q.get("client_id") == CLIENT_ID),
            ("aud", q.get("aud") == ehr.iss), ("launch", q.get("launch") in ehr.launches),
            ("code_challenge_method", q.get("code_challenge_method") == "S256"),
            ("code_challenge", bool(q.get("code_challenge"))), ("state", bool(q.get("state"))),
            ("scope", {"launch", "openid", "fhirUser", "patient/*.read"} <= set(q.get("scope", "").split())),
            ("redirect_uri", q.get("redirect_uri") == ehr.app_base + "/smart/callback")] if not ok]
        if problems:
            return JSONResponse({"error": "invalid_request", "bad": problems}, status_code=400)
        rid = secrets.token_urlsafe(8)
        ehr.requests[rid] = q
        if ehr.auto_approve:
            return _decide(rid, "deny" if ehr.deny else "allow")
        return HTMLResponse(
            f"<html><body><h1>Fake EHR sign-in</h1><p>imn-monitor asks for {html.escape(q['scope'])}</p>"
            f"<form method='post' action='/auth/decide'><input type='hidden' name='rid' value='{rid}'>"
            "<button name='decision' value='allow' id='allow'>Allow</button>"
            "<button name='decision' value='deny' id='deny'>Deny</button></form></body></html>")

    def _decide(rid: str, decision: str) -> Response:
        q = ehr.requests.pop(rid)
        if decision != "allow":
            params = {"error": "access_denied", "error_description": "The user denied access",
                      "state": q["state"]}
        else:
            code = secrets.token_urlsafe(16)
            ehr.codes[code] = q
            params = {"code": code, "state": q["state"]}
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode(params), status_code=302)

    @app.post("/auth/decide", response_model=None)
    def decide(rid: str = Form(...), decision: str = Form(...)) -> Response:
        return _decide(rid, decision)

    @app.post("/auth/token", response_model=None)
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        ehr.token_requests.append(form)
        if ehr.token_status != 200:
            return JSONResponse({"error": "server_error"}, status_code=ehr.token_status)
        q = ehr.codes.pop(form.get("code", ""), None)  # a code is good once
        if q is None or form.get("grant_type") != "authorization_code" or form.get("client_id") != CLIENT_ID \
                or form.get("redirect_uri") != q["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if _challenge(form.get("code_verifier", "")) != q["code_challenge"]:  # PKCE S256 (RFC 7636 §4.6)
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verification failed"},
                                status_code=400)
        patient = ehr.launches[q["launch"]]
        body: dict[str, Any] = {"access_token": "at-" + secrets.token_urlsafe(16), "token_type": "Bearer",
                                "expires_in": 3600, "scope": q["scope"], "patient": patient}
        if ehr.issue_id_token:
            body["id_token"] = ehr.id_token()
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/fhir/Patient/{fhir_patient_id}", response_model=None)
    def patient(fhir_patient_id: str, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer at-"):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        found = ehr.patients.get(fhir_patient_id)
        if found is None:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        return JSONResponse(found, media_type="application/fhir+json")

    return app


@contextmanager
def serve(app: Any, host: str = "127.0.0.1") -> Iterator[int]:
    """An ASGI app on uvicorn in a thread on a free port of `host`; yields the port."""
    from tests.integration.feed.conftest import serve as serve_url

    with serve_url(app, host=host) as base:
        yield int(base.rsplit(":", 1)[1])


@contextmanager
def running(app_base: str = "") -> Iterator[FakeEhr]:
    ehr = FakeEhr(app_base=app_base)
    with serve(build_app(ehr)) as port:
        ehr.base = f"http://localhost:{port}"
        yield ehr
