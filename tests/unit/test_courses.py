"""monitor.courses: what one course of each regimen is, and which is current."""

from __future__ import annotations

from monitor.courses import REGIMENS, current_course, supportive_phase, treatment_courses
from tests.unit.rules.builders import PID, day, lab, med, timeline


def _courses(events: list, as_of: int = 900) -> list[tuple[str, object, tuple[str, ...]]]:
    return [(c.regimen, c.start, c.agents) for c in treatment_courses(timeline(events), day(as_of))]


def test_mentor_repeat_at_six_months_is_the_same_course_a_switch_or_retreatment_is_not() -> None:
    events = [med(PID, "rituximab", d, 1000, "mg") for d in (0, 14, 183, 197)]  # MENTOR: repeat at 6 months
    events += [med(PID, "obinutuzumab", d, 1000, "mg") for d in (300, 314)]  # another agent: new course
    events += [med(PID, "obinutuzumab", 700, 1000, "mg")]  # > 6 months after the last dose: re-treatment
    assert _courses(events) == [("anti_cd20", day(0), ("rituximab",)), ("anti_cd20", day(300), ("obinutuzumab",)),
                                ("anti_cd20", day(700), ("obinutuzumab",))]
    first = treatment_courses(timeline(events), day(900))[0]
    assert first.last_exposure == day(197) and len(first.records) == 4


def test_a_repeat_by_day_240_is_mentors_repeat_even_after_a_longer_gap() -> None:
    # rtx_redose_due asks for the repeat until day 240: 211 days after the last dose, still the course
    events = [med(PID, "rituximab", d, 1000, "mg") for d in (0, 14, 225, 239)]
    assert _courses(events) == [("anti_cd20", day(0), ("rituximab",))]
    later = [med(PID, "rituximab", d, 1000, "mg") for d in (0, 14, 250)]  # after day 240 and > 183 d: new
    assert [c[1] for c in _courses(later)] == [day(0), day(250)]


def test_cni_dose_change_continues_a_course_a_long_pause_starts_another() -> None:
    events = [med(PID, "cyclosporine", 0, 100, "mg", frequency="bid", end=99),
              med(PID, "cyclosporine", 100, 150, "mg", frequency="bid", end=300),
              med(PID, "cyclosporine", 500, 100, "mg", frequency="bid")]  # 200 days later
    courses = treatment_courses(timeline(events), day(900))
    assert [(c.start, c.last_exposure, c.ongoing) for c in courses] == [
        (day(0), day(300), False), (day(500), day(900), True)]


def test_modified_ponticelli_starts_with_its_steroid_month() -> None:
    events = []
    for m in range(6):
        start = 30 * m
        if m % 2 == 0:
            events.append(med(PID, "glucocorticoid", start, 1000, "mg", frequency="qd", end=start + 2))
            events.append(med(PID, "glucocorticoid", start + 3, 40, "mg", frequency="qd", end=start + 29))
        else:
            events.append(med(PID, "cyclophosphamide", start, 150, "mg", frequency="qd", end=start + 29))
    assert _courses(events) == [("cyclophosphamide", day(0), ("glucocorticoid", "cyclophosphamide"))]


def test_glucocorticoid_with_another_course_is_its_adjunct_alone_it_is_a_course() -> None:
    with_csa = [med(PID, "cyclosporine", 0, 100, "mg", frequency="bid", end=360),
                med(PID, "glucocorticoid", 0, 10, "mg", frequency="qd", end=180)]
    assert _courses(with_csa) == [("cyclosporine", day(0), ("cyclosporine",))]
    alone = [med(PID, "glucocorticoid", 10, 60, "mg", frequency="qd", end=100)]
    assert _courses(alone) == [("glucocorticoid", day(10), ("glucocorticoid",))]


def test_every_drug_regimen_of_the_registry_is_recognised() -> None:
    events = [med(PID, "mycophenolate", 0, 1000, "mg", frequency="bid", end=180),
              med(PID, "acth", 200, 80, "units", frequency="q2w", end=380),
              med(PID, "belimumab", 400, 10, "mg/kg", end=400), med(PID, "tacrolimus", 600, 2, "mg", frequency="bid"),
              med(PID, "chlorambucil", 800, 10, "mg", frequency="qd", end=830)]
    assert [c[0] for c in _courses(events)] == ["mycophenolate", "acth", "belimumab", "tacrolimus", "cyclophosphamide"]
    assert set(REGIMENS) >= {c[0] for c in _courses(events)}


def test_current_course_and_supportive_phase() -> None:
    events = [lab(PID, "upcr", 500, "mg/mmol", -60), lab(PID, "upcr", 480, "mg/mmol", -10),
              med(PID, "tacrolimus", 0, 2, "mg", frequency="bid", end=180), med(PID, "rituximab", 200, 1000, "mg")]
    tl = timeline(events)
    assert current_course(tl, day(100)).regimen == "tacrolimus"  # type: ignore[union-attr]
    assert current_course(tl, day(250)).regimen == "anti_cd20"  # type: ignore[union-attr]
    assert current_course(tl, day(-5)) is None  # the tacrolimus course had not started yet
    phase = supportive_phase(tl, day(250))
    assert phase is not None and (phase.start, phase.end, phase.ended_by_treatment) == (day(-60), day(0), True)
    untreated = supportive_phase(timeline(events[:2]), day(250))
    assert untreated is not None and untreated.end == day(250) and not untreated.ended_by_treatment
