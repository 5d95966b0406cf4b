"""Use case: the clinic outcome report as of a date (monitor.outcome_report over stored outcomes).

    report = clinic_report(rt, as_of=None)   # as of the latest nightly assessment by default

Gathering (storage/reports.py): every patient's course outcomes as stored by the nightly assessment
(`patients.summary["courses"]`) when that assessment is for `as_of` and nothing is pending; the other
patients (another date, new events since, or assessed before outcomes were stored) are recomputed
from their timelines in chunks (monitor.outcomes.outcomes_as_of: the same computation). Alerts are
dated by the clinical date they first fired for. The last report is kept in memory while nothing it
was built from has changed (storage.reports.report_stamp), so the web page and its plot share one.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date
from typing import Any

from monitor.outcome_report import AlertMark, OutcomeReport, build_report
from monitor.outcomes import CourseOutcome, outcomes_as_of
from storage import reports
from storage.db import session
from storage.event_store import load_timelines
from tasks.runtime import Runtime

log = logging.getLogger("imn.report")
RECOMPUTE_CHUNK = 500  # patients per timeline load when outcomes must be recomputed

_cache_lock = threading.Lock()
_cache: dict[tuple[Any, ...], OutcomeReport] = {}


def report_date(rt: Runtime, as_of: date | None = None) -> date:
    """`as_of`, else the date of the latest stored assessment, else today."""
    if as_of is not None:
        return as_of
    with session(rt.engine, write=False) as s:
        return reports.latest_assessment_date(s) or rt.settings.today()


def gather_outcomes(rt: Runtime, as_of: date) -> tuple[dict[str, list[CourseOutcome]], dict[str, int]]:
    """Every patient's course outcomes as of `as_of`, and how many were read vs recomputed."""
    with session(rt.engine, write=False) as s:
        stored, stale = reports.stored_course_outcomes(s, as_of)
    outcomes = {pid: [CourseOutcome.from_dict(d) for d in rows] for pid, rows in stored.items()}
    for i in range(0, len(stale), RECOMPUTE_CHUNK):
        with session(rt.engine, write=False) as s:
            timelines = load_timelines(s, stale[i:i + RECOMPUTE_CHUNK])
        for pid, timeline in timelines.items():
            outcomes[pid] = list(outcomes_as_of(timeline, as_of))
    return outcomes, {"stored": len(stored), "recomputed": len(stale)}


def gather_alerts(rt: Runtime) -> list[AlertMark]:
    with session(rt.engine, write=False) as s:
        return [AlertMark(pid, day, severity) for pid, day, severity in reports.alert_marks(s)]


def clinic_report(rt: Runtime, as_of: date | None = None, use_cache: bool = True) -> OutcomeReport:
    """The outcome report as of `as_of` (default: the latest nightly assessment's date)."""
    day = report_date(rt, as_of)
    with session(rt.engine, write=False) as s:
        key = (str(rt.engine.url), day, reports.report_stamp(s))
    if use_cache:
        with _cache_lock:
            held = _cache.get(key)
        if held is not None:
            return held
    t0 = time.perf_counter()
    outcomes, sources = gather_outcomes(rt, day)
    t1 = time.perf_counter()
    report = build_report(outcomes, gather_alerts(rt), day, sources)
    log.info("outcome report as of %s: %d patients (%s) gathered in %.2f s, built in %.2f s", day,
             report.patients, sources, t1 - t0, time.perf_counter() - t1)
    with _cache_lock:
        _cache.clear()  # one report kept: the latest
        _cache[key] = report
    return report
