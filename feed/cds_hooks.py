"""CDS Hooks 2.0 endpoints (https://cds-hooks.org): the EHR shows the monitor's alerts as cards.

    GET  /cds-services                        discovery (patient-view, order-select services)
    POST /cds-services/{id}                   a hook call: {"cards": [...]}
    POST /cds-services/{id}/feedback          accepted / overridden cards -> the alerts' audit trail

Hook calls and feedback need the EHR's signed JWT bearer (tasks/cds_auth.py); anything else is
refused with 401. Thin: the cards come from tasks/cds.py (and monitor/cds.py). Browser-based EHR
sandboxes call these from another origin, so they answer CORS (bearer tokens, no cookies: any origin).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feed.deps import get_runtime
from monitor import cds
from tasks import cds as usecase
from tasks.cds_auth import CdsAuthError, CdsClient, JwksCache, verify

log = logging.getLogger("imn.cds")
PREFIX = "/cds-services"
router = APIRouter(tags=["cds-hooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the hook request cannot be read (the reason is given)"},
    401: {"description": "missing, invalid, expired, replayed or untrusted JWT bearer"},
    404: {"description": "no such service"},
}


def base_url(request: Request) -> str:
    """IMN_PUBLIC_URL when set (behind a proxy the request's own URL may be an internal one)."""
    return get_runtime(request).settings.public_url or str(request.base_url).rstrip("/")


def _jwks(request: Request) -> JwksCache:
    cache = getattr(request.app.state, "cds_jwks", None)
    if cache is None:
        cache = request.app.state.cds_jwks = JwksCache(get_runtime(request).settings.cds_trusted_issuers)
    return cache


def _service(service_id: str) -> str:
    if service_id not in usecase.HOOKS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such CDS service")
    return service_id


def _client(request: Request, service_id: str) -> CdsClient:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise CdsAuthError("a JWT bearer is required")
        return verify(token.strip(), f"{base_url(request)}{PREFIX}/{service_id}", _jwks(request),
                      get_runtime(request).engine)
    except CdsAuthError as exc:
        log.info("cds %s: refused: %s", service_id, exc)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc),
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


@router.get(PREFIX)
def discovery() -> dict[str, Any]:
    """The services: patient-view (open alerts) and order-select (cyclosporine and kidney function)."""
    return cds.discovery()


@router.post(PREFIX + "/{service_id}", responses=_RESPONSES)
def call_service(service_id: str, request: Request, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """A hook call: cards of the patient's open alerts (patient-view) or about the draft orders
    (order-select). A patient the monitor does not know gets an empty list."""
    _service(service_id)
    _client(request, service_id)
    try:
        req = usecase.parse_request(service_id, body)
    except usecase.HookRequestError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
    return usecase.answer(get_runtime(request), req, base_url(request))


@router.post(PREFIX + "/{service_id}/feedback", responses=_RESPONSES)
def feedback(service_id: str, request: Request, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """The EHR says which cards were accepted or overridden; each is written to its alert's audit
    trail (overridden = acknowledged with the reason)."""
    _service(service_id)
    client = _client(request, service_id)
    try:
        items = usecase.parse_feedback(body)
    except usecase.HookRequestError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
    return usecase.record_feedback(get_runtime(request), items, client).as_dict()


class CdsCors:
    """CORS for /cds-services only: a preflight answers 204, every answer allows any origin."""

    HEADERS = ((b"access-control-allow-origin", b"*"),
               (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
               (b"access-control-allow-headers", b"Authorization, Content-Type"),
               (b"access-control-max-age", b"600"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": list(self.HEADERS)})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_cors)


def include(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(CdsCors)
