"""The process's runtime: settings -> engine (and Redis for debounce keys), built once per process by
tasks.bootstrap (the composition root, which also configures Celery and the schema)."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine

from monitor.interop.codemap import CodeMap
from storage.db import make_engine
from storage.repository import TimelineCache
from tasks.settings import Settings

log = logging.getLogger("imn.runtime")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine

    @cached_property
    def redis(self):  # type: ignore[no-untyped-def]
        """Redis client for debounce keys, when the broker is Redis (None otherwise)."""
        url = self.settings.broker_url or ""
        if not url.startswith(("redis://", "rediss://")):
            return None
        import redis

        return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)

    @cached_property
    def timelines(self) -> TimelineCache:
        """Timelines reused across reassessments while their stored events are unchanged."""
        return TimelineCache(self.settings.timeline_cache)

    @cached_property
    def code_map(self) -> CodeMap:
        path = self.settings.code_map
        return CodeMap.from_toml(path.read_text(encoding="utf-8")) if path else CodeMap.empty()


_current: Runtime | None = None


def init(settings: Settings | None = None) -> Runtime:
    """Build (or rebuild) this process's runtime from settings."""
    global _current
    settings = settings or Settings()
    if _current is not None:
        _current.engine.dispose()
    _current = Runtime(settings, make_engine(settings.database_url))
    return _current


def get() -> Runtime:
    """This process's runtime; a worker process builds it from the environment on first use."""
    return _current if _current is not None else init()


def reset() -> None:
    global _current
    if _current is not None:
        _current.engine.dispose()
    _current = None


def after_fork() -> None:
    """In a forked worker child: drop the parent's pooled connections without closing them (they
    belong to the parent) and build this process's own runtime on first use."""
    global _current
    if _current is not None:
        _current.engine.dispose(close=False)
    _current = None


def tune_gc(settings: Settings) -> None:
    """In a worker child: freeze what start-up allocated (never garbage, never scanned again) and space
    the collections out (Settings.gc_threshold says why)."""
    if settings.gc_threshold <= 0:
        return
    gc.freeze()
    gc.set_threshold(settings.gc_threshold, 50, 1000)
