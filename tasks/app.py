"""The Celery app, configured from Settings.

Reliability choices (docs/reliability.md, "The reliability mechanisms"): late acknowledgement with
reject_on_worker_lost so a killed worker's task is redelivered; prefetch 1 so a dying worker holds
at most one unacknowledged task; a visibility timeout longer than the longest task; no result
backend (the database is the record); no countdown/eta debouncing.
"""

from __future__ import annotations

from celery import Celery

from tasks.settings import Settings

app = Celery("imn_monitor", include=["tasks.jobs"])
_configured_for: Settings | None = None


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' broker, or make it eager (tasks run in the caller, through
    the same task code) in the embedded mode."""
    global _configured_for
    _configured_for = settings
    app.conf.update(
        # embedded: eager; Celery still round-trips the arguments through a producer of this in-process
        # transport (named host: kombu warns about a memory:// URL without one)
        broker_url=settings.broker_url or "memory://localhost/",
        task_always_eager=settings.embedded,
        task_eager_propagates=True,
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=2000,
        task_serializer="json",
        accept_content=["json"],
        timezone=settings.timezone,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        worker_hijack_root_logger=False,
        task_default_queue="imn",
    )
    return app


def ensure(settings: Settings) -> Celery:
    """The app configured for these settings (configured now unless it already is): whoever sends a
    task with a runtime built outside tasks.bootstrap (a test, a benchmark) still gets its mode."""
    return app if _configured_for is settings else configure(settings)
