"""The clinician's web page: server-rendered (Jinja2, feed/templates), no front-end build, no external
assets.

    GET  /                          open alerts, critical first, with message and evidence
    GET  /ui/patients/{id}          summary, anti-PLA2R kinetics, treatment courses, chart, alerts
    GET  /ui/report                 the clinic outcome report (feed/report.py)
    GET  /ui/login, POST /ui/login  the API key once -> a server-side session; POST /ui/logout
    (a SMART on FHIR EHR launch opens the same kind of session for one patient: feed/smart.py)
    POST /ui/alerts/{id}/acknowledge, /ui/alerts/{id}/resolve   forms; redirect back (303)

Authentication: a browser cannot send a bearer header from a link, so a clinician or admin key is
posted once to /ui/login, which opens a session (storage/user_sessions.py) and sets the cookie
`imn_session` to the session's random token: HttpOnly, SameSite=Strict, Path=/, Max-Age = the
session's lifetime, Secure when the request came over https (as seen directly, or as a trusted proxy
says: IMN_TRUSTED_PROXIES). The key itself never leaves the login request. A session ends after
IMN_SESSION_IDLE_TIMEOUT_S unused, IMN_SESSION_MAX_AGE_S after log-in, on log-out, and when its key is
revoked; the sessions live in the database, so any number of api processes can serve the page.

CSRF: the cookie is SameSite=Strict (not sent on cross-site requests at all), and every form carries
HMAC-SHA256(session token, "imn-ui-csrf"), checked in constant time. Actions go through
storage.alerts with the session's actor as the actor (audited like the API's).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.templating import Jinja2Templates

from feed.auth import ADMIN, CLINICIAN, bearer
from feed.schemas import Id, Storable
from monitor import inhibitions
from monitor.display import evidence_number, evidence_unit, immunological_text, latest_text, value_text
from monitor.kinetics import REGIMEN_NAMES, titer_kinetics
from monitor.severity import MOST_SEVERE_FIRST, most_severe_first
from storage import api_keys, user_sessions, views
from storage import repository as repo
from storage.db import session
from storage.user_sessions import UserSession
from tasks import service

COOKIE = "imn_session"
UI_ROLES = frozenset({CLINICIAN, ADMIN})
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
# values on the page go through the one formatting helper (monitor.display): the lab's precision,
# never on the other side of a threshold, the reported value beside a converted one
templates.env.filters.update({
    "latest_text": lambda item, key: latest_text(key, item),
    "immunological_text": immunological_text,
    "evidence_number": evidence_number,
    "evidence_unit": evidence_unit,
    "g_per_day": lambda value: value_text(float(value), "proteinuria_24h") if value is not None else "—",
})
router = APIRouter(include_in_schema=False)
FormText = Annotated[Storable, Form(max_length=2000)]


class LoginRequired(Exception):
    """Raised by the UI dependency: the exception handler redirects to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class OutOfScope(Exception):
    """A session opened for one patient (a SMART EHR launch) asked for something else: the handler
    sends "/" to that patient's page and answers anything else with a 403 page."""

    def __init__(self, patient_id: str) -> None:
        self.patient_id = patient_id


class UiSession:
    """The signed-in person on this request: who (actor, role), the session, the form token."""

    def __init__(self, stored: UserSession, token: str) -> None:
        self.stored = stored
        self.actor, self.role, self.patient_id = stored.actor, stored.role, stored.patient_id
        self.csrf = csrf_token(token)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"imn-ui-csrf", hashlib.sha256).hexdigest()


def _engine(request: Request) -> Any:
    return request.app.state.runtime.engine


def _settings(request: Request) -> Any:
    return request.app.state.runtime.settings


def _authenticate(request: Request, token: str | None) -> api_keys.ApiKey | None:
    if not token:
        return None
    with session(_engine(request), write=False) as s:
        return api_keys.authenticate(s, token)


def _from_cookie(request: Request) -> UiSession | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    now = datetime.now(UTC)
    idle = timedelta(seconds=_settings(request).session_idle_timeout_s)
    with session(_engine(request), write=False) as s:
        found = user_sessions.find_session(s, token, now, idle)
    if found is None or found.role not in UI_ROLES:
        return None
    if now - found.last_seen_at >= user_sessions.TOUCH_EVERY:
        with session(_engine(request)) as s:
            user_sessions.touch(s, found.id, now)
    return UiSession(found, token)


def _in_scope(request: Request, sess: UiSession) -> bool:
    """Whether this request stays within the session's patient. A session opened for one patient (a
    SMART EHR launch, feed/smart.py) reaches that patient's page and chart and acts on that patient's
    alerts, nothing else (no other patient, no clinic-wide list or report); other sessions reach all."""
    if sess.patient_id is None:
        return True
    params = request.path_params
    if "patient_id" in params:
        return params["patient_id"] == sess.patient_id
    if "alert_id" in params:
        try:
            alert_id = int(params["alert_id"])
        except (TypeError, ValueError):
            return False
        with session(_engine(request), write=False) as s:
            found = views.alert_detail(s, alert_id)
        return found is not None and found["patient_id"] == sess.patient_id
    return False


def ui_session(request: Request) -> UiSession:
    """The page's dependency: a clinician/admin session, or a redirect to the login page."""
    sess = _from_cookie(request)
    if sess is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if not _in_scope(request, sess):
        raise OutOfScope(sess.patient_id or "")
    return sess


def clinician_or_ui_session(request: Request,
                            credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """A bearer key (clinician/admin) or, for images embedded in the page, the session cookie;
    returns the caller's name."""
    if credentials is not None:
        from feed.auth import authenticate

        key = authenticate(request, credentials)
        if key.role not in UI_ROLES:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"forbidden for role {key.role}")
        return key.name
    sess = _from_cookie(request)
    if sess is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing or invalid API key",
                            headers={"WWW-Authenticate": 'Bearer realm="imn-monitor"'})
    if not _in_scope(request, sess):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="outside this session's patient")
    return sess.actor


def _check_csrf(sess: UiSession, token: str) -> None:
    if not hmac.compare_digest(sess.csrf, token or ""):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid CSRF token; reload the page")


def _safe_next(url: str | None, default: str = "/") -> str:
    """Only local paths: never an open redirect."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


def _redirect(url: str, **flash: str) -> RedirectResponse:
    if flash:
        sep = "&" if "?" in url else "?"
        url += sep + "&".join(f"{k}={quote(v)}" for k, v in flash.items())
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _page(request: Request, name: str, context: dict[str, Any], code: int = 200) -> HTMLResponse:
    resp = templates.TemplateResponse(request, name, context, status_code=code)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = ("default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
                                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _flash(request: Request) -> dict[str, str | None]:
    return {"ok": request.query_params.get("ok"), "error": request.query_params.get("error")}


# ------------------------------------------------------------------------------------------ pages


def _inhibitions(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """For each inhibited alert on a page: the alert inhibiting it (when the page lists it) and why."""
    by_id = {a["id"]: a for a in alerts}
    out: dict[int, dict[str, Any]] = {}
    for a in alerts:
        if a.get("inhibited_by") and a["status"] != "resolved":
            source = by_id.get(a["inhibited_by"]["id"])
            found = inhibitions.between(source["rule"], a["rule"]) if source else None
            out[a["id"]] = {"source": source, "reason": found.reason if found else None}
    return out


def _groups(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open alerts in their notification groups (one per patient): in a group the active alerts by
    severity, then the inhibited ones; the groups by their most severe active alert."""
    groups: dict[str, dict[str, Any]] = {}
    for a in alerts:
        g = groups.setdefault(a["group"], {"key": a["group"], "patient_id": a["patient_id"], "alerts": []})
        g["alerts"].append(a)
    for g in groups.values():
        g["alerts"].sort(key=lambda a: (a["inhibited_by"] is not None, most_severe_first(a["severity"])))
        g["inhibited"] = sum(1 for a in g["alerts"] if a["inhibited_by"] is not None)
        # a group whose alerts are all inhibited goes last: (True, ...) sorts after every (False, ...)
        g["order"] = min(((False, most_severe_first(a["severity"])) for a in g["alerts"]
                          if a["inhibited_by"] is None), default=(True, 0))
    return sorted(groups.values(), key=lambda g: g["order"])


@router.get("/", response_class=HTMLResponse)
def home(request: Request, sess: UiSession = Depends(ui_session)) -> HTMLResponse:
    with session(_engine(request), write=False) as s:
        alerts = views.list_alerts(s, status="open")
    # critical first; within a severity the oldest unhandled first would bury new ones: newest first
    alerts.sort(key=lambda a: most_severe_first(a["severity"]))
    counts = {sev: sum(1 for a in alerts if a["severity"] == sev) for sev in MOST_SEVERE_FIRST}
    return _page(request, "alerts.html", {
        "sess": sess, "alerts": alerts, "groups": _groups(alerts), "inhibitions": _inhibitions(alerts),
        "inhibited": sum(1 for a in alerts if a["inhibited_by"]), "counts": counts, "flash": _flash(request),
        "here": "/"})


@router.get("/ui/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: Storable, request: Request,
                 sess: UiSession = Depends(ui_session)) -> HTMLResponse:
    with session(_engine(request), write=False) as s:
        patient = views.patient_view(s, patient_id)
        alerts = views.list_alerts(s, patient_id=patient_id) if patient is not None else []
        timeline = repo.load_timeline(s, patient_id) if patient is not None else None
    if patient is None or timeline is None:
        return _page(request, "not_found.html", {"sess": sess, "what": f"patient {patient_id}"}, 404)
    # the kinetics as of the patient's last assessment (what the page's alerts and chart reflect)
    kinetics = titer_kinetics(timeline, service.default_as_of(request.app.state.runtime, patient))
    here = f"/ui/patients/{quote(patient_id, safe='')}"
    # the active alerts first, then the inhibited ones (each still critical first)
    open_alerts = sorted((a for a in alerts if a["status"] != "resolved"), key=lambda a: a["inhibited_by"] is not None)
    closed = [a for a in alerts if a["status"] == "resolved"]
    return _page(request, "patient.html", {
        "sess": sess, "patient": patient, "summary": patient.get("summary") or {}, "open_alerts": open_alerts,
        "closed_alerts": closed, "inhibitions": _inhibitions(open_alerts), "flash": _flash(request), "here": here,
        "kinetics": kinetics, "regimen_names": REGIMEN_NAMES,
        # the chart as of the patient's last assessment: what the alerts on this page reflect
        "chart_url": f"/patients/{quote(patient_id, safe='')}/chart.png"
                     + (f"?as_of={patient['last_as_of']}" if patient.get("last_as_of") else ""),
    })


# ------------------------------------------------------------------------------------ log in / out


@router.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _page(request, "login.html", {"sess": None, "next": _safe_next(next), "error": None})


@router.post("/ui/login")
def login(request: Request, key: str = Form(..., max_length=300), next: str = Form("/")) -> Response:
    found = _authenticate(request, key.strip())
    if found is None or found.role not in UI_ROLES:
        # the key is never repeated back, not even in part
        error = ("Unknown or revoked key." if found is None
                 else "This key's role cannot use the clinician page.")
        return _page(request, "login.html", {"sess": None, "next": _safe_next(next), "error": error},
                     status.HTTP_401_UNAUTHORIZED if found is None else status.HTTP_403_FORBIDDEN)
    st = _settings(request)
    with session(_engine(request)) as s:
        token, _ = user_sessions.open_session(s, actor=found.name, role=found.role, auth_method="api_key",
                                              api_key_id=found.id, now=datetime.now(UTC),
                                              max_age=timedelta(seconds=st.session_max_age_s))
    resp = _redirect(_safe_next(next))
    # request.url.scheme is https when the connection is, or when a trusted proxy said so (feed/app.py)
    resp.set_cookie(COOKIE, token, max_age=st.session_max_age_s, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/")
    return resp


@router.post("/ui/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    sess = _from_cookie(request)
    if sess is not None:
        _check_csrf(sess, csrf)
        with session(_engine(request)) as s:
            user_sessions.revoke_session(s, sess.stored.id, datetime.now(UTC))
    resp = _redirect("/ui/login")
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                       secure=request.url.scheme == "https")
    return resp


# ---------------------------------------------------------------------------------------- actions


@router.post("/ui/alerts/{alert_id}/acknowledge")
def ui_acknowledge(alert_id: Id, request: Request, csrf: str = Form(""), comment: FormText = "",
                   next: str = Form("/"), sess: UiSession = Depends(ui_session)) -> Response:
    _check_csrf(sess, csrf)
    back = _safe_next(next)
    try:
        service.act(request.app.state.runtime, alert_id, "acknowledge", actor=sess.actor, comment=comment.strip() or None)
    except repo.AlertActionError as exc:
        return _redirect(back, error=str(exc))
    return _redirect(back, ok=f"Alert {alert_id} acknowledged.")


@router.post("/ui/alerts/{alert_id}/resolve")
def ui_resolve(alert_id: Id, request: Request, csrf: str = Form(""), comment: FormText = "",
               next: str = Form("/"), sess: UiSession = Depends(ui_session)) -> Response:
    _check_csrf(sess, csrf)
    back = _safe_next(next)
    if not comment.strip():
        return _redirect(back, error=f"Resolving alert {alert_id} needs a comment.")
    try:
        service.act(request.app.state.runtime, alert_id, "resolve", actor=sess.actor, comment=comment.strip())
    except repo.AlertActionError as exc:
        return _redirect(back, error=str(exc))
    return _redirect(back, ok=f"Alert {alert_id} resolved.")


def install_login_redirect(app: Any) -> None:
    from fastapi.responses import RedirectResponse as _R

    async def _handler(request: Request, exc: LoginRequired) -> Response:
        return _R(f"/ui/login?next={quote(_safe_next(exc.next_url))}", status_code=status.HTTP_303_SEE_OTHER)

    async def _out_of_scope(request: Request, exc: OutOfScope) -> Response:
        own = f"/ui/patients/{quote(exc.patient_id, safe='')}"
        if request.url.path == "/" and request.method == "GET":
            return _R(own, status_code=status.HTTP_303_SEE_OTHER)
        return _page(request, "smart_error.html", {
            "sess": None, "title": "Outside this session",
            "detail": f"this session was opened from the EHR for patient {exc.patient_id} only. "
                      "Open other patients from their charts in the EHR."}, status.HTTP_403_FORBIDDEN)

    app.add_exception_handler(LoginRequired, _handler)
    app.add_exception_handler(OutOfScope, _out_of_scope)
