"""monitor.outcomes: remission, relapse and immunological remission after each course."""

from __future__ import annotations

import json

from monitor.outcomes import CourseOutcome, outcomes_as_of
from tests.unit.rules.builders import PID, assess_on, day, lab, med, timeline


def prot(d: int, v: float):  # type: ignore[no-untyped-def]
    return lab(PID, "proteinuria_24h", v, "g/d", d)


def titer(d: int, v: float, **kw):  # type: ignore[no-untyped-def]
    return lab(PID, "anti_pla2r", v, "RU/mL", d, **kw)


# nephrotic, rituximab on day 0; PR confirmed on day 100, CR on day 210, relapse from day 400;
# anti-PLA2R 100 -> 10 RU/mL by day 60
COURSE = [prot(-30, 6.0), prot(0, 6.0), med(PID, "rituximab", 0, 1000, "mg"), med(PID, "rituximab", 14, 1000, "mg"),
          prot(30, 5.5), prot(90, 3.0), prot(100, 2.8), prot(200, 0.2), prot(210, 0.2), prot(400, 5.0),
          prot(410, 5.2), titer(-10, 100), titer(60, 10)]


def by_regimen(events: list, as_of: int) -> dict[str, CourseOutcome]:
    return {o.regimen: o for o in outcomes_as_of(timeline(events), day(as_of))}


def test_course_outcome_follows_kdigo_remission_relapse_and_titer() -> None:
    o = by_regimen(COURSE, 500)["anti_cd20"]
    assert (o.start, o.line, o.agents, o.evaluable) == (day(0), 1, ("rituximab",), True)
    assert o.baseline_g_per_day == 6.0
    assert (o.remission, o.remission_kind, o.complete_remission) == (day(100), "partial", day(210))
    assert o.relapse == day(400)
    assert o.follow_up_end == day(410)  # the last proteinuria: remission is not observable after it
    assert o.exposure_end == day(500)  # alerts count to as_of
    assert (o.baseline_titer, o.immunological_remission) == (100, day(60))


def test_supportive_phase_ends_when_treatment_starts() -> None:
    o = by_regimen(COURSE, 500)["supportive"]
    assert (o.start, o.line, o.follow_up_end, o.exposure_end) == (day(-30), 0, day(0), day(0))
    assert o.evaluable and o.remission is None


def test_the_next_course_censors_the_previous_one() -> None:
    events = COURSE + [med(PID, "tacrolimus", 50, 2, "mg", frequency="bid", end=300)]
    out = by_regimen(events, 500)
    rtx, tac = out["anti_cd20"], out["tacrolimus"]
    assert rtx.follow_up_end == day(50) and rtx.remission is None and rtx.exposure_end == day(50)
    assert rtx.immunological_remission is None and rtx.titer_follow_up_end == day(50)
    assert tac.line == 2 and tac.remission == day(100)  # the remission is credited to the course in force


def test_same_day_combination_credits_each_regimen() -> None:
    events = COURSE + [med(PID, "cyclosporine", 0, 100, "mg", frequency="bid", end=300)]
    out = by_regimen(events, 500)
    assert out["anti_cd20"].remission == out["cyclosporine"].remission == day(100)


def test_courses_not_evaluable_say_why() -> None:
    mild = [prot(-10, 2.0), med(PID, "tacrolimus", 0, 2, "mg", frequency="bid")]
    assert by_regimen(mild, 200)["tacrolimus"].excluded == "not nephrotic at baseline"
    blind = [prot(-200, 6.0), med(PID, "tacrolimus", 0, 2, "mg", frequency="bid"), prot(100, 6.0)]
    assert by_regimen(blind, 200)["tacrolimus"].excluded == "no baseline proteinuria"
    late_baseline = [prot(-200, 6.0), med(PID, "tacrolimus", 0, 2, "mg", frequency="bid"), prot(10, 6.0)]
    assert by_regimen(late_baseline, 200)["tacrolimus"].evaluable  # first value within 14 days after


def test_censored_titer_counts_as_immunological_remission() -> None:
    events = COURSE[:-1] + [titer(60, 2, comparator="<")]
    assert by_regimen(events, 500)["anti_cd20"].immunological_remission == day(60)


def test_as_of_cuts_the_outcomes() -> None:
    o = by_regimen(COURSE, 150)["anti_cd20"]
    assert o.remission == day(100) and o.complete_remission is None and o.relapse is None
    assert o.follow_up_end == day(100)


def test_round_trip_through_the_stored_summary() -> None:
    a = assess_on(COURSE, 500)
    stored = json.loads(json.dumps(a.summary()))["courses"]
    assert [CourseOutcome.from_dict(d) for d in stored] == list(a.course_outcomes)
    assert list(a.course_outcomes) == list(outcomes_as_of(timeline(COURSE), day(500)))
