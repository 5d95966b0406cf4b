"""SMART App Launch v2 (EHR launch): the clinician opens imn-monitor from the patient's chart in the EHR
and lands on that patient's page, signed in, without an API key.

    GET /smart/launch?iss=…&launch=…   from the EHR: discover its endpoints, redirect to its
                                        authorization endpoint (PKCE S256, state, aud=iss)
    GET /smart/callback?code=…&state=…  from the EHR's authorization server: exchange the code, map the
                                        patient, open a page session, show the patient page

The protocol side is tasks/smart_launch.py; the pending launch (PKCE verifier, token endpoint, …) is
kept on the server, found by the hash of `state`, used once and expiring after
IMN_SMART_LAUNCH_TTL_S (storage/smart_launches.py). The launch also sets a cookie of its own
(`imn_smart_launch`: a random value, no secret of the protocol, HttpOnly, SameSite=Lax so that it
comes back on the EHR's top-level redirect, Path=/smart/, expiring with the launch) whose hash the
launch record keeps: a callback URL carried to another browser opens no session there (RFC 6749
§10.12, login CSRF).

The session: the same server-side session as the page's key login (storage/user_sessions.py, cookie
`imn_session`, the same lifetimes), with auth_method "smart", role clinician and the launch patient
as its scope (feed/web.py): the EHR vouches for a clinical user looking at one patient, not for
administering imn-monitor or browsing every patient. The actor in the alert audit trail is the user's
fhirUser (from the verified id_token). A launch whose EHR does not identify the user (no id_token) is
refused: actions on alerts must name who took them.

The session cookie is SameSite=Strict, and a browser does not send it on the rest of a redirect chain
that began on the EHR's site. So the callback answers a small page of imn-monitor's own that moves on
to the patient page (meta refresh and a link): that navigation starts on imn-monitor's own site and
carries the cookie. imn-monitor refuses to be framed (CSP frame-ancestors 'none'), so EHRs open it in
a new window or tab, not embedded.

Every failure answers an HTML page saying what happened and what to do (the person is in a browser),
with a 4xx/5xx status, never a 500.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from feed.auth import CLINICIAN
from feed.web import COOKIE, _page
from storage import smart_launches, user_sessions
from storage.db import session
from tasks import smart_launch as smart
from tasks.ehr_identity import resolve_patient
from tasks.smart_launch import SmartError

log = logging.getLogger("imn.feed.smart")
router = APIRouter(include_in_schema=False)
LAUNCH_COOKIE = "imn_smart_launch"
LAUNCH_COOKIE_PATH = "/smart/"
MAX_PARAM = 2000  # iss, launch, code, state: far longer than any EHR sends


def _rt(request: Request) -> Any:
    return request.app.state.runtime


def public_base(request: Request) -> str:
    """IMN_PUBLIC_URL, or the request's own base URL (scheme and host as the trusted proxy says)."""
    configured = _rt(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def error_page(request: Request, err: SmartError) -> HTMLResponse:
    context = {"sess": None, "title": err.title, "detail": err.detail}
    return _page(request, "smart_error.html", context, err.status)


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > MAX_PARAM or not value.isprintable():
        raise SmartError(400, "This launch link is not valid", f"its {name} parameter is malformed.")
    return value


@router.get("/smart/launch", response_class=HTMLResponse)
def launch(request: Request) -> Response:
    try:
        return _launch(request)
    except SmartError as err:
        log.info("SMART launch refused: %s", err.title)
        return error_page(request, err)


def _launch(request: Request) -> Response:
    st = _rt(request).settings
    iss, launch_id = _param(request, "iss"), _param(request, "launch")
    if iss is None or launch_id is None:
        raise SmartError(400, "This launch link is incomplete",
                         "an EHR launch names the EHR (iss) and the launch context (launch). Open "
                         "imn-monitor from the patient's chart in the EHR.")
    client_id = smart.client_id_for(st.smart_clients, iss)
    iss = smart.normalise_iss(iss)
    endpoints = smart.discover(iss, st.smart_http_timeout_s)
    verifier, challenge = smart.pkce_pair()
    state, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    redirect_uri = public_base(request) + "/smart/callback"
    pending = smart_launches.PendingLaunch(iss=iss, client_id=client_id, code_verifier=verifier,
                                           redirect_uri=redirect_uri, token_endpoint=endpoints.token,
                                           issuer=endpoints.issuer, jwks_uri=endpoints.jwks_uri,
                                           browser_hash="")
    with session(_rt(request).engine) as s:
        smart_launches.create(s, state=state, browser=browser, launch=pending, now=datetime.now(UTC),
                              ttl=timedelta(seconds=st.smart_launch_ttl_s))
    target = smart.authorize_url(endpoints, client_id=client_id, redirect_uri=redirect_uri, iss=iss,
                                 launch=launch_id, state=state, code_challenge=challenge)
    resp = RedirectResponse(target, status_code=302)
    resp.set_cookie(LAUNCH_COOKIE, browser, max_age=st.smart_launch_ttl_s, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https", path=LAUNCH_COOKIE_PATH)
    return resp


@router.get("/smart/callback", response_class=HTMLResponse)
def callback(request: Request) -> Response:
    try:
        resp = _callback(request)
    except SmartError as err:
        log.info("SMART callback refused: %s", err.title)
        resp = error_page(request, err)
    # the launch is over either way: its browser cookie has no further use
    resp.delete_cookie(LAUNCH_COOKIE, path=LAUNCH_COOKIE_PATH, httponly=True, samesite="lax",
                       secure=request.url.scheme == "https")
    return resp


def _callback(request: Request) -> Response:
    rt = _rt(request)
    st = rt.settings
    state, code, error = _param(request, "state"), _param(request, "code"), _param(request, "error")
    now = datetime.now(UTC)
    pending = None
    if state is not None:
        try:
            with session(rt.engine) as s:
                pending = smart_launches.consume(s, state, now)  # burnt even when the EHR said no
        except smart_launches.LaunchNotFound as exc:
            if error is None:
                raise SmartError(400, "This sign-in cannot be used", {
                    "unknown": "imn-monitor did not start this sign-in.",
                    "used": "this sign-in was already used (a page reloaded or a link opened twice).",
                    "expired": f"it was not completed within {st.smart_launch_ttl_s // 60} minutes.",
                }[exc.reason] + " Open imn-monitor again from the patient's chart in the EHR.") from None
    if error is not None:
        denied = error == "access_denied"
        raise SmartError(403 if denied else 400,
                         "The EHR did not authorize imn-monitor" if denied else "The EHR's sign-in failed",
                         f"the authorization server answered {error!r}"
                         + (f": {request.query_params.get('error_description', '')[:300]!r}"
                            if request.query_params.get("error_description") else "")
                         + ". Open imn-monitor again from the EHR, or ask its administrator.")
    if state is None or code is None or pending is None:
        raise SmartError(400, "This sign-in link is incomplete",
                         "it lacks the authorization code or state. Open imn-monitor again from the EHR.")
    browser = request.cookies.get(LAUNCH_COOKIE, "")
    if not browser or not secrets.compare_digest(smart_launches.digest(browser), pending.browser_hash):
        raise SmartError(400, "This sign-in belongs to another browser",
                         "it was started in a different browser (or its cookies were cleared). Open "
                         "imn-monitor again from the patient's chart in the EHR.")
    tokens = smart.exchange_code(token_endpoint=pending.token_endpoint, code=code,
                                 client_id=pending.client_id, redirect_uri=pending.redirect_uri,
                                 code_verifier=pending.code_verifier, timeout_s=st.smart_http_timeout_s)
    fhir_patient = tokens.get("patient")
    if not isinstance(fhir_patient, str) or not fhir_patient.strip() or len(fhir_patient) > 200:
        raise SmartError(400, "The EHR gave no patient",
                         "imn-monitor opens one patient's page and needs the patient in context. Launch it "
                         "from a patient's chart.")
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise SmartError(403, "The EHR did not say who you are",
                         "no identity token came back (the openid and fhirUser scopes were not granted); "
                         "imn-monitor names the person behind every action on an alert.")
    claims = smart.verify_id_token(id_token, jwks_uri=pending.jwks_uri, issuer=pending.issuer or pending.iss,
                                   client_id=pending.client_id, timeout_s=st.smart_http_timeout_s)
    actor = smart.user_name(claims, pending.iss)
    mrn_system = st.ehr_mrn_system
    resource = None
    if mrn_system:  # the MRN is in the Patient resource, read with the launch's access token
        resource = smart.fetch_patient(pending.iss, fhir_patient, tokens["access_token"],
                                       st.smart_http_timeout_s)
        if resource is None:
            raise SmartError(502, "The EHR did not give the patient's record",
                             "imn-monitor finds patients by their medical record number, which is in the "
                             "EHR's Patient resource, and the EHR did not return it. Try again, or ask its "
                             "administrator.")
    patient_id = resolve_patient(rt.engine, fhir_patient, resource, mrn_system=mrn_system)
    if patient_id is None:
        raise SmartError(404, "This patient is not followed by imn-monitor",
                         f"no patient of imn-monitor matches the EHR's patient {fhir_patient!r}. Nothing is "
                         "monitored for this patient yet.")
    with session(rt.engine) as s:
        token, opened = user_sessions.open_session(s, actor=actor, role=CLINICIAN, auth_method="smart",
                                                   now=now, max_age=timedelta(seconds=st.session_max_age_s),
                                                   patient_id=patient_id)
    log.info("SMART launch opened session %s for patient %s", opened.id, patient_id)
    target = f"/ui/patients/{quote(patient_id, safe='')}"
    resp = _page(request, "smart_continue.html", {"sess": None, "target": target})
    resp.set_cookie(COOKIE, token, max_age=st.session_max_age_s, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/")
    return resp
