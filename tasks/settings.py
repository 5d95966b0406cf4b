"""One Settings object (env prefix IMN_), built once at the edge and passed down."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


class Settings(BaseSettings):
    # hide_input_in_errors: a bad setting must not print the others (secrets, URLs with passwords)
    model_config = SettingsConfigDict(env_prefix="IMN_", extra="ignore", hide_input_in_errors=True)

    database_url: str = Field("sqlite:///imn-monitor.db", description="SQLAlchemy URL; SQLite file by default")
    broker_url: str | None = Field(None, description="Celery broker (redis://...); unset = run tasks in-process")
    timezone: str = Field("UTC", description="zone of 'today' for as_of and of the nightly schedule")
    nightly_hour: int = Field(2, ge=0, le=23)
    nightly_minute: int = Field(0, ge=0, le=59)
    batch_lines: int = Field(2000, ge=1, description="NDJSON/CSV lines per ingest batch (one inbox row each)")
    reassess_chunk: int = Field(500, ge=1, description="patients per reassess_chunk task in the nightly fan-out")
    # the nightly run reassesses only the patients whose assessment may have changed (valid_until
    # reached, new events); on this weekday it reassesses everyone, a safety net (tasks/reassess.py)
    full_reassess_weekday: str = Field("sun", description="weekday of the full nightly run: mon..sun, daily or never")
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
    # off: a webhook may only reach public addresses (not loopback, private, link-local such as the
    # cloud metadata service 169.254.169.254); on for receivers inside the hospital network, and tests
    webhook_allow_private: bool = Field(False, description="let webhooks post to private/loopback addresses")
    # the clinician page's sessions (storage/user_sessions.py)
    session_idle_timeout_s: int = Field(1800, ge=60, description="a page session ends after this long unused")
    session_max_age_s: int = Field(43200, ge=60, description="a page session ends this long after log-in")
    # X-Forwarded-Proto/-For are honoured only from these addresses (comma-separated IPs or networks)
    trusted_proxies: str = Field("", description="reverse proxies whose X-Forwarded-* headers are believed")
    # concurrent ingest bodies per api process; one more waits for nothing: 503 + Retry-After
    ingest_concurrency: int = Field(2, ge=1, description="ingest request bodies received at once per process")
    ingest_retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503 when ingestion is busy")
    mllp_read_timeout_s: float = Field(30.0, gt=0, description="a started MLLP frame must end by then")
    mllp_idle_timeout_s: float = Field(300.0, gt=0, description="MLLP connections idle this long close")
    mllp_max_frame_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="larger MLLP frames are refused")
    code_map: Path | None = Field(None, description="TOML map of local lab codes and unit spellings")
    # EHR integration (CDS Hooks, SMART App Launch). The EHR's patient is mapped to the monitor's by
    # tasks/ehr_identity.py: by the MRN identifier of this system when set, else by the FHIR Patient id
    ehr_mrn_system: str | None = Field(None, description="identifier system of the MRN in the EHR's Patient")
    # links and JWT audiences are built from this (https://monitor.example.org); unset = request's base URL
    public_url: str | None = Field(None, description="externally visible base URL of the feed")
    # JSON map issuer -> JWKS URL or file path; a CDS Hooks request signed by anyone else is refused
    cds_trusted_issuers: dict[str, str] = Field(default_factory=dict, description="CDS Hooks JWT issuers")
    # JSON map EHR issuer (iss) -> client id (public client with PKCE); non-empty = SMART is configured
    smart_clients: dict[str, str] = Field(default_factory=dict, description="SMART App Launch clients")
    # SMART App Launch (feed/smart.py): how long a started launch may take, and each request to the EHR
    smart_launch_ttl_s: int = Field(600, ge=30, description="a started EHR launch must come back within this")
    smart_http_timeout_s: float = Field(10.0, gt=0, description="timeout of each request to an EHR")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone: fail at start-up, not at 02:00
        return v

    @field_validator("full_reassess_weekday")
    @classmethod
    def _weekday(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in (*WEEKDAYS, "daily", "never"):
            raise ValueError(f"full_reassess_weekday must be one of {', '.join(WEEKDAYS)}, daily or never")
        return v

    def full_night(self, as_of: date) -> bool:
        """Whether the nightly run for `as_of` reassesses every active patient (the weekly safety net)."""
        v = self.full_reassess_weekday
        return v == "daily" or (v != "never" and WEEKDAYS[as_of.weekday()] == v)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, v: str) -> str:
        for item in filter(None, (p.strip() for p in v.split(","))):
            ipaddress.ip_network(item, strict=False)  # raises for a typo: fail at start-up
        return v

    @field_validator("smart_clients")
    @classmethod
    def _smart_issuers(cls, v: dict[str, str]) -> dict[str, str]:
        from urllib.parse import urlsplit

        out = {}
        for iss, client_id in v.items():
            u = urlsplit(iss)
            if u.scheme not in ("http", "https") or not u.netloc or "@" in u.netloc or not client_id.strip():
                raise ValueError("IMN_SMART_CLIENTS maps absolute http(s) issuer URLs to client ids")
            out[iss.rstrip("/")] = client_id.strip()
        return out

    @model_validator(mode="after")
    def _webhook_target(self) -> "Settings":
        if self.webhook_url:
            from tasks.url_safety import UnsafeUrl, check_url

            try:
                check_url(self.webhook_url, self.webhook_allow_private)
            except UnsafeUrl as exc:
                raise ValueError(f"IMN_WEBHOOK_URL: {exc}") from None
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not v.startswith(("https://", "http://")):
            raise ValueError("IMN_PUBLIC_URL must be an absolute http(s) URL")
        return v.strip().rstrip("/")  # joined with paths ("/cds-services/...")

    @property
    def proxy_networks(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def embedded(self) -> bool:
        """No broker: tasks run in the calling process."""
        return not self.broker_url

    def today(self) -> date:
        return datetime.now(self.zone).date()
