"""Assessment.valid_until (issue 14): until that day, with no new event, the assessment stays the same.

- Property: for random timelines and dates, assessing on any day d with as_of <= d < valid_until gives
  what valid_until promises (monitor.validity.promised: findings with fingerprint, severity, message
  and evidence; remission; risk; active therapies; anti-CD20 courses) exactly as on as_of.
- Every synthetic archetype over its three years, walked from one valid_until to the next.
- Each rule's boundary, on both sides: the findings on the day before equal those on as_of, and on the
  boundary day they do change (the boundary is the first day of the change, not merely a safe one).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.assess import assess
from monitor.events import parse_event
from monitor.risk import risk_next_change
from monitor.rules import (
    RULES,
    albumin_low_thrombosis,
    cni_trough_high,
    course_non_response,
    csa_renal_impairment,
    csa_trough_low,
    ctx_cumulative_dose,
    cytopenia,
    egfr_decline,
    immunological_relapse,
    monitoring_overdue,
    relapse,
    rtx_b_cell_not_depleted,
    rtx_non_response,
    rtx_redose_due,
    tac_trough_low,
    titer_falling_supportive,
    titer_rising,
)
from monitor.timeline import Timeline
from monitor.validity import NEVER, next_administration, next_event, promised
from synthetic.archetypes import ARCHETYPES
from synthetic.cohort import generate_patient
from tests.strategies import FIRST_DAY, LAST_DAY, events, timelines
from tests.unit.rules.builders import PID, AnyEvent, Day, assess_on, context, day, lab, med

ONE = timedelta(days=1)


# ---- the property ------------------------------------------------------------------------------------
def check_span(tl: Timeline, as_of: date, data: Any) -> None:
    held = assess(tl, as_of)
    assert held.valid_until > as_of
    last = min(held.valid_until - ONE, as_of + timedelta(days=3 * 365))
    # the last valid day (where a boundary one day late would show) and one drawn anywhere before it
    for d in {last, data.draw(st.dates(as_of, last), label="d")}:
        now = assess(tl, d)
        assert promised(now) == promised(held), (as_of, d, held.valid_until)
        assert now.valid_until == held.valid_until, (as_of, d)  # an assessment on d is as valid


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines(), st.dates(FIRST_DAY, LAST_DAY), st.data())
def test_assessment_is_the_same_on_every_day_before_valid_until(tl: Timeline, as_of: date, data: Any) -> None:
    check_span(tl, as_of, data)


DENSE_FROM, DENSE_TO = date(2024, 1, 1), date(2025, 6, 30)


@st.composite
def dense_timelines(draw: st.DrawFn) -> Timeline:
    """Up to 60 events of one patient within 18 months: courses, troughs, counts and windows overlap
    far more often than in timelines() (8 years), which is where boundaries meet."""
    evs = draw(st.lists(events(PID, on=st.dates(DENSE_FROM, DENSE_TO)), min_size=5, max_size=60))
    return Timeline.build(PID, evs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_timelines(), st.dates(DENSE_FROM, DENSE_TO + timedelta(days=400)), st.data())
def test_dense_timelines_are_the_same_on_every_day_before_valid_until(tl: Timeline, as_of: date,
                                                                      data: Any) -> None:
    check_span(tl, as_of, data)


# ---- every archetype ---------------------------------------------------------------------------------
START = date(2023, 1, 1)
END = START + timedelta(days=round(365.25 * 3))


def _checked_days(as_of: date, until: date) -> list[date]:
    """The days of [as_of + 1, until) checked: all of a short span; of a longer one the first, the
    last and three spread between (deterministic), which catches a boundary named late by any
    amount (the last day) or a change that comes and goes (the days between)."""
    span = (until - as_of).days
    if span <= 8:
        return [as_of + timedelta(days=k) for k in range(1, span)]
    return [as_of + timedelta(days=k) for k in (1, span // 4, span // 2, 3 * span // 4, span - 1)]


def test_every_archetype_is_the_same_until_valid_until_over_three_years() -> None:
    # one patient of each archetype (ARCHETYPES: 24 courses), every due night over three years; the
    # days between are sampled as _checked_days says (bench/validity.py --verify checks every night
    # of a cohort: 200 patients, 213,413 nights, all equal)
    due = nights = 0
    for k, name in enumerate(ARCHETYPES):
        events = [parse_event(r) for r in generate_patient(30_000 + k, START, archetype=name)]
        tl = Timeline.build(events[0].patient_id, events)
        as_of = min([r.effective_date for r in tl.labs] + [m.start for m in tl.medications])
        nights += (END - as_of).days + 1
        while as_of <= END:
            held = assess(tl, as_of)
            due += 1
            until = min(held.valid_until, END + ONE)
            for d in _checked_days(as_of, until):
                now = assess(tl, d)
                assert promised(now) == promised(held), (name, as_of, d, held.valid_until)
                # and valid_until itself stays put: so an assessment made on any day of the span
                # (not only on the due night) is valid exactly as long
                assert now.valid_until == held.valid_until, (name, as_of, d)
            as_of = until
    # the point of valid_until: most nights are not due (measured: see bench/validity.py)
    assert due < nights * 0.2, (due, nights)


# ---- the contract ------------------------------------------------------------------------------------
def test_every_rule_declares_its_next_boundary() -> None:
    assert all(callable(getattr(rule, "next_change", None)) for rule in RULES)


def test_a_timeline_without_dated_inputs_is_valid_until_a_new_event() -> None:
    events = [lab(PID, "proteinuria_24h", 2.0, "g/d", 0), lab(PID, "anti_pla2r", 5.0, "RU/mL", 0)]
    assert assess_on(events, 10).valid_until == NEVER


def test_valid_until_stops_at_the_next_event_already_in_the_timeline() -> None:
    events = [lab(PID, "proteinuria_24h", 2.0, "g/d", 0), lab(PID, "proteinuria_24h", 5.0, "g/d", 40)]
    assert assess_on(events, 10).valid_until == day(40)
    assert next_event(Timeline.build(PID, events), day(40)) is None


def test_the_next_dose_of_a_weekly_anti_cd20_record_is_a_boundary() -> None:
    weekly = med(PID, "rituximab", 0, 375, "mg/m2", "qw", end=21)
    tl = Timeline.build(PID, [weekly])
    assert next_administration(tl, day(3)) == day(7)
    assert next_administration(tl, day(14)) == day(21)
    assert next_administration(tl, day(21)) is None  # the record's last dose
    assert assess(tl, day(3)).courses != assess(tl, day(7)).courses


def test_a_record_stopping_is_a_boundary_for_active_therapies() -> None:
    events = [med(PID, "ace_inhibitor", 0, 10, "mg", "qd", end=50)]
    a = assess_on(events, 10)
    assert a.valid_until == day(51)
    assert assess_on(events, 50).active_therapies == a.active_therapies != assess_on(events, 51).active_therapies


# ---- each rule's boundary, on both sides --------------------------------------------------------------
def findings(module: Any, events: list[AnyEvent], on: Day) -> list[tuple[str, str, str, Any]]:
    return [(f.fingerprint, f.severity, f.message, f.evidence) for f in assess_on(events, on).findings
            if f.rule == module.RULE_ID]


def boundary(module: Any, events: list[AnyEvent], as_of: Day, expected: Day) -> None:
    """The rule names `expected` on as_of; its findings on the day before are as_of's; on `expected`
    they differ."""
    assert module.next_change(context(events, as_of)) == day(expected)
    held = findings(module, events, as_of)
    assert findings(module, events, day(expected) - ONE) == held
    assert findings(module, events, expected) != held


def upd(value: float, on: int) -> AnyEvent:
    return lab(PID, "proteinuria_24h", value, "g/d", on)


def titer(value: float, on: int) -> AnyEvent:
    return lab(PID, "anti_pla2r", value, "RU/mL", on)


def test_rules_read_only_results_have_no_boundary() -> None:
    # a relapse, a returning and rising titer: none of it moves without a new result
    events = [med(PID, "rituximab", 0, 1000, "mg"), upd(8.0, -10), upd(2.0, 100), upd(2.0, 110),
              upd(5.0, 200), upd(5.2, 210), titer(80, -10), titer(5, 100), titer(30, 200), titer(60, 210)]
    ctx = context(events, 220)
    for module in (relapse, immunological_relapse, titer_rising, rtx_b_cell_not_depleted, titer_falling_supportive):
        assert module.next_change(ctx) is None, module.RULE_ID
    assert {f.rule for f in assess_on(events, 220).findings} >= {"relapse", "immunological_relapse", "titer_rising"}


def test_csa_trough_low_ends_the_day_after_cyclosporine_stops() -> None:
    events = [med(PID, "cyclosporine", 0, 150, "mg", "bid", end=100), lab(PID, "csa_trough", 60, "ng/mL", 50)]
    boundary(csa_trough_low, events, 60, 101)


def test_tac_trough_low_ends_the_day_after_tacrolimus_stops() -> None:
    events = [med(PID, "tacrolimus", 0, 2, "mg", "bid", end=100), lab(PID, "tac_trough", 2.0, "ng/mL", 50)]
    boundary(tac_trough_low, events, 60, 101)


def test_cni_trough_high_ends_the_day_after_the_drug_stops() -> None:
    events = [med(PID, "tacrolimus", 0, 2, "mg", "bid", end=100), lab(PID, "tac_trough", 14.0, "ng/mL", 50)]
    boundary(cni_trough_high, events, 60, 101)


def test_albumin_low_thrombosis_returns_the_day_after_anticoagulation_stops() -> None:
    events = [med(PID, "anticoagulant", 0, 5, "mg", "qd", end=100), lab(PID, "serum_albumin", 18, "g/L", 50)]
    boundary(albumin_low_thrombosis, events, 60, 101)


def test_csa_renal_impairment_resolves_the_day_after_cyclosporine_stops() -> None:
    events = [lab(PID, "egfr", 45, "mL/min/1.73m2", -5), med(PID, "cyclosporine", 0, 150, "mg", "bid", end=100)]
    boundary(csa_renal_impairment, events, 60, 101)


def test_egfr_decline_loses_the_cni_criterion_the_day_after_the_cni_stops() -> None:
    creatinine = [lab(PID, "serum_creatinine", v, "umol/L", on) for v, on in ((100, 0), (100, 60), (130, 120))]
    events = [med(PID, "tacrolimus", 0, 2, "mg", "bid", end=150), *creatinine]
    boundary(egfr_decline, events, 125, 151)
    # a CNI active on as_of is immunosuppression: titer_falling_supportive finds nothing either way
    assert titer_falling_supportive.next_change(context(events, 125)) is None


def mentor(start: int = 0) -> list[AnyEvent]:
    return [med(PID, "rituximab", start, 1000, "mg", route="iv"), med(PID, "rituximab", start + 14, 1000, "mg", route="iv")]


def test_rtx_non_response_is_judged_from_day_183() -> None:
    events = [upd(8.0, -10), titer(150, -10), *mentor(), upd(7.0, 120), titer(80, 120)]
    boundary(rtx_non_response, events, 100, 183)
    assert rtx_non_response.next_change(context(events, 183)) is None  # judged: only results move it


def test_rtx_redose_due_opens_on_day_183_and_lapses_on_day_241() -> None:
    events = [upd(8.0, -10), *mentor(), upd(3.0, 120)]  # fell 62%, no complete remission
    boundary(rtx_redose_due, events, 100, 183)
    boundary(rtx_redose_due, events, 200, 241)
    assert rtx_redose_due.next_change(context(events, 241)) is None


def test_course_non_response_is_judged_at_the_evaluation_point() -> None:
    events = [upd(6.0, -5), med(PID, "tacrolimus", 0, 2, "mg", "bid"), upd(5.0, 170)]
    boundary(course_non_response, events, 100, 183)


def test_course_non_response_message_changes_the_day_after_a_planned_end() -> None:
    events = [upd(6.0, -5), med(PID, "tacrolimus", 0, 2, "mg", "bid", end=250), upd(5.0, 170)]
    boundary(course_non_response, events, 200, 251)  # "still being taken" -> "last given ..."


def test_ctx_cumulative_dose_is_found_the_day_the_total_reaches_10_g() -> None:
    # 150 mg a day from day 0: 66 days give 9.9 g, the 67th (day 66) 10.05 g
    events = [med(PID, "cyclophosphamide", 0, 150, "mg", "qd", end=200)]
    boundary(ctx_cumulative_dose, events, 10, 66)
    # once found, the total grows daily while the course goes on; after its end it is final
    boundary(ctx_cumulative_dose, events, 100, 101)
    assert ctx_cumulative_dose.next_change(context(events, 201)) is None
    assert findings(ctx_cumulative_dose, events, 201) == findings(ctx_cumulative_dose, events, 400)


def test_ctx_cumulative_dose_that_never_reaches_10_g_has_no_boundary() -> None:
    events = [med(PID, "cyclophosphamide", 0, 50, "mg", "qd", end=100)]  # 5.05 g in all
    assert ctx_cumulative_dose.next_change(context(events, 10)) is None


def test_monitoring_overdue_is_found_the_day_the_result_is_overdue_and_then_stays() -> None:
    events = [med(PID, "mycophenolate", 0, 1000, "mg", "bid"), upd(6.0, 10)]
    boundary(monitoring_overdue, events, 50, 101)  # day 10 + 91: no result in the 90 days up to it
    later = monitoring_overdue.next_change(context(events, 101))
    assert later is None or later > day(101)
    assert findings(monitoring_overdue, events, 101) == findings(monitoring_overdue, events, 300)


def test_monitoring_overdue_after_an_anti_cd20_course_ends_with_its_12_months() -> None:
    events = [*mentor(), upd(6.0, 5)]
    # overdue from day 96; the course's 12 months after its last dose (day 14) end after day 379
    boundary(monitoring_overdue, events, 200, 14 + 366)


def test_cytopenia_ends_the_day_after_the_exposure_window() -> None:
    events = [med(PID, "cyclophosphamide", 0, 150, "mg", "qd", end=89), lab(PID, "wbc", 2.5, "10^9/L", 60)]
    boundary(cytopenia, events, 70, 89 + 31)


def test_risk_reasons_change_when_the_acei_response_can_be_judged() -> None:
    events = [med(PID, "ace_inhibitor", 0, 10, "mg", "qd"), upd(2.0, 10), lab(PID, "egfr", 90, "mL/min/1.73m2", 10)]
    ctx = context(events, 100)
    assert risk_next_change(ctx) == day(183)
    assert assess_on(events, 182).risk == assess_on(events, 100).risk != assess_on(events, 183).risk
    assert risk_next_change(context(events, 183)) is None


def test_the_next_event_is_dated_by_its_own_local_date() -> None:
    # 23:30 at -10:00 is the next day in UTC; Timeline.until (and so assess) reads the local date
    late = lab(PID, "proteinuria_24h", 5.0, "g/d", 0, effective_at="2025-03-01T23:30:00-10:00")
    early = lab(PID, "proteinuria_24h", 2.0, "g/d", 0, effective_at="2025-03-02T01:00:00+14:00")
    events = [lab(PID, "proteinuria_24h", 2.0, "g/d", "2025-02-01"), late, early]
    assert assess_on(events, "2025-02-20").valid_until == date(2025, 3, 1)
    assert assess_on(events, "2025-03-01").valid_until == date(2025, 3, 2)
    assert assess_on(events, "2025-03-02").valid_until == NEVER
