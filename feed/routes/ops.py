"""Operations: liveness, readiness and Prometheus metrics — unauthenticated.

/metrics is open like /healthz and /readyz so that a Prometheus scraper needs no API key: it shows
aggregate counts only (no patient ids, no alert ids). Restrict it at the network edge (reverse proxy)
when the counts themselves are sensitive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from feed import queries
from storage.db import current_revision, session
from storage.models import INBOX_STATES, OUTBOX_STATES

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def _head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _readiness(rt: Any) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current = current_revision(rt.engine)
        heads = _head_revisions()
        checks["migrations"] = "ok" if current in heads else f"at {current}, head is {', '.join(sorted(heads))}"
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", said briefly
        checks.setdefault("database", f"unreachable ({type(exc).__name__})")
        checks.setdefault("migrations", "unknown")
    if rt.settings.broker_url:
        try:
            if rt.redis is not None:
                rt.redis.ping()
            else:
                from tasks.app import app as celery_app

                with celery_app.connection_for_write() as conn:
                    conn.ensure_connection(max_retries=1, timeout=3)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unreachable ({type(exc).__name__})"
    return all(v == "ok" for v in checks.values()), checks


@router.get("/readyz", responses={503: {"description": "not ready (the failing checks are named)"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: database reachable, schema at the migrations' head, broker reachable (if any)."""
    ok, checks = await run_in_threadpool(_readiness, request.app.state.runtime)
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


class _DatabaseCollector:
    """Gauges read from the database at scrape time, so every api process reports the same numbers."""

    def __init__(self, engine: Any):
        self.engine = engine

    def collect(self) -> Any:
        with session(self.engine, write=False) as s:
            snap = queries.metrics_snapshot(s, datetime.now(UTC))
        inbox = GaugeMetricFamily("imn_inbox_batches", "Inbox rows (ingest batches) by state", labels=["state"])
        for state in INBOX_STATES:
            inbox.add_metric([state], snap["inbox"].get(state, 0))
        yield inbox
        yield GaugeMetricFamily("imn_ingest_failed_batches",
                                "Inbox rows whose processing task failed (state=failed)",
                                value=snap["inbox"].get("failed", 0))
        yield GaugeMetricFamily("imn_queue_lag_seconds", "Age of the oldest unprocessed inbox row",
                                value=snap["queue_lag_s"])
        alerts = GaugeMetricFamily("imn_alerts", "Alerts by rule, severity and status",
                                   labels=["rule", "severity", "status"])
        for rule, severity, status, n in snap["alerts"]:
            alerts.add_metric([rule, severity, status], n)
        yield alerts
        outbox = GaugeMetricFamily("imn_outbox_notifications", "Outbox notifications by state", labels=["state"])
        for state in OUTBOX_STATES:
            outbox.add_metric([state], snap["outbox"].get(state, 0))
        yield outbox


def _metrics_text(engine: Any) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseCollector(engine))  # type: ignore[arg-type]
    return generate_latest(registry)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> Response:
    """Prometheus text format: inbox batches by state, failed batches, queue lag, alerts by
    rule/severity/status, outbox notifications by state."""
    body = await run_in_threadpool(_metrics_text, request.app.state.runtime.engine)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
