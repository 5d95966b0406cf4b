"""The due-only nightly run changes nothing: proof on the synthetic cohort, pure and in memory.

Every archetype of the synthetic cohort (one patient each) lives through three years, one nightly run
a day. Results arrive on their clinical date (a lab on its effective date, a medication record on its
start date) and mark the patient dirty, as store_events does. Two nightly runs are compared:
- full: every patient is assessed every night and its alerts reconciled (monitor.alerts.reconcile);
- due-only: a patient is assessed only when it is dirty or its stored valid_until is reached
  (tasks.reassess.nightly_chunks, without the weekly safety net).
Both see the same timeline (only the events arrived by that night: no event dated later, so
valid_until rests on the rules' own boundaries, not on a look-ahead), and reconcile at the same
wall-clock time. They must make exactly the same changes (every transition, its date, the alert as
it ends, its audit details) and the same notifications, and end with the same alerts. The one field
allowed to differ is Alert.as_of, the date an alert was last seen: a patient skipped is not looked at.
On the nights the due-only run skips a patient, the findings, remission state and risk category the
full run computes must equal those of the assessment the due-only run holds.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from monitor.alerts import Alert, Change, Notification, reconcile
from monitor.assess import Assessment, assess
from monitor.events import parse_event
from monitor.timeline import Timeline
from synthetic import ARCHETYPES, generate_patient

START = date(2023, 1, 1)
YEARS = 3.0
NIGHTS = round(365.25 * YEARS) + 1
NIGHTLY_AT = time(2, 0, tzinfo=UTC)


@dataclass
class Patient:
    timeline: Timeline
    arrivals: list[date]  # the clinical date of every event, sorted: the day it reaches us


@dataclass
class Run:
    """One nightly strategy's state and what it did, per patient."""

    alerts: dict[str, list[Alert]] = field(default_factory=dict)
    changes: list[tuple[date, str, Change]] = field(default_factory=list)
    notifications: list[tuple[date, str, Notification]] = field(default_factory=list)
    assessed: int = 0

    def night(self, pid: str, a: Assessment, now: datetime) -> None:
        self.assessed += 1
        ch = reconcile(pid, self.alerts.get(pid, []), a.findings, a.as_of, now)
        by_fp = {x.fingerprint: x for x in self.alerts.get(pid, [])}
        by_fp.update({x.fingerprint: x for x in ch.seen_again})
        by_fp.update(ch.final())
        self.alerts[pid] = list(by_fp.values())
        self.changes += [(a.as_of, pid, c) for c in ch.changes]
        self.notifications += [(a.as_of, pid, n) for n in ch.notifications]


@functools.cache
def cohort() -> dict[str, Patient]:
    out = {}
    for k, name in enumerate(sorted(ARCHETYPES)):
        events = [parse_event(e) for e in generate_patient(k, START, YEARS, archetype=name)]
        timeline = Timeline.build(events[0].patient_id, events)
        arrivals = sorted([r.effective_date for r in (*timeline.labs, *timeline.preliminary)]
                          + [m.start for m in timeline.medications])
        out[timeline.patient_id] = Patient(timeline, arrivals)
    return out


def _arrived(p: Patient, after: date | None, until: date) -> bool:
    """Whether an event reached us in (after, until]: store_events would have marked the patient dirty."""
    return after is None or bisect_right(p.arrivals, until) > bisect_right(p.arrivals, after)


def _state(a: Assessment) -> tuple[object, ...]:
    return a.findings, a.remission.state, a.risk.category


def _without_as_of(alerts: dict[str, list[Alert]]) -> dict[str, list[Alert]]:
    return {pid: sorted((replace(x, as_of=START) for x in xs), key=lambda x: x.fingerprint)
            for pid, xs in alerts.items()}


@functools.cache
def simulate() -> tuple[Run, Run, dict[str, list[tuple[date, date]]]]:
    full, due = Run(), Run()
    held: dict[str, Assessment] = {}  # the due-only run's stored assessment (patients.valid_until)
    skipped: dict[str, list[tuple[date, date]]] = {pid: [] for pid in cohort()}
    for n in range(NIGHTS):
        day = START + timedelta(days=n)
        now = datetime.combine(day, NIGHTLY_AT)
        for pid, p in cohort().items():
            a = assess(p.timeline.until(day), day)  # what the full run sees tonight
            full.night(pid, a, now)
            last = held.get(pid)
            dirty = _arrived(p, last.as_of if last else None, day)
            if last is None or dirty or last.valid_until <= day:
                due.night(pid, a, now)
                held[pid] = a
            else:
                skipped[pid].append((day, last.as_of))
                assert _state(a) == _state(last), (pid, day, last.as_of, last.valid_until)
    return full, due, skipped


def test_the_cohort_covers_every_archetype_and_the_simulation_skips_most_nights() -> None:
    full, due, skipped = simulate()
    assert len(cohort()) == len(ARCHETYPES)
    assert full.assessed == NIGHTS * len(ARCHETYPES)
    # the proof is only worth something if the due-only run really skips: most patient-nights here
    assert due.assessed < full.assessed * 0.35, (due.assessed, full.assessed)
    assert all(skipped.values()), [pid for pid, s in skipped.items() if not s]


def test_due_only_and_full_nightly_make_the_same_transitions_on_the_same_dates() -> None:
    full, due, _ = simulate()
    assert len(full.changes) > 0
    assert {c.action for _, _, c in full.changes} >= {"fired", "resolved"}
    assert due.changes == full.changes


def test_due_only_and_full_nightly_send_the_same_notifications() -> None:
    full, due, _ = simulate()
    assert len(full.notifications) > 0
    assert due.notifications == full.notifications


def test_due_only_and_full_nightly_end_with_the_same_alerts_but_for_the_last_seen_date() -> None:
    full, due, _ = simulate()
    assert sum(map(len, full.alerts.values())) > 0
    assert _without_as_of(due.alerts) == _without_as_of(full.alerts)


@pytest.mark.parametrize("shift", [1, 7])
def test_the_comparison_catches_a_run_that_skips_a_due_night(shift: int) -> None:
    """The check can fail: a due-only run that looks `shift` days after valid_until misses changes."""
    p = next(p for pid, p in cohort().items() if pid.endswith("-ponti"))
    pid = p.timeline.patient_id
    right, late = Run(), Run()
    held: Assessment | None = None
    for n in range(NIGHTS):
        day = START + timedelta(days=n)
        now = datetime.combine(day, NIGHTLY_AT)
        a = assess(p.timeline.until(day), day)
        right.night(pid, a, now)
        if held is None or _arrived(p, held.as_of, day) or held.valid_until <= day - timedelta(days=shift):
            late.night(pid, a, now)
            held = a
    assert late.changes != right.changes


# ---- the weekly safety net (IMN_FULL_REASSESS_WEEKDAY) -------------------------------------------


def test_the_full_night_falls_on_the_configured_weekday_daily_or_never() -> None:
    from tasks.settings import Settings

    week = [date(2026, 11, 30) + timedelta(days=i) for i in range(7)]  # Monday .. Sunday
    assert [Settings(_env_file=None).full_night(d) for d in week] == [False] * 6 + [True]  # default: sun
    assert [Settings(full_reassess_weekday="Wed", _env_file=None).full_night(d) for d in week] == \
        [False, False, True, False, False, False, False]
    assert all(Settings(full_reassess_weekday="daily", _env_file=None).full_night(d) for d in week)
    assert not any(Settings(full_reassess_weekday="never", _env_file=None).full_night(d) for d in week)
    with pytest.raises(ValueError, match="full_reassess_weekday"):
        Settings(full_reassess_weekday="sunday", _env_file=None)
