"""Reassessment: load timelines -> monitor.assess -> reconcile alerts -> save, one chunk per transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from monitor import assess
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

    def add(self, other: "ReassessCounts") -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def reassess(rt: Runtime, patient_ids: list[str], as_of: date) -> ReassessCounts:
    """Assess the patients as of `as_of` and reconcile their alerts, in one transaction."""
    counts = ReassessCounts()
    if not patient_ids:
        return counts
    now = utcnow()
    with session(rt.engine) as s:
        dirty = repo.dirty_since_of(s, patient_ids)
        timelines = repo.load_timelines(s, patient_ids)
        for pid in patient_ids:
            timeline = timelines.get(pid)
            if timeline is None:
                continue
            assessment = assess(timeline, as_of)
            r = repo.reconcile_alerts(s, pid, list(assessment.findings), as_of, now)
            repo.save_assessment(s, assessment, now)
            if dirty.get(pid) is not None:
                repo.clear_dirty(s, pid, dirty[pid])
            counts.patients += 1
            counts.fired += r.fired
            counts.updated += r.updated
            counts.escalated += r.escalated
            counts.resolved += r.resolved
            counts.reopened += r.reopened
    log.info("reassessed %d patients as of %s: %s", counts.patients, as_of, vars(counts))
    return counts


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
