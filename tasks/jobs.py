"""Celery tasks, kept thin: load -> call monitor -> save -> enqueue. No clinical thresholds here.

The one pipeline: with a broker the tasks run on workers; in the embedded mode (no broker) Celery
runs them eagerly in the calling process, through the same code (tasks.bootstrap configures which).
Entry points do not call these directly but through the use cases of tasks/service.py.

Every task is idempotent: the database (inbox state, unique constraints, compare-and-set dirty
flags, alert fingerprints, outbox dedupe keys) decides what is new, so a redelivered, re-driven or
duplicated task changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta

from celery.result import EagerResult
from sqlalchemy.exc import OperationalError

from storage import repository as repo
from storage import user_sessions
from storage.db import session
from tasks import notify, webhooks
from tasks.app import app
from tasks.ingest import process_inbox, utcnow
from tasks.reassess import ReassessCounts, nightly_chunks, nightly_mode, reassess
from tasks.runtime import Runtime, get

log = logging.getLogger("imn.tasks")
DEBOUNCE_KEY = "imn:reassess:{}"
SNOOZE_BATCH = 500  # patients whose snoozes expire per transaction
# a database that is restarting is worth waiting for: retry with backoff instead of failing.
# Jitter draws each delay from 0..backoff, so allow many tries (about 10-15 minutes of outage);
# past that the sweeper re-drives the work from the database.
_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": 2, "retry_backoff_max": 60,
          "max_retries": 40, "retry_jitter": True}
# reassessments requested during a burst (see `burst`), by as_of; None outside one
_BURST: ContextVar[dict[str | None, set[str]] | None] = ContextVar("imn_reassess_burst", default=None)


def _as_of(rt: Runtime, as_of: str | None) -> date:
    return date.fromisoformat(as_of) if as_of else rt.settings.today()


@app.task(name="imn.ingest_batch", **_RETRY)
def ingest_batch(inbox_id: int, as_of: str | None = None) -> dict[str, int] | None:
    rt = get()
    counts = process_inbox(rt, inbox_id)
    if counts is None:
        return None
    request_reassessment(rt, sorted(counts.patients), as_of)
    return counts.as_dict()


@app.task(name="imn.reassess_patient", **_RETRY)
def reassess_patient(patient_id: str, as_of: str | None = None) -> None:
    rt = get()
    if rt.redis is not None:
        # drop the debounce key first: results stored from now on schedule a fresh reassessment
        rt.redis.delete(DEBOUNCE_KEY.format(patient_id))
    reassess(rt, [patient_id], _as_of(rt, as_of))
    enqueue_due_notifications(rt)


@app.task(name="imn.reassess_chunk", **_RETRY)
def reassess_chunk(patient_ids: list[str], as_of: str | None = None, debounced: bool = False) -> dict[str, int]:
    rt = get()
    if debounced and rt.redis is not None:
        rt.redis.delete(*(DEBOUNCE_KEY.format(pid) for pid in patient_ids))
    # a debounced burst may come back for the same patients: keep their timelines; a nightly chunk won't
    counts = reassess(rt, patient_ids, _as_of(rt, as_of), skip_current=True, keep_timelines=debounced)
    enqueue_due_notifications(rt)
    return vars(counts)


@app.task(name="imn.reassess_all", **_RETRY)
def reassess_all(as_of: str | None = None, mode: str | None = None) -> dict[str, int]:
    """Fan out over the night's patients in chunks: the due ones (mode "due") or every active patient
    ("full"); None: the nightly's choice for the date (tasks.reassess.nightly_mode). Returns the
    number of chunks enqueued, and (when they ran eagerly, in the embedded mode) what they did."""
    rt = get()
    when = _as_of(rt, as_of)
    day = when.isoformat()
    total = ReassessCounts()
    n = 0
    for chunk in nightly_chunks(rt, when, mode or nightly_mode(rt, when), rt.settings.reassess_chunk):
        sent = reassess_chunk.delay(chunk, day)
        if isinstance(sent, EagerResult):
            total.add(ReassessCounts(**sent.result))  # ran already: nothing to wait for
        n += 1
    # a full pass expired the snoozes of every patient it reassessed; a due-only one skips most of
    # them: expire theirs here too (the sweeper does it as well, with a broker)
    expire_snoozes(rt, utcnow())
    return {"chunks": n, **vars(total)}


@app.task(name="imn.deliver_notification", **_RETRY)
def deliver_notification(outbox_id: int) -> str:
    return notify.deliver(get(), outbox_id)


@app.task(name="imn.deliver_webhook", **_RETRY)
def deliver_webhook(delivery_id: int) -> str:
    return webhooks.deliver(get(), delivery_id)


@app.task(name="imn.sweep", **_RETRY)
def sweep() -> dict[str, int]:
    return sweep_once(get())


def request_reassessment(rt: Runtime, patient_ids: list[str], as_of: str | None) -> int:
    """One reassessment per patient per burst: a Redis key per patient debounces the burst, and the
    patients a batch touched are reassessed together in reassess_chunk tasks.

    The durable record is the patient's dirty flag in the database; the key only avoids flooding
    the queue. Lost keys or tasks are re-driven by the sweeper.
    """
    if not patient_ids:
        return 0
    r = rt.redis
    pending = _BURST.get()
    if r is None and pending is not None:
        pending.setdefault(as_of, set()).update(patient_ids)
        return len(patient_ids)
    if r is None:
        wanted = patient_ids
    else:
        pipe = r.pipeline(transaction=False)
        for pid in patient_ids:
            pipe.set(DEBOUNCE_KEY.format(pid), "1", nx=True, ex=rt.settings.visibility_timeout_s)
        wanted = [pid for pid, created in zip(patient_ids, pipe.execute()) if created]
    _reassess_in_chunks(rt, wanted, as_of)
    return len(wanted)


def _reassess_in_chunks(rt: Runtime, patient_ids: list[str], as_of: str | None) -> None:
    # the patients of one batch are reassessed together: one transaction and one timeline query
    # for the lot costs a few ms a patient, where a task per patient cost tens (bench/ingest.py)
    chunk = rt.settings.reassess_chunk
    for i in range(0, len(patient_ids), chunk):
        reassess_chunk.delay(patient_ids[i:i + chunk], as_of, True)


@contextmanager
def burst(rt: Runtime) -> Iterator[None]:
    """The batches of one payload are one burst: each touched patient is reassessed once, after
    the last batch, not once per batch with part of the payload stored.

    With Redis the debounce keys do this (request_reassessment). Without (the embedded mode, tasks
    run eagerly) the reassessments requested inside the block are collected here and requested
    once when it ends; if it fails they are not, and the patients stay dirty for the sweeper."""
    if rt.redis is not None or _BURST.get() is not None:
        yield
        return
    pending: dict[str | None, set[str]] = {}
    token = _BURST.set(pending)
    try:
        yield
    finally:
        _BURST.reset(token)
    for as_of, patients in pending.items():
        _reassess_in_chunks(rt, sorted(patients), as_of)


def enqueue_due_notifications(rt: Runtime) -> int:
    n = 0
    if rt.settings.webhook_url:
        ids = notify.due_notifications(rt, utcnow())
        for outbox_id in ids:
            deliver_notification.delay(outbox_id)
        n = len(ids)
    # webhook subscriptions: fan the outbox out to them, then one task per due delivery
    webhooks.fan_out(rt)
    deliveries = webhooks.due(rt)
    for delivery_id in deliveries:
        deliver_webhook.delay(delivery_id)
    return n + len(deliveries)


def sweep_once(rt: Runtime) -> dict[str, int]:
    """Re-drive work whose queue message may be lost (Redis keeps nothing on disk here)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=rt.settings.stale_after_s)
    with session(rt.engine) as s:
        inbox_ids = repo.pending_inbox(s, older_than=cutoff, limit=5000)
        stale_patients = repo.stale_dirty_patients(s, older_than=cutoff, limit=50_000)
        unfinished = repo.unfinished_nightly_runs(s, started_before=cutoff)
    for inbox_id in inbox_ids:
        ingest_batch.delay(inbox_id)
    chunk = rt.settings.reassess_chunk
    for i in range(0, len(stale_patients), chunk):
        reassess_chunk.delay(stale_patients[i:i + chunk])
    redriven = 0
    for as_of in unfinished:
        redriven += redrive_nightly(rt, as_of)
    unsnoozed = expire_snoozes(rt, now)
    notes = enqueue_due_notifications(rt)
    with session(rt.engine) as s:  # ended page sessions (logged out, expired, idle) are not kept
        purged = user_sessions.purge_ended(s, now, timedelta(seconds=rt.settings.session_idle_timeout_s))
    counts = {"inbox": len(inbox_ids), "patients": len(stale_patients), "nightly_patients": redriven,
              "unsnoozed": unsnoozed, "notifications": notes, "sessions_purged": purged}
    if any(counts.values()):
        log.info("sweep re-drove %s", counts)
    return counts


def expire_snoozes(rt: Runtime, now: datetime) -> int:
    """A snooze is a silence with an end time: it expires by the clock, here, without waiting for the
    patient's next reassessment (audit row; a notification when the alert fires again)."""
    total = 0
    while True:
        with session(rt.engine) as s:
            n = repo.expire_snoozes(s, now, limit=SNOOZE_BATCH)
        if n == 0:
            return total
        total += n


def redrive_nightly(rt: Runtime, as_of: date) -> int:
    """Patients a nightly run has not reached yet get their chunk again; a complete run is closed."""
    with session(rt.engine) as s:
        run = repo.nightly_run(s, as_of)
        behind = repo.patients_owed(s, as_of, run["mode"] if run else None, limit=50_000)
        if not behind:
            repo.finish_nightly_run(s, as_of, utcnow())
            return 0
    chunk = rt.settings.reassess_chunk
    for i in range(0, len(behind), chunk):
        reassess_chunk.delay(behind[i:i + chunk], as_of.isoformat())
    return len(behind)


def run_nightly(rt: Runtime, as_of: date, owner: str, full: bool = False) -> bool:
    """Claim the night's run (once per date, whichever scheduler is first) and fan it out: the due
    patients, or every patient on the weekly safety-net day or when `full`."""
    mode = nightly_mode(rt, as_of, full)
    with session(rt.engine) as s:
        claimed = repo.claim_nightly_run(s, as_of, owner, utcnow(), mode=mode)
    if not claimed:
        log.info("nightly run for %s already claimed; nothing to do", as_of)
        return False
    reassess_all.delay(as_of.isoformat(), mode)
    if rt.settings.embedded:
        # the fan-out has run eagerly, here: close the run now (the sweeper closes a queued one)
        with session(rt.engine) as s:
            repo.finish_nightly_run(s, as_of, utcnow())
    return True
