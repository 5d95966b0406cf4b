"""One Settings object (env prefix IMN_), built once at the edge and passed down."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMN_", extra="ignore")

    database_url: str = Field("sqlite:///imn-monitor.db", description="SQLAlchemy URL; SQLite file by default")
    broker_url: str | None = Field(None, description="Celery broker (redis://...); unset = run tasks in-process")
    timezone: str = Field("UTC", description="zone of 'today' for as_of and of the nightly schedule")
    nightly_hour: int = Field(2, ge=0, le=23)
    nightly_minute: int = Field(0, ge=0, le=59)
    batch_lines: int = Field(2000, ge=1, description="NDJSON/CSV lines per ingest batch (one inbox row each)")
    reassess_chunk: int = Field(500, ge=1, description="patients per reassess_chunk task in the nightly fan-out")
    # ~170 KiB a timeline (bench/nightly.py): 1000 keeps a worker child near 200 MiB
    timeline_cache: int = Field(1000, ge=0, description="patients' timelines kept in memory per process")
    # worker children allocate dozens of objects per event they load: at CPython's default of 700 the
    # young collections, and the full ones they trigger, scan the cached timelines again and again
    # (reassessing 500-patient chunks in-process: 3.4 -> 2.2 ms CPU per patient); 0 = the default
    gc_threshold: int = Field(50_000, ge=0, description="allocations between young GC passes in worker children")
    visibility_timeout_s: int = Field(600, ge=30, description="Redis redelivery of unacknowledged tasks")
    stale_after_s: int = Field(120, ge=5, description="work older than this without progress is re-driven")
    sweep_interval_s: int = Field(60, ge=5)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(8, ge=1)
    webhook_backoff_s: float = Field(5.0, gt=0)
    code_map: Path | None = Field(None, description="TOML map of local lab codes and unit spellings")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone: fail at start-up, not at 02:00
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def embedded(self) -> bool:
        """No broker: tasks run in the calling process."""
        return not self.broker_url

    def today(self) -> date:
        return datetime.now(self.zone).date()
