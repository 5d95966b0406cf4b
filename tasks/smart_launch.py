"""SMART App Launch v2, EHR launch: what imn-monitor asks of the EHR (feed/smart.py is the HTTP side).

    1. /smart/launch?iss&launch   the issuer must be configured (IMN_SMART_CLIENTS); its endpoints are
                                  read from {iss}/.well-known/smart-configuration (`discover`)
    2. redirect to the EHR         `authorize_url`: PKCE S256, state, aud=iss, SCOPES, launch
    3. /smart/callback?code&state  `exchange_code` at the token endpoint (public client + PKCE verifier);
                                  the token response names the `patient`; the id_token, if any, is
                                  verified against the issuer's JWKS (`verify_id_token`) and names
                                  the user (fhirUser); for an MRN mapping the Patient resource is read
                                  with the access token (`fetch_patient`)

Only configured issuers are contacted, and only at the endpoints their own discovery document names.
Those endpoints still pass tasks/url_safety's structural checks (absolute http(s), a host, no
user:password), may not downgrade an https issuer to http, and may not be link-local, unspecified or
multicast addresses (169.254.169.254 is the cloud metadata service, never an EHR); private and
loopback addresses are allowed, because an EHR normally lives inside the hospital network. Redirects
are not followed, every request has a timeout, and answers are read up to MAX_BODY bytes.

Every failure is a SmartError carrying the HTTP status and a sentence for the person in front of the
browser; it never repeats tokens or codes.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urljoin

import httpx
import jwt

from tasks import url_safety

SCOPES = "launch openid fhirUser patient/*.read"
MAX_BODY = 1024 * 1024  # discovery documents, token responses, JWKS and a Patient are far smaller
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]  # SMART requires RS256 support
CLOCK_SKEW_S = 60  # leeway on the id_token's exp/iat/nbf


class SmartError(Exception):
    """A launch that cannot go on: `status` for the page, `title` and `detail` for the person."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.status, self.title, self.detail = status, title, detail


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    issuer: str | None  # OpenID issuer (the id_token's iss)
    jwks_uri: str | None


def normalise_iss(iss: str) -> str:
    return iss.strip().rstrip("/")


def client_id_for(clients: dict[str, str], iss: str) -> str:
    """The configured client id of this issuer, or a 400 naming the unknown issuer."""
    found = clients.get(normalise_iss(iss))
    if found is None:
        raise SmartError(400, "This EHR is not registered",
                         f"imn-monitor has no SMART client registered for the issuer {iss!r}. An "
                         "administrator adds it to IMN_SMART_CLIENTS (a JSON map of issuer to client id).")
    return found


def _client(timeout_s: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                        headers={"User-Agent": "imn-monitor-smart"})


def check_endpoint(url: Any, iss: str, what: str) -> str:
    """An endpoint named by the issuer's discovery document, checked (see the module docstring)."""
    if not isinstance(url, str) or not url:
        raise SmartError(502, "The EHR's SMART configuration is incomplete", f"it names no {what}.")
    try:
        parsed = url_safety.check_url(url, allow_private=True)
    except url_safety.UnsafeUrl as exc:
        raise SmartError(502, "The EHR's SMART configuration is not usable", f"its {what}: {exc}.") from None
    if iss.startswith("https://") and parsed.scheme != "https":
        raise SmartError(502, "The EHR's SMART configuration is not usable",
                         f"its {what} is plain http while the EHR itself is https.")
    try:
        ip = ipaddress.ip_address(parsed.raw_host.decode("ascii").strip("[]"))
    except ValueError:
        ip = None
    if ip is not None and (ip.is_link_local or ip.is_unspecified or ip.is_multicast):
        raise SmartError(502, "The EHR's SMART configuration is not usable",
                         f"its {what} points at a {url_safety.refusal(ip)} address.")
    return url


def _read_json(resp: httpx.Response, what: str) -> Any:
    body = b""
    for chunk in resp.iter_bytes():
        body += chunk
        if len(body) > MAX_BODY:
            raise SmartError(502, "The EHR answered too much", f"its {what} is larger than {MAX_BODY} bytes.")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SmartError(502, "The EHR answered something unreadable", f"its {what} is not JSON.") from None


def _get_json(url: str, what: str, timeout_s: float, headers: dict[str, str] | None = None) -> Any:
    try:
        sent = {"Accept": "application/json", **(headers or {})}
        with _client(timeout_s) as c, c.stream("GET", url, headers=sent) as r:
            if r.status_code != 200:
                raise SmartError(502, "The EHR did not answer as expected",
                                 f"its {what} answered HTTP {r.status_code}.")
            return _read_json(r, what)
    except httpx.HTTPError as exc:
        raise SmartError(502, "The EHR cannot be reached",
                         f"fetching its {what} failed ({type(exc).__name__}). Try again in a moment."
                         ) from None


def discover(iss: str, timeout_s: float) -> Endpoints:
    """The EHR's endpoints from {iss}/.well-known/smart-configuration."""
    doc = _get_json(f"{normalise_iss(iss)}/.well-known/smart-configuration", "SMART configuration", timeout_s)
    if not isinstance(doc, dict):
        raise SmartError(502, "The EHR's SMART configuration is not usable", "it is not a JSON object.")
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartError(502, "The EHR's SMART configuration is not usable",
                         "it does not support PKCE with S256, which SMART App Launch v2 requires.")
    jwks = doc.get("jwks_uri")
    issuer = doc.get("issuer")
    return Endpoints(
        authorization=check_endpoint(doc.get("authorization_endpoint"), iss, "authorization endpoint"),
        token=check_endpoint(doc.get("token_endpoint"), iss, "token endpoint"),
        issuer=issuer if isinstance(issuer, str) and issuer else None,
        jwks_uri=check_endpoint(jwks, iss, "JWKS URL") if jwks is not None else None)


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): a verifier of 43..128 unreserved characters, RFC 7636."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
    return verifier, s256(verifier)


def authorize_url(endpoints: Endpoints, *, client_id: str, redirect_uri: str, iss: str, launch: str,
                  state: str, code_challenge: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "launch": launch,
              "scope": SCOPES, "state": state, "aud": iss, "code_challenge": code_challenge,
              "code_challenge_method": "S256"}
    sep = "&" if "?" in endpoints.authorization else "?"
    return endpoints.authorization + sep + urlencode(params, quote_via=quote)


def exchange_code(*, token_endpoint: str, code: str, client_id: str, redirect_uri: str, code_verifier: str,
                  timeout_s: float) -> dict[str, Any]:
    """The token response of an authorization code (public client: client_id and the PKCE verifier)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "code_verifier": code_verifier}
    try:
        with _client(timeout_s) as c, c.stream("POST", token_endpoint, data=form,
                                               headers={"Accept": "application/json"}) as r:
            status = r.status_code
            body = _read_json(r, "token response") if status in (200, 400, 401) else None
    except httpx.HTTPError as exc:
        raise SmartError(502, "The EHR's sign-in service cannot be reached",
                         f"exchanging the authorization code failed ({type(exc).__name__}). "
                         "Launch imn-monitor again from the EHR.") from None
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else None
        shown = f" ({error})" if isinstance(error, str) and error.isascii() and len(error) < 60 else ""
        raise SmartError(400 if status in (400, 401) else 502, "The EHR refused the sign-in",
                         f"its token endpoint answered HTTP {status}{shown}. Launch imn-monitor again "
                         "from the EHR.")
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise SmartError(502, "The EHR's sign-in answer is not usable",
                         "the token response has no access token.")
    return body


def verify_id_token(id_token: str, *, jwks_uri: str | None, issuer: str, client_id: str,
                    timeout_s: float) -> dict[str, Any]:
    """The id_token's claims, once its signature (the issuer's JWKS, the key named by `kid`), issuer,
    audience (this client) and lifetime check out."""
    if not jwks_uri:
        raise SmartError(502, "The EHR's identity token cannot be checked",
                         "its SMART configuration names no jwks_uri.")
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise SmartError(502, "The EHR's identity token is not valid", "it is not a JWT.") from None
    jwks = _get_json(jwks_uri, "JWKS", timeout_s)
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys if isinstance(jwks, dict) else []
    except jwt.PyJWTError:
        keys = []
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.key_id == kid]
    if not candidates:
        raise SmartError(502, "The EHR's identity token cannot be checked",
                         "no key of its JWKS matches the token.")
    last: Exception | None = None
    for key in candidates:
        try:
            return jwt.decode(id_token, key=key, algorithms=ID_TOKEN_ALGORITHMS, audience=client_id,
                              issuer=issuer, leeway=CLOCK_SKEW_S,
                              options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.InvalidSignatureError as exc:
            last = exc
        except jwt.PyJWTError as exc:
            raise SmartError(502, "The EHR's identity token is not valid", f"{exc}.") from None
    raise SmartError(502, "The EHR's identity token is not valid", f"{last}.")


def user_name(claims: dict[str, Any], iss: str) -> str:
    """Who the user is, for the audit trail: the fhirUser claim as an absolute URL (a relative
    reference is resolved against the FHIR base), else the issuer's subject."""
    fhir_user = claims.get("fhirUser")
    if isinstance(fhir_user, str) and fhir_user.strip():
        name = urljoin(normalise_iss(iss) + "/", fhir_user.strip())
    else:
        name = f"{claims.get('iss')}#{claims.get('sub')}"
    return name[:200]


def fetch_patient(iss: str, patient_id: str, access_token: str, timeout_s: float) -> dict[str, Any] | None:
    """The launch patient's FHIR Patient resource (for an MRN mapping); None when the EHR will not
    give it (the mapping then falls back to the FHIR id)."""
    url = f"{normalise_iss(iss)}/Patient/{quote(patient_id, safe='')}"
    try:
        found = _get_json(url, "Patient resource", timeout_s,
                          headers={"Authorization": f"Bearer {access_token}",
                                   "Accept": "application/fhir+json"})
    except SmartError:
        return None
    return found if isinstance(found, dict) and found.get("resourceType") == "Patient" else None
