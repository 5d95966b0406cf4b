"""Therapy courses (monitor/therapy.py): anti-CD20 courses, CNI windows, cumulative cyclophosphamide."""

from __future__ import annotations

import math
from typing import Any

import pytest

from monitor.therapy import (
    THERAPY_COURSE_GAP_DAYS,
    COURSE_BASELINE_LOOKBACK_DAYS,
    active,
    active_therapies,
    administrations_until,
    anti_cd20_courses,
    body_surface_area_m2,
    course_baseline_proteinuria,
    cumulative_dose,
    on_immunosuppression,
    therapy_courses,
)
from monitor.timeline import Timeline
from tests.unit.rules.builders import PID, day, med, patient


def build(*events: Any) -> Timeline:
    return Timeline.build(PID, list(events))


def rtx(on: int, drug: str = "rituximab", **fields: Any) -> Any:
    return med(PID, drug, on, 1000, "mg", **fields)


def test_doses_within_30_days_are_one_course() -> None:
    (course,) = anti_cd20_courses(build(rtx(0), rtx(14)), day(400))
    assert course.first_dose == day(0) and course.last_dose == day(14)
    assert course.episode == f"rituximab:{day(0).isoformat()}"
    assert len(anti_cd20_courses(build(rtx(0), rtx(30)), day(400))) == 1


def test_a_dose_31_days_later_starts_a_new_course() -> None:
    courses = anti_cd20_courses(build(rtx(0), rtx(31)), day(400))
    assert [c.first_dose for c in courses] == [day(0), day(31)]


def test_gap_is_between_consecutive_doses() -> None:
    (course,) = anti_cd20_courses(build(rtx(0), rtx(25), rtx(50)), day(400))
    assert len(course.doses) == 3


def test_agents_form_separate_courses_in_date_order() -> None:
    courses = anti_cd20_courses(build(rtx(200, drug="obinutuzumab"), rtx(0), rtx(14)), day(400))
    assert [(c.agent, c.first_dose) for c in courses] == [("rituximab", day(0)), ("obinutuzumab", day(200))]


def test_weekly_times_four_record_expands_to_four_doses() -> None:
    t = build(med(PID, "rituximab", 0, 375, "mg/m2", "qw", end=21))
    (course,) = anti_cd20_courses(t, day(400))
    assert [d.start for d in course.doses] == [day(0), day(7), day(14), day(21)]
    assert all(d.frequency == "once" for d in course.doses)
    # as of day 10 only two infusions had been given
    (early,) = anti_cd20_courses(t, day(10))
    assert len(early.doses) == 2


def test_doses_after_as_of_are_not_in_courses() -> None:
    assert anti_cd20_courses(build(rtx(0), rtx(14)).until(day(5)), day(5))[0].doses[-1].start == day(0)


def test_cni_active_window_and_open_end() -> None:
    t = build(med(PID, "cyclosporine", 0, 100, "mg", "bid", end=99), med(PID, "tacrolimus", 200, 2, "mg", "bid"))
    assert active(t, "cyclosporine", day(0)) is not None
    assert active(t, "cyclosporine", day(99)) is not None  # end is inclusive
    assert active(t, "cyclosporine", day(100)) is None
    assert active(t, "tacrolimus", day(199)) is None
    assert active(t, "tacrolimus", day(5000)) is not None  # open end = still active
    assert active_therapies(t, day(50)) == ("cyclosporine",)
    assert on_immunosuppression(t, day(250)) and not on_immunosuppression(t, day(150))


def test_active_returns_the_latest_started_course() -> None:
    t = build(med(PID, "cyclosporine", 0, 100, "mg", "bid"), med(PID, "cyclosporine", 50, 75, "mg", "bid"))
    found = active(t, "cyclosporine", day(60))
    assert found is not None and found.dose == 75


def test_single_administration_is_active_on_its_day_only() -> None:
    t = build(rtx(0))
    assert active(t, "rituximab", day(0)) is not None and active(t, "rituximab", day(1)) is None


def test_administrations_until() -> None:
    oral = med(PID, "cyclophosphamide", 0, 100, "mg", "qd", end=29)
    assert administrations_until(oral, day(400)) == 30
    assert administrations_until(oral, day(9)) == 10
    assert administrations_until(oral, day(-1)) == 0
    assert administrations_until(med(PID, "cyclosporine", 0, 100, "mg", "bid", end=9), day(400)) == 20
    assert administrations_until(med(PID, "rituximab", 0, 375, "mg/m2", "qw", end=21), day(400)) == 4
    assert administrations_until(med(PID, "rituximab", 0, 375, "mg/m2", "qw", end=20), day(400)) == 3


def test_cumulative_cyclophosphamide_oral_and_iv() -> None:
    t = build(med(PID, "cyclophosphamide", 0, 100, "mg", "qd", end=29),  # 30 days x 100 mg = 3.0 g
              *[med(PID, "cyclophosphamide", d, 750, "mg", route="iv") for d in (60, 90, 120)],  # 2.25 g
              med(PID, "cyclophosphamide", 150, 1, "g"))  # 1 g
    assert cumulative_dose(t, "cyclophosphamide", day(400)).grams == pytest.approx(6.25)
    # as of day 9: ten oral days only
    assert cumulative_dose(t, "cyclophosphamide", day(9)).grams == pytest.approx(1.0)


def test_cumulative_dose_per_kg_uses_weight() -> None:
    oral = med(PID, "cyclophosphamide", 0, 1.5, "mg/kg", "qd", end=9)
    with_weight = cumulative_dose(build(patient(weight_kg=80), oral), "cyclophosphamide", day(400))
    assert with_weight.grams == pytest.approx(1.2) and with_weight.uncounted == ()
    without = cumulative_dose(build(oral), "cyclophosphamide", day(400))
    assert without.grams == 0
    ((record, why),) = without.uncounted
    assert record.unit == "mg/kg" and "weight" in why


def test_cumulative_dose_per_m2_uses_body_surface_area() -> None:
    pulse = med(PID, "cyclophosphamide", 0, 750, "mg/m2", route="iv")
    bsa = math.sqrt(175 * 72 / 3600)  # Mosteller
    assert body_surface_area_m2(72, 175) == pytest.approx(bsa)
    dose = cumulative_dose(build(patient(weight_kg=72, height_cm=175), pulse), "cyclophosphamide", day(400))
    assert dose.grams == pytest.approx(0.75 * bsa)
    no_height = cumulative_dose(build(patient(weight_kg=72), pulse), "cyclophosphamide", day(400))
    assert no_height.grams == 0 and "height" in no_height.uncounted[0][1]


def test_cumulative_dose_without_dose_is_uncounted() -> None:
    dose = cumulative_dose(build(med(PID, "cyclophosphamide", 0)), "cyclophosphamide", day(400))
    assert dose.grams == 0 and dose.uncounted[0][1] == "no dose recorded"


# ---- therapy courses (issue 11): records of one drug merged across dose changes and short breaks
def spans(*events: Any, drug: str = "cyclophosphamide") -> list[tuple[str, str | None, int]]:
    return [(c.start.isoformat(), c.end.isoformat() if c.end else None, len(c.records))
            for c in therapy_courses(build(*events), drug)]


def ctx_month(start: int, end: int | None) -> Any:
    return med(PID, "cyclophosphamide", start, 150, "mg", frequency="qd", end=end)


def test_a_dose_change_continues_the_course() -> None:
    a = med(PID, "tacrolimus", 0, 2, "mg", frequency="bid", end=89)
    b = med(PID, "tacrolimus", 90, 1, "mg", frequency="bid")
    [course] = therapy_courses(build(a, b), "tacrolimus")
    assert (course.start, course.end, course.episode) == (day(0), None, f"tacrolimus:{day(0).isoformat()}")


def test_ponticelli_alternate_months_are_one_course() -> None:
    assert spans(ctx_month(30, 59), ctx_month(90, 119), ctx_month(150, 179)) == [
        (day(30).isoformat(), day(179).isoformat(), 3)]


@pytest.mark.parametrize(("gap", "courses"), [(THERAPY_COURSE_GAP_DAYS, 1), (THERAPY_COURSE_GAP_DAYS + 1, 2)])
def test_a_break_longer_than_the_gap_starts_a_new_course(gap: int, courses: int) -> None:
    assert THERAPY_COURSE_GAP_DAYS == 60
    assert len(spans(ctx_month(0, 29), ctx_month(29 + gap, 60 + gap))) == courses


def test_monthly_iv_pulses_are_one_course_and_end_on_the_last_pulse() -> None:
    pulses = [med(PID, "cyclophosphamide", d, 750, "mg", route="iv") for d in (0, 28, 56, 84, 112, 140)]
    assert spans(*pulses) == [(day(0).isoformat(), day(140).isoformat(), 6)]


def test_an_open_record_makes_the_course_open_and_absorbs_later_records() -> None:
    assert spans(ctx_month(0, None), ctx_month(400, 430)) == [(day(0).isoformat(), None, 2)]


def test_courses_cover_their_gaps_and_end_inclusive() -> None:
    [course] = therapy_courses(build(ctx_month(30, 59), ctx_month(90, 119)), "cyclophosphamide")
    assert course.covers(day(75)) and course.covers(day(119)) and course.covers(day(30))
    assert not course.covers(day(120)) and not course.covers(day(29))
    assert course.ended_before(day(120)) and not course.ended_before(day(119))


def test_courses_of_another_drug_are_not_mixed() -> None:
    assert spans(med(PID, "mycophenolate", 0, 1000, "mg", frequency="bid"), drug="cyclophosphamide") == []



# ------------------------------------------------------------------ the course baseline (shared by the
# anti-CD20 rules: rtx_non_response, rtx_redose_due)


def _course_and_proteinuria(*values: tuple[int, float, str]) -> tuple[Any, tuple[Any, ...]]:
    from tests.unit.rules.builders import lab

    events = [med(PID, "rituximab", 0, 1000, "mg"), med(PID, "rituximab", 14, 1000, "mg"),
              *(lab(PID, analyte, v, "g/d" if analyte == "proteinuria_24h" else "mg/mmol", d)
                for d, v, analyte in values)]
    t = Timeline.build(PID, events)
    [course] = anti_cd20_courses(t, day(200))
    return course, t.proteinuria()


@pytest.mark.parametrize(("days_before", "found"), [(0, True), (89, True), (90, True), (91, False)])
def test_course_baseline_is_the_latest_proteinuria_in_the_90_days_up_to_the_first_dose(
        days_before: int, found: bool) -> None:
    course, proteinuria = _course_and_proteinuria((-days_before, 6.0, "proteinuria_24h"), (30, 4.0, "proteinuria_24h"))
    baseline = course_baseline_proteinuria(proteinuria, course)
    assert COURSE_BASELINE_LOOKBACK_DAYS == 90
    assert (baseline.value if baseline else None) == (6.0 if found else None)


def test_course_baseline_takes_the_latest_value_and_reads_mg_per_mmol_by_the_kdigo_pairing() -> None:
    course, proteinuria = _course_and_proteinuria((-60, 9.0, "proteinuria_24h"), (-7, 640.0, "upcr"))
    baseline = course_baseline_proteinuria(proteinuria, course)
    assert baseline is not None and (baseline.analyte, baseline.value, baseline.unit) == ("upcr", 6.4, "g/d")
    assert course_baseline_proteinuria(proteinuria[:0], course) is None
