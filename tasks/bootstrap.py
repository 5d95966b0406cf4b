"""The composition root: settings -> engine -> Celery app -> runtime, and the schema, once per process.

Every entry point starts here: the CLI (cli/main.py), the HTTP feed (`imn-monitor api`, and
feed.create_app for a runtime it is not given), the worker (tasks/worker.py, `imn-monitor worker`)
and the scheduler. What it builds:

- Settings from the environment (IMN_*), unless given;
- the runtime (tasks/runtime.py): the engine, and Redis for debounce keys when the broker is Redis;
- the Celery app, pointed at the broker, or eager when there is none (the embedded mode: every task
  runs in the calling process through the same code as on a worker);
- the schema, as the caller asks: `upgrade` (commands that write: migrate to head first), `check`
  (commands that only read: refuse, saying what to run, when the schema is missing or behind; never
  migrate a database from a read) or `skip` (worker processes: the deployment migrates).
"""

from __future__ import annotations

from typing import Literal

from storage.db import check_schema, upgrade
from tasks import app as celery_app
from tasks import runtime
from tasks.runtime import Runtime
from tasks.settings import Settings

Schema = Literal["upgrade", "check", "skip"]


def init(settings: Settings | None = None, schema: Schema = "skip") -> Runtime:
    """Build this process's runtime (replacing any earlier one) and configure Celery for it."""
    rt = runtime.init(settings or Settings())
    celery_app.configure(rt.settings)
    prepare_schema(rt, schema)
    return rt


def current(schema: Schema = "skip") -> Runtime:
    """This process's runtime (built from the environment if there is none yet), Celery configured."""
    rt = runtime.get()
    celery_app.ensure(rt.settings)
    prepare_schema(rt, schema)
    return rt


def prepare_schema(rt: Runtime, schema: Schema) -> None:
    if schema == "upgrade":
        upgrade(rt.engine)
    elif schema == "check":
        check_schema(rt.engine)
