"""create_app(runtime) -> FastAPI: the feed's composition root.

Routers of this package are listed in ROUTERS. Other parts of the feed (the web page, charts, webhook
subscriptions) join without editing this file: if a module `feed/extra.py` exists, its
`include(app)` is called after ROUTERS are included (it can add routers, static files, middleware).
Their routes protect themselves with `feed.auth.require(*roles)`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from fastapi import FastAPI

from feed.routes import alerts, fhir, ingest, keys, ops, patients, stream
from tasks.runtime import Runtime

log = logging.getLogger("imn.feed")

ROUTERS = [ops.router, ingest.router, alerts.router, patients.router, stream.router, fhir.router, keys.router]
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


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """The HTTP feed over this runtime (default: the process's runtime built from Settings)."""
    if runtime is None:
        from tasks import runtime as runtime_mod

        runtime = runtime_mod.get()
    from tasks import app as celery_app

    celery_app.configure(runtime.settings)  # eager in the embedded mode, the broker otherwise
    app = FastAPI(title="imn-monitor feed", version=_version(), description=DESCRIPTION)
    app.state.runtime = runtime
    for router in ROUTERS:
        app.include_router(router)
    if importlib.util.find_spec(EXTRA_MODULE) is not None:
        importlib.import_module(EXTRA_MODULE).include(app)
    return app
