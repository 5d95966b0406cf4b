"""Reassessment: load timelines -> monitor.assess -> reconcile alerts -> save, one chunk per transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from monitor import assess
from monitor.alerts import ReconcileResult
from storage import repository as repo
from storage.db import session
from tasks.ingest import utcnow
from tasks.runtime import Runtime

log = logging.getLogger("imn.reassess")


@dataclass
class ReassessCounts:
    patients: int = 0
    fired: int = 0
    updated: int = 0
    escalated: int = 0
    resolved: int = 0
    reopened: int = 0

    def add(self, other: ReassessCounts) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def add_patient(self, r: ReconcileResult) -> None:
        """One patient reconciled: its changes, under the kinds counted here (every field but patients)."""
        self.patients += 1
        for k in vars(self):
            if k != "patients":
                setattr(self, k, getattr(self, k) + getattr(r, k))


# timelines loaded and assessed at a time within a chunk: only the assessments are kept, so a worker's
# peak memory follows this, not the chunk size (500 patients' timelines at once: ~85 MiB more)
LOAD_BATCH = 100


def reassess(rt: Runtime, patient_ids: list[str], as_of: date, skip_current: bool = False,
             keep_timelines: bool = True) -> ReassessCounts:
    """Assess the patients as of `as_of` and reconcile their alerts, in one transaction.

    skip_current (the nightly fan-out): a patient already assessed for this as_of with nothing
    stored since would get the same assessment again (assess is pure), so it is skipped.
    keep_timelines=False (the nightly run): the timelines loaded are not kept in the process's
    cache (a nightly pass meets each patient once; the cache serves bursts of new results).
    """
    counts = ReassessCounts()
    if not patient_ids:
        return counts
    now = utcnow()
    with session(rt.engine) as s:
        marks = repo.patient_marks(s, patient_ids)
        if skip_current:
            patient_ids = [p for p in patient_ids if p in marks and (marks[p][0] is not None or marks[p][1] != as_of)]
        assessed = []
        for i in range(0, len(patient_ids), LOAD_BATCH):
            part = patient_ids[i:i + LOAD_BATCH]
            timelines = rt.timelines.load(s, part, keep=keep_timelines)
            assessed += [assess(timelines[pid], as_of) for pid in part if pid in timelines]
            del timelines
        results = repo.reconcile_many(s, {a.patient_id: list(a.findings) for a in assessed}, as_of, now)
        for pid, r in results.items():
            dirty_since = marks.get(pid, (None, None))[0]
            if dirty_since is not None:
                repo.clear_dirty(s, pid, dirty_since)
            counts.add_patient(r)
        repo.save_assessments(s, assessed, now)
    log.info("reassessed %d patients as of %s: %s", counts.patients, as_of, vars(counts))
    return counts


def nightly_mode(rt: Runtime, as_of: date, full: bool = False) -> str:
    """"full" (every active patient) when forced or on the weekly safety-net day
    (IMN_FULL_REASSESS_WEEKDAY), else "due" (only the patients whose assessment may have changed)."""
    return "full" if full or rt.settings.full_night(as_of) else "due"


def nightly_chunks(rt: Runtime, as_of: date, mode: str, chunk: int):  # type: ignore[no-untyped-def]
    """The patients of a nightly run, in chunks: every active patient ("full"), or the due ones.

    Due: never assessed, valid_until reached (<= as_of), or dirty (new events). Without a new event
    an assessment is the same on every day before its valid_until (monitor.assess), so skipping the
    others changes no alert (tests/unit/test_due_nightly.py proves it on the synthetic cohort)."""
    if mode == "full":
        yield from all_patient_chunks(rt, chunk)
        return
    yield from due_patient_chunks(rt, as_of, chunk)


def due_patient_chunks(rt: Runtime, as_of: date, chunk: int):  # type: ignore[no-untyped-def]
    """The patients due on as_of in chunks, by keyset pagination over indexes (storage.patients)."""
    cursor: repo.DueCursor | None = repo.DUE_START
    while cursor is not None:
        with session(rt.engine) as s:
            ids, cursor = repo.due_patient_page(s, as_of, cursor, chunk)
        if ids:
            yield ids


def all_patient_chunks(rt: Runtime, chunk: int):  # type: ignore[no-untyped-def]
    """Active patient ids in chunks, by keyset pagination (constant memory over any cohort)."""
    after: str | None = None
    while True:
        with session(rt.engine) as s:
            ids = repo.active_patient_ids(s, after=after, limit=chunk)
        if not ids:
            return
        yield ids
        after = ids[-1]
