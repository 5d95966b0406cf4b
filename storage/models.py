"""Table models. The schema itself is created by the migrations (storage/migrations); a test checks
that the two agree, so a column added here without a migration fails CI.

Conventions: every timestamp is timezone-aware (SQLModel's UTCDateTime rejects naive values and
returns UTC); JSON columns are JSONB on PostgreSQL; surrogate keys are BIGINT on PostgreSQL and
INTEGER (the rowid) on SQLite, where only INTEGER PRIMARY KEY auto-increments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from monitor.alerts import ALERT_STATUSES, OPEN_STATUSES

__all__ = ["ALERT_STATUSES", "OPEN_STATUSES"]  # defined by the lifecycle (monitor.alerts); re-exported

BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")

INBOX_STATES = ("received", "processing", "processed", "failed")
OUTBOX_STATES = ("pending", "delivered", "dead")


def _pk() -> Any:
    return Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))


def _fk(target: str, nullable: bool = False, index: bool = True) -> Any:
    return Field(default=None, sa_column=Column(BigId, ForeignKey(target), nullable=nullable, index=index))


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JsonType, nullable=nullable))


class PatientRow(SQLModel, table=True):
    __tablename__ = "patients"

    patient_id: str = Field(primary_key=True, max_length=64)
    active: bool = Field(default=True)
    first_seen_at: datetime
    last_event_at: datetime | None = None
    # a reassessment is pending since then: the durable debounce flag (cleared compare-and-set)
    dirty_since: datetime | None = Field(default=None, index=True)
    last_assessed_at: datetime | None = None
    last_as_of: date | None = None
    remission_state: str | None = Field(default=None, max_length=40)
    risk_category: str | None = Field(default=None, max_length=40)
    summary: dict[str, Any] | None = _json()
    # the first day on which the last assessment could differ with no new event (monitor.assess:
    # Assessment.valid_until; date.max when only a new event changes it); NULL = never assessed.
    # The due-only nightly run selects valid_until <= as_of through the index below (migration 0009).
    valid_until: date | None = None

    __table_args__ = (Index("ix_patients_valid_until", "valid_until", "patient_id"),)


class InboxRow(SQLModel, table=True):
    __tablename__ = "inbox"

    id: int | None = _pk()
    content_hash: str = Field(max_length=64, unique=True)
    format: str = Field(max_length=16)
    source_name: str = Field(max_length=500)
    received_at: datetime
    state: str = Field(default="received", max_length=16)
    attempts: int = Field(default=0)
    processed_at: datetime | None = None
    counts: dict[str, Any] | None = _json()
    error: str | None = None
    # where this payload's first line sits in the file it was cut from (batches of one upload)
    line_offset: int = Field(default=0)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))

    __table_args__ = (Index("ix_inbox_state_received_at", "state", "received_at"),)


class EventRow(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = _pk()
    identity: str = Field(max_length=300)  # indexed by the unique (identity, content_hash)
    patient_id: str = Field(max_length=64, foreign_key="patients.patient_id")
    kind: str = Field(max_length=16)
    status: str = Field(max_length=20)
    content_hash: str = Field(max_length=64)
    version: int
    is_current: bool
    payload: dict[str, Any] = _json(nullable=False)
    effective_at: datetime | None = None
    # the event's own recorded_at (never null for labs/medications once stored): orders versions
    recorded_at: datetime | None = None
    received_at: datetime
    inbox_id: int | None = _fk("inbox.id", nullable=True, index=False)

    __table_args__ = (
        UniqueConstraint("identity", "content_hash", name="uq_events_identity_content_hash"),
        Index("ix_events_patient_current", "patient_id", "is_current"),
    )


class QuarantineRow(SQLModel, table=True):
    __tablename__ = "quarantine"

    id: int | None = _pk()
    inbox_id: int | None = _fk("inbox.id", nullable=True)
    line: int | None = None
    field: str = Field(max_length=200)
    value: str
    reason: str
    raw: str
    created_at: datetime


class AlertRow(SQLModel, table=True):
    __tablename__ = "alerts"

    id: int | None = _pk()
    fingerprint: str = Field(max_length=300, unique=True)
    patient_id: str = Field(max_length=64, foreign_key="patients.patient_id")
    rule: str = Field(max_length=64, index=True)
    episode: str = Field(max_length=200)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16)
    message: str
    evidence: list[dict[str, Any]] = _json(nullable=False)
    reference: str
    raised_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = Field(default=None, max_length=16)  # auto | manual
    resolved_reason: str | None = None
    snoozed_until: datetime | None = None
    assigned_to: str | None = Field(default=None, max_length=200)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    as_of: date
    severity_at_resolution: str | None = Field(default=None, max_length=16)
    # bumped by every change; part of the outbox dedupe key (one notification per change)
    revision: int = Field(default=1)
    # the open alert of the same patient that mutes this one (monitor/inhibitions.py), by id and by
    # fingerprint (the lifecycle's key); no foreign key: alerts are never deleted, and adding one to
    # an existing SQLite table would mean rebuilding the table its audit trail points to
    inhibited_by: int | None = Field(default=None, sa_column=Column(BigId, nullable=True))
    inhibited_by_fingerprint: str | None = Field(default=None, max_length=300)

    __table_args__ = (
        Index("ix_alerts_patient_status", "patient_id", "status"),
        # the sweep finds expired snoozes by their end time (most rows are NULL)
        Index("ix_alerts_snoozed_until", "snoozed_until"),
    )


class AlertAuditRow(SQLModel, table=True):
    """Append-only (a trigger rejects UPDATE and DELETE)."""

    __tablename__ = "alert_audit"

    id: int | None = _pk()
    alert_id: int = _fk("alerts.id")
    at: datetime
    actor: str = Field(max_length=200)
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    severity: str | None = Field(default=None, max_length=16)
    comment: str | None = None
    details: dict[str, Any] | None = _json()


class OutboxRow(SQLModel, table=True):
    """One notification message: since migration 0005 the alert group of one patient and pass
    (monitor/notifications.py, kind "alert_group"); alert_id is only set on rows older than that."""

    __tablename__ = "outbox"

    id: int | None = _pk()
    alert_id: int | None = _fk("alerts.id", nullable=True)
    patient_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    payload: dict[str, Any] = _json(nullable=False)
    dedupe_key: str = Field(max_length=200, unique=True)
    state: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None

    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)


class NightlyRunRow(SQLModel, table=True):
    __tablename__ = "nightly_runs"

    as_of: date = Field(primary_key=True)
    started_at: datetime
    finished_at: datetime | None = None
    owner: str = Field(max_length=200)
    state: str = Field(default="running", max_length=16)  # running | finished | failed
    patients: int | None = None
    # "due": only the patients whose assessment may have changed; "full": every active patient.
    # NULL: a run claimed before migration 0009 (always full). The sweeper re-drives by it.
    mode: str | None = Field(default=None, max_length=8)


API_KEY_ROLES = ("ingest", "clinician", "admin")


class ApiKeyRow(SQLModel, table=True):
    """A bearer API key of the HTTP feed: only its SHA-256 and a short prefix (to tell keys apart in
    listings and logs) are stored; the key itself is shown once, when it is created."""

    __tablename__ = "api_keys"

    id: int | None = _pk()
    name: str = Field(max_length=200)  # the acting identity written to the alert audit trail
    role: str = Field(max_length=16)  # ingest | clinician | admin
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime
    revoked_at: datetime | None = None


# --- webhook subscriptions (clinician feed consumers): one delivery per matching outbox row --------

DELIVERY_STATES = ("pending", "delivered", "dead")


class WebhookSubscriptionRow(SQLModel, table=True):
    """A receiver of alert notifications. `secret` is stored as given (not hashed): it is needed to
    sign every delivery (HMAC-SHA256), so it is shown once at creation and never listed again; protect
    the database (and its backups) accordingly. `filters`: {"rules": [...], "severities": [...],
    "patients": [...]}, an absent or empty list matching everything."""

    __tablename__ = "webhook_subscriptions"

    id: int | None = _pk()
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    filters: dict[str, Any] = _json(nullable=False)
    active: bool = Field(default=True)
    created_at: datetime
    deactivated_at: datetime | None = None


class WebhookDeliveryRow(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"

    id: int | None = _pk()
    subscription_id: int = _fk("webhook_subscriptions.id")
    outbox_id: int = _fk("outbox.id")
    state: str = Field(default="pending", max_length=16)  # pending | delivered | dead
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None

    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_id", name="uq_webhook_deliveries_subscription_outbox"),
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )


# fan-out reads the recent outbox rows by creation time (migration 0003)
Index("ix_outbox_created_at", OutboxRow.__table__.c.created_at)  # type: ignore[attr-defined]


# --- sessions of people using the clinician page -----------------------------------------------------

SESSION_AUTH_METHODS = ("api_key", "smart")  # smart: opened by a SMART on FHIR EHR launch (feed/smart.py)


class UserSessionRow(SQLModel, table=True):
    """A signed-in person's session on the clinician page. The cookie holds a random token; only its
    SHA-256 is stored (a copy of this table opens no session). A session names its actor and role
    itself and is tied to an API key only when it was opened with one (`api_key_id`, revoked with the
    key): an EHR launch can open one for a user who has no key, with the patient in context
    (`patient_id`). It ends at `expires_at` (absolute), after an idle time past `last_seen_at`, or
    when `revoked_at` is set (log out, key revoked)."""

    __tablename__ = "user_sessions"

    id: int | None = _pk()
    token_hash: str = Field(max_length=64, unique=True)
    actor: str = Field(max_length=200)  # written to the alert audit trail
    role: str = Field(max_length=16)  # clinician | admin
    auth_method: str = Field(max_length=16)  # api_key | smart
    api_key_id: int | None = _fk("api_keys.id", nullable=True)
    patient_id: str | None = Field(default=None, max_length=64)  # launch context; None = every patient
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime = Field(index=True)
    revoked_at: datetime | None = None


# --- CDS Hooks: JWT ids already seen (replay protection) ---------------------------------------------


class CdsJtiRow(SQLModel, table=True):
    """A CDS Hooks request's JWT id (`jti`), kept until the token expires: a second request with the
    same issuer and jti is a replay and is refused. Rows past `expires_at` are purged on insert."""

    __tablename__ = "cds_jti"

    id: int | None = _pk()
    issuer: str = Field(max_length=500)
    jti: str = Field(max_length=200)
    expires_at: datetime = Field(index=True)
    seen_at: datetime

    __table_args__ = (UniqueConstraint("issuer", "jti", name="uq_cds_jti_issuer_jti"),)


# --- SMART App Launch: launches between the redirect to the EHR and the callback ------------------


class SmartLaunchRow(SQLModel, table=True):
    """A SMART App Launch between the redirect to the EHR's authorization endpoint and the callback
    (storage/smart_launches.py): the PKCE verifier and what the callback needs stay on the server,
    found by the SHA-256 of the `state` sent to the EHR. One-time (`used_at`) and short-lived
    (`expires_at`); `browser_hash` is the SHA-256 of a random value in a cookie of the browser that
    started the launch, so a callback URL replayed in another browser opens nothing."""

    __tablename__ = "smart_launches"

    id: int | None = _pk()
    state_hash: str = Field(max_length=64, unique=True)
    browser_hash: str = Field(max_length=64)
    iss: str = Field(max_length=500)
    client_id: str = Field(max_length=200)
    code_verifier: str = Field(max_length=128)
    redirect_uri: str = Field(max_length=500)
    token_endpoint: str = Field(max_length=500)
    issuer: str | None = Field(default=None, max_length=500)  # OpenID issuer of the id_token
    jwks_uri: str | None = Field(default=None, max_length=500)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    used_at: datetime | None = None
