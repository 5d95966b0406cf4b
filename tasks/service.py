"""The use cases, each written once. Every entry point calls these: the CLI (cli/main.py), the HTTP
feed (feed/routes/*, feed/web.py), the MLLP listener (cli/mllp.py) and the demo (cli/demo.py).

- submit: store a payload in the inbox (durable first), skip what is already processed, hand the rest
  to `ingest_batch` (queued with a broker; run here, eagerly, in the embedded mode: same code);
- reassess one patient or everyone as of a date;
- act on an alert (acknowledge, snooze, resolve, assign, comment);
- a patient's summary: assessed as of the date asked, else the patient's last assessment, else today.

The runtime comes from tasks.bootstrap; nothing here parses arguments or renders anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from sqlalchemy.orm import Session

from monitor import assess
from monitor.assess import Assessment
from monitor.kinetics import TiterKinetics, titer_kinetics
from monitor.timeline import Timeline
from storage import repository as repo
from storage import views
from storage.db import session
from tasks import app as celery_app
from tasks import jobs
from tasks.ingest import Accepted, accept_file
from tasks.reassess import ReassessCounts, nightly_mode, reassess
from tasks.runtime import Runtime

log = logging.getLogger("imn.service")
COUNT_KEYS = ("accepted", "duplicate", "corrected", "retracted", "quarantined", "patients")

# --------------------------------------------------------------------------------------- submit


@dataclass
class Submitted:
    """What a submission stored, and what of it goes on to processing."""

    batches: list[Accepted] = field(default_factory=list)  # one per inbox row, in order
    todo: list[int] = field(default_factory=list)  # inbox ids handed to processing
    repeated: list[int] = field(default_factory=list)  # the same bytes, already processed before

    @property
    def inbox_ids(self) -> list[int]:
        return list(dict.fromkeys(b.inbox_id for b in self.batches))


def store(rt: Runtime, payloads: Iterable[tuple[IO[bytes], str]], fmt: str) -> Submitted:
    """Store each (stream, source name) in the inbox, batch by batch as it is read; identical bytes
    accepted before are that earlier inbox row. Whatever is not yet processed is `todo`."""
    out = Submitted()
    for f, source_name in payloads:
        # even an unreadable payload is stored and quarantined with its reason, never refused unseen
        out.batches += accept_file(rt, f, fmt, source_name)
    ids = out.inbox_ids
    with session(rt.engine, write=False) as s:
        done = {r["id"] for r in views.inbox_status(s, ids) if r["state"] == "processed"}
    out.repeated = [i for i in ids if i in done]
    out.todo = [i for i in ids if i not in done]
    return out


def process(rt: Runtime, inbox_ids: list[int], as_of: date | None = None) -> None:
    """Hand stored inbox rows to `ingest_batch`: enqueued for the workers with a broker, run here
    (Celery's eager mode) without one. The rows of one submission are one burst: each patient they
    touch is reassessed once."""
    if not inbox_ids:
        return
    celery_app.ensure(rt.settings)
    day = as_of.isoformat() if as_of else None
    with jobs.burst(rt):
        for inbox_id in inbox_ids:
            jobs.ingest_batch.delay(inbox_id, day)


def process_or_leave(rt: Runtime, inbox_ids: list[int], as_of: date | None = None) -> bool:
    """`process`, for callers that have already answered their sender (the HTTP 202, the MLLP ACK):
    a failure is logged and the rows stay unprocessed for the sweeper, which re-drives them."""
    try:
        process(rt, inbox_ids, as_of)
        return True
    except Exception:  # any failure: stored is stored, the sweeper finishes the work
        log.exception("processing inbox %s failed; it stays pending for the sweeper", inbox_ids)
        return False


def submit(rt: Runtime, payloads: Iterable[tuple[IO[bytes], str]], fmt: str, as_of: date | None = None) -> Submitted:
    """Store, skip what is already processed, process the rest (see `store` and `process`)."""
    out = store(rt, payloads, fmt)
    process(rt, out.todo, as_of)
    return out


def ingest_counts(rt: Runtime, inbox_ids: list[int], timeout_s: float = 0.0) -> dict[str, Any]:
    """The summed counts of inbox rows, waiting up to timeout_s for them to be processed (with a
    broker, workers process them; embedded, they are processed when `process` returns). Rows still
    unprocessed are counted as `still_queued_batches`; `patients` is summed over the rows."""
    deadline = time.monotonic() + timeout_s
    while True:
        with session(rt.engine, write=False) as s:
            rows = views.inbox_status(s, inbox_ids)
        if all(r["state"] == "processed" for r in rows) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    total: dict[str, Any] = dict.fromkeys(COUNT_KEYS, 0)
    for r in rows:
        for k, v in (r.get("counts") or {}).items():
            total[k] = total.get(k, 0) + v
    pending = [r["id"] for r in rows if r["state"] != "processed"]
    if pending:
        total["still_queued_batches"] = len(pending)
    return total


# ------------------------------------------------------------------------------------- reassess


def reassess_patient(rt: Runtime, patient_id: str, as_of: date | None = None) -> ReassessCounts:
    """Reassess one patient here and now (the caller waits for what changed), then send the
    notifications due (queued with a broker, delivered here without)."""
    counts = reassess(rt, [patient_id], as_of or rt.settings.today())
    celery_app.ensure(rt.settings)
    jobs.enqueue_due_notifications(rt)
    return counts


def reassess_everyone(rt: Runtime, as_of: date | None = None, full: bool = False) -> ReassessCounts | None:
    """The nightly run's patients as of a date (the due ones; every active patient when `full` or on
    the safety-net day, tasks.reassess.nightly_mode), in chunks: what changed when it ran here
    (embedded), None when it was queued for the workers."""
    celery_app.ensure(rt.settings)
    when = as_of or rt.settings.today()
    sent = jobs.reassess_all.delay(when.isoformat(), nightly_mode(rt, when, full))
    if rt.settings.embedded:
        done = dict(sent.result)
        done.pop("chunks", None)
        return ReassessCounts(**done)
    return None


def run_nightly(rt: Runtime, as_of: date, owner: str, full: bool = False) -> bool:
    """The nightly run for a date, claimed once whoever asks (scheduler, demo); `full`: every patient."""
    celery_app.ensure(rt.settings)
    return jobs.run_nightly(rt, as_of, owner, full)


# --------------------------------------------------------------------------------------- alerts

# a clinician's actions on an alert, each audited with who did it (storage applies monitor.alerts)
ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "acknowledge": repo.acknowledge,
    "snooze": repo.snooze,
    "resolve": repo.resolve,
    "assign": repo.assign,
    "comment": repo.comment,
}


def act(rt: Runtime, alert_id: int, action: str, **kwargs: Any) -> dict[str, Any]:
    """Apply a clinician's action; the alert as it is after it. Raises repo.AlertNotFound or
    repo.AlertActionError (what the alert's state does not allow, with the reason).

    Notifications an action causes (inhibited alerts it releases) are in the outbox with it; the
    sweeper and the next reassessment send them."""
    with session(rt.engine) as s:
        return ACTIONS[action](s, alert_id, **kwargs)


# -------------------------------------------------------------------------------------- patients


@dataclass
class PatientSummary:
    stored: dict[str, Any]  # storage's view: open alerts, event counts, last assessment
    timeline: Timeline
    as_of: date
    assessment: Assessment
    kinetics: TiterKinetics


def default_as_of(rt: Runtime, stored: dict[str, Any]) -> date:
    """The date a patient is shown as of when none is asked: the date of the patient's last
    assessment (what its alerts reflect), else today."""
    last = stored.get("last_as_of")
    if isinstance(last, str):
        return date.fromisoformat(last)
    return last or rt.settings.today()


def patient_summary(rt: Runtime, patient_id: str, as_of: date | None = None,
                    s: Session | None = None) -> PatientSummary | None:
    """The patient assessed from the stored timeline as of `as_of` (default_as_of when None); None
    for an unknown patient. `s`: a read session the caller already holds (a request's)."""
    if s is None:
        with session(rt.engine, write=False) as own:
            return patient_summary(rt, patient_id, as_of, own)
    stored = views.patient_view(s, patient_id, stored_summary=False)  # assessed anew below
    if stored is None:
        return None
    timeline = repo.load_timeline(s, patient_id)
    day = as_of or default_as_of(rt, stored)
    return PatientSummary(stored, timeline, day, assess(timeline, day), titer_kinetics(timeline, day))


def patient_exists(rt: Runtime, patient_id: str) -> bool:
    with session(rt.engine, write=False) as s:
        return views.patient_view(s, patient_id) is not None


def send_due_notifications(rt: Runtime) -> int:
    """Notifications (and webhook deliveries) that are due: queued, or delivered here when embedded."""
    celery_app.ensure(rt.settings)
    return jobs.enqueue_due_notifications(rt)
