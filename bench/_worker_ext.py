"""Loaded into the bench's celery workers with `-I bench._worker_ext` (never by production code).

Adds the no-op task (the Celery ceiling: same app, same settings, same broker, same workers) and
counts the imn.* tasks each worker runs, its failures and retries, and its timeline cache hits,
in Redis (one pipelined round trip per task).
"""

from __future__ import annotations

import os
import time

from celery.signals import task_failure, task_postrun, task_prerun, task_retry

from tasks import runtime
from tasks.app import app

TASKS_KEY, FAILED_KEY, CACHE_KEY, NOOP_KEY = "bench:tasks", "bench:failed", "bench:cache", "bench:noop"
TASK_S_KEY = "bench:task_s"
_started: dict[str, float] = {}


@app.task(name="bench.noop")
def noop() -> None:
    runtime.get().redis.incr(NOOP_KEY)


@task_prerun.connect
def _start(task_id=None, **_: object) -> None:  # type: ignore[no-untyped-def]
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _count(task_id=None, task=None, **_: object) -> None:  # type: ignore[no-untyped-def]
    started = _started.pop(task_id, None)
    if task is None or not task.name.startswith("imn."):
        return
    rt = runtime.get()
    pipe = rt.redis.pipeline(transaction=False)
    pipe.hincrby(TASKS_KEY, task.name, 1)
    if started is not None:
        pipe.hincrbyfloat(TASK_S_KEY, task.name, time.perf_counter() - started)
    cache = rt.__dict__.get("timelines")  # only if this process built one
    if cache is not None:
        pipe.hset(CACHE_KEY, str(os.getpid()), f"{cache.hits},{cache.misses}")
    pipe.execute()


@task_failure.connect
def _failed(sender=None, exception=None, **_: object) -> None:  # type: ignore[no-untyped-def]
    runtime.get().redis.hincrby(FAILED_KEY, f"{getattr(sender, 'name', '?')} {type(exception).__name__}", 1)


@task_retry.connect
def _retried(sender=None, reason=None, **_: object) -> None:  # type: ignore[no-untyped-def]
    runtime.get().redis.hincrby(FAILED_KEY, f"{getattr(sender, 'name', '?')} retry {type(reason).__name__}", 1)
