"""rtx_non_response: 6 months after the first anti-CD20 dose, no remission, and the titer still
>= 14 (PLA2R-positive patients) and/or proteinuria reduced < 25% from the pre-course baseline.

Literature case (MENTOR, Fervenza NEJM 2019): rituximab 1 g on days 1 and 15; a reduction of
proteinuria < 25% at 6 months counted as treatment failure.
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult

from monitor.rules import rtx_non_response
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med

RULE = "rtx_non_response"
EPISODE = f"rituximab:{day(0).isoformat()}"


def upd(value: float, on: int, unit: str = "g/d") -> LabResult:
    return lab(PID, "proteinuria_24h", value, unit, on)


def titer(value: float, on: int, unit: str = "RU/mL") -> LabResult:
    return lab(PID, "anti_pla2r", value, unit, on)


def mentor_course(start: int = 0) -> list[AnyEvent]:
    """Rituximab 1 g on days 0 and 14 (one course: doses within 30 days)."""
    return [med(PID, "rituximab", start, 1000, "mg", route="iv"),
            med(PID, "rituximab", start + 14, 1000, "mg", route="iv")]


def non_responder(latest_upd: float = 7.0, latest_titer: float = 80.0) -> list[AnyEvent]:
    return [upd(8.0, -10), titer(150, -10), *mentor_course(), upd(latest_upd, 120), titer(latest_titer, 120)]


def test_both_criteria_at_183_days_is_critical() -> None:
    [f] = findings_of(RULE, non_responder(), day(183))
    assert (f.rule, f.severity, f.episode) == (RULE, "critical", EPISODE)
    assert "evaluation point (day 183, 2025-07-03)" in f.message and "80 RU/mL" in f.message and "reduced by 12%" in f.message
    assert [(e.kind, e.name, e.value, e.effective_at[:10], e.note) for e in f.evidence] == [
        ("medication", "rituximab", 1000.0, str(day(0)), "first dose of the course"),
        ("lab", "proteinuria_24h", 8.0, str(day(-10)), "pre-course baseline proteinuria"),
        ("lab", "proteinuria_24h", 7.0, str(day(120)), "latest proteinuria"),
        ("derived", "proteinuria_reduction", 12.5, str(day(120)),
         "from baseline; treatment failure below 25%"),
        ("lab", "anti_pla2r", 150.0, str(day(-10)), "anti-PLA2R before the course"),
        ("lab", "anti_pla2r", 80.0, str(day(120)), "latest anti-PLA2R"),
    ]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = non_responder()
    assert rtx_non_response.evaluate(context(events, day(183))) == findings_of(RULE, events, day(183))


@pytest.mark.parametrize(("as_of", "fires"), [(183, True), (182, False)])
def test_evaluated_from_day_183(as_of: int, fires: bool) -> None:
    assert len(findings_of(RULE, non_responder(), day(as_of))) == int(fires)


def test_titer_criterion_alone_is_a_warning() -> None:
    # proteinuria 8 -> 5 g/d: reduced by 37.5% (a response), but not a PR (> 3.5)
    [f] = findings_of(RULE, non_responder(latest_upd=5.0), day(183))
    assert f.severity == "warning"
    assert "still 80 RU/mL" in f.message and "Proteinuria 5" not in f.message
    assert [e.value for e in f.evidence if e.name == "proteinuria_24h"] == [8.0, 5.0]


def test_proteinuria_criterion_alone_is_a_warning() -> None:
    [f] = findings_of(RULE, non_responder(latest_titer=10.0), day(183))
    assert f.severity == "warning"
    assert "reduced by 12%" in f.message and "still" not in f.message


@pytest.mark.parametrize(("latest", "fires"), [(6.0, False), (6.01, True)])
def test_a_reduction_of_exactly_25_percent_is_not_failure(latest: float, fires: bool) -> None:
    found = findings_of(RULE, non_responder(latest_upd=latest, latest_titer=5.0), day(183))
    assert len(found) == int(fires)


@pytest.mark.parametrize(("latest", "fires"), [(14.0, True), (13.9, False)])
def test_titer_still_at_least_14_is_no_immunological_response(latest: float, fires: bool) -> None:
    found = findings_of(RULE, non_responder(latest_upd=5.0, latest_titer=latest), day(183))
    assert len(found) == int(fires)


@pytest.mark.parametrize(("baseline", "severity"), [(14.0, "critical"), (13.9, "warning")])
def test_titer_criterion_only_for_pla2r_positive_patients(baseline: float, severity: str) -> None:
    events = [upd(8.0, -10), titer(baseline, -10), *mentor_course(), upd(7.0, 120), titer(30, 120)]
    [f] = findings_of(RULE, events, day(183))
    assert f.severity == severity


def test_seronegative_patient_with_a_proteinuria_response_does_not_fire() -> None:
    events = [upd(8.0, -10), titer(5, -10), *mentor_course(), upd(5.0, 120), titer(30, 120)]
    assert findings_of(RULE, events, day(183)) == []


@pytest.mark.parametrize(("baseline_day", "severity"),
                         [(-42, "critical"), (-89, "critical"), (-90, "critical"), (-91, "warning")])
def test_baseline_is_the_latest_proteinuria_within_90_days_before_the_first_dose(baseline_day: int,
                                                                                 severity: str) -> None:
    # a baseline 6 weeks before the infusion (-42) was missed when the window was 30 days
    events = [upd(8.0, baseline_day), titer(150, -10), *mentor_course(), upd(7.0, 120), titer(80, 120)]
    [f] = findings_of(RULE, events, day(183))
    assert f.severity == severity
    if severity == "warning":
        assert "No proteinuria in the 90 days up to the first dose" in f.message
        assert "could not be judged" in f.message


def test_the_latest_value_of_the_window_is_the_baseline() -> None:
    # 10 g/d 80 days before, 7.5 g/d 20 days before: the baseline is 7.5, so 7 g/d is a 7% reduction
    events = [upd(10.0, -80), upd(7.5, -20), titer(5, -10), *mentor_course(), upd(7.0, 120)]
    [f] = findings_of(RULE, events, day(183))
    baseline = next(e for e in f.evidence if e.note == "pre-course baseline proteinuria")
    assert (baseline.value, baseline.effective_at[:10]) == (7.5, str(day(-20)))
    assert "reduced by 7%" in f.message


def test_a_baseline_on_the_day_of_the_first_dose_counts() -> None:
    events = [upd(8.0, 0), titer(5, -10), *mentor_course(), upd(7.0, 120)]
    [f] = findings_of(RULE, events, day(183))
    assert any(e.note == "pre-course baseline proteinuria" and e.value == 8.0 for e in f.evidence)


@pytest.mark.parametrize(("result_day", "fires"), [(90, True), (89, False)])
def test_results_earlier_than_3_months_after_the_first_dose_do_not_judge_response(result_day: int,
                                                                                  fires: bool) -> None:
    events = [upd(8.0, -10), titer(150, -10), *mentor_course(), upd(7.0, result_day), titer(80, result_day)]
    found = findings_of(RULE, events, day(183))
    assert [f.severity for f in found] == (["critical"] if fires else [])


def test_upcr_in_mg_per_mmol_is_used_when_there_is_no_24h_collection() -> None:
    # 905 mg/mmol = 8.0 g/g baseline; 792 mg/mmol = 7.0 g/g at 4 months
    events = [lab(PID, "upcr", 905, "mg/mmol", -10), *mentor_course(), lab(PID, "upcr", 792, "mg/mmol", 120)]
    [f] = findings_of(RULE, events, day(183))
    assert f.severity == "warning"
    assert [(e.name, e.reported) for e in f.evidence if e.kind == "lab"] == [
        ("upcr", "905 mg/mmol"), ("upcr", "792 mg/mmol")]


def test_partial_remission_after_the_course_means_no_alert() -> None:
    # PR: <= 4 g/d (50% of the 8 g/d peak) and < 3.5, confirmed over >= 7 days
    events = [*non_responder(), upd(3.0, 130), upd(3.0, 140)]
    assert findings_of(RULE, events, day(183)) == []


def test_no_anti_cd20_course_no_alert() -> None:
    events = [upd(8.0, -10), titer(150, -10), upd(7.5, 120), titer(80, 120)]
    assert findings_of(RULE, events, day(183)) == []


def test_other_immunosuppressants_are_not_judged_by_this_rule() -> None:
    events = [upd(8.0, -10), titer(150, -10), med(PID, "cyclosporine", 0, 100, "mg", frequency="bid"),
              upd(7.5, 120), titer(80, 120)]
    assert findings_of(RULE, events, day(183)) == []


def test_fingerprint_is_the_course_and_stable_when_reassessed_later() -> None:
    prints = {f.fingerprint for d in (183, 250, 400) for f in findings_of(RULE, non_responder(), day(d))}
    assert prints == {f"P1/rtx_non_response/{EPISODE}"}


def test_a_new_course_is_a_new_episode_and_the_old_one_stops() -> None:
    second = 200
    events = [*non_responder(), upd(7.0, second - 5), titer(80, second - 5), *mentor_course(second),
              upd(6.8, second + 120), titer(70, second + 120)]
    assert findings_of(RULE, events, day(second)) == []  # the new course is too young to judge
    [f] = findings_of(RULE, events, day(second + 183))
    assert (f.severity, f.episode) == ("critical", f"rituximab:{day(second).isoformat()}")
    assert [e.value for e in f.evidence if e.note == "pre-course baseline proteinuria"] == [7.0]


def test_obinutuzumab_course_is_an_anti_cd20_course() -> None:
    events = [upd(8.0, -10), titer(150, -10), med(PID, "obinutuzumab", 0, 1000, "mg"),
              upd(7.0, 120), titer(80, 120)]
    [f] = findings_of(RULE, events, day(183))
    assert f.episode == f"obinutuzumab:{day(0).isoformat()}"
