"""create_app(runtime) -> FastAPI: the feed's composition root.

Routers of this package are listed in ROUTERS. Other parts of the feed (the web page, charts, webhook
subscriptions) join without editing this file: if a module `feed/extra.py` exists, its
`include(app)` is called after ROUTERS are included (it can add routers, static files, middleware).
Their routes protect themselves with `feed.auth.require(*roles)`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from feed import errors
from feed.headers import SecurityHeaders
from feed.routes import alerts, fhir, ingest, keys, ops, patients, stream
from tasks.runtime import Runtime

log = logging.getLogger("imn.feed")

# a router, or a function building one when the app is built (the ingest routes follow the registry
# of input formats)
ROUTERS: list[APIRouter | Callable[[], APIRouter]] = [
    ops.router, ingest.build_router, alerts.router, patients.router, stream.router, fhir.router, keys.router]
EXTRA_MODULE = "feed.extra"

DESCRIPTION = """\
Clinician feed and ingestion API of imn-monitor.

Authenticate with `Authorization: Bearer <API key>` (`imn-monitor keys create --role ingest|clinician|admin
--name NAME`). Roles: **ingest** (POST /ingest/*, GET /inbox/{id}); **clinician** (alerts, patients,
the alert stream, FHIR Flags); **admin** (everything, GET /keys). /healthz, /readyz and /metrics are
open. A missing or invalid key answers 401, a key of the wrong role 403.
"""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("imn-monitor")
    except Exception:  # noqa: BLE001 - running from a checkout without installed metadata
        return "0"


# a request holds at most this many pooled connections at once: its read session (a dependency,
# held until the response is sent) and either the key lookup or a write session
CONNECTIONS_PER_REQUEST = 2
LONG_LIVED_PATHS = ("/stream/",)  # server-sent events: open for hours, outside the budget


def request_limit(runtime: Runtime) -> int | None:
    """How many requests may be in flight at once so that they can never exhaust the connection pool
    (None: the engine's pool has no fixed bound)."""
    pool = runtime.engine.pool
    size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", None)
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return None
    return max(1, (size() + overflow) // CONNECTIONS_PER_REQUEST)


class ConnectionBudget:
    """ASGI middleware admitting at most `limit` requests at once; the others wait their turn.

    Without it, more concurrent requests than half the pool each took their read session's connection
    and then waited for a second one that never came: 32 readers against a pool of 15 deadlocked until
    the pool timeout and all got 500 (bench/api.py)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(LONG_LIVED_PATHS):
            await self.app(scope, receive, send)
            return
        async with self._slots:
            await self.app(scope, receive, send)


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """The HTTP feed over this runtime (default: the process's runtime built from Settings)."""
    from tasks import app as celery_app
    from tasks import bootstrap

    if runtime is None:
        runtime = bootstrap.current()
    celery_app.ensure(runtime.settings)  # eager in the embedded mode, the broker otherwise
    app = FastAPI(title="imn-monitor feed", version=_version(), description=DESCRIPTION)
    limit = request_limit(runtime)
    if limit is not None:
        app.add_middleware(ConnectionBudget, limit=limit)
    app.add_middleware(SecurityHeaders)
    if runtime.settings.proxy_networks:
        # outermost: X-Forwarded-Proto/-For only from the configured proxies set the scheme (and so the
        # session cookie's Secure flag) and the client address; `imn-monitor api` turns uvicorn's own
        # proxy handling (which trusts 127.0.0.1 by default) off
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=runtime.settings.proxy_networks)
    app.state.runtime = runtime
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router if isinstance(router, APIRouter) else router())
    if importlib.util.find_spec(EXTRA_MODULE) is not None:
        importlib.import_module(EXTRA_MODULE).include(app)
    return app
