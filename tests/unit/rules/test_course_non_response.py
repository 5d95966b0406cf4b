"""course_non_response: an immunosuppressive course other than anti-CD20 reached its evaluation point
(CNI 6 months, cyclophosphamide 12 months from start and >= 6 months after its end, mycophenolate 6
months, ACTH 6 months, belimumab 28 weeks) with no PR/CR since its start.

Literature case: KDIGO 2012 and the CJASN review table (stop a calcineurin inhibitor without response
at 6 months); KDIGO 2021 (judge cyclophosphamide >= 6 months after completing it).
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult, MedicationEvent
from monitor.rules import RULES, course_non_response
from monitor.rules.course_non_response import EVALUATION_POINTS, evaluation_date
from monitor.therapy import therapy_courses
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med, timeline

RULE = "course_non_response"


def upd(value: float, on: int) -> LabResult:
    return lab(PID, "proteinuria_24h", value, "g/d", on)


def course(drug: str, start: int = 0, end: int | None = None, frequency: str = "bid") -> MedicationEvent:
    return med(PID, drug, start, 1, "mg", frequency=frequency, end=end)


# nephrotic, not remitting: 6.0 -> 5.5 -> 5.0 g/d
NO_RESPONSE = [upd(6.0, -5), upd(5.5, 90), upd(5.0, 170)]


def found(events: list[AnyEvent], as_of: int) -> list[tuple[str, str]]:
    return [(f.severity, f.episode) for f in findings_of(RULE, events, day(as_of))]


def ep(drug: str, start: int = 0) -> str:
    return f"{drug}:{day(start).isoformat()}"


def test_registered_and_the_table_names_every_judged_drug() -> None:
    assert course_non_response in RULES
    assert set(EVALUATION_POINTS) == {"cyclosporine", "tacrolimus", "cyclophosphamide", "mycophenolate",
                                      "acth", "belimumab"}


@pytest.mark.parametrize(("drug", "point"), [
    ("cyclosporine", 183), ("tacrolimus", 183), ("mycophenolate", 183), ("acth", 183), ("belimumab", 196)])
def test_evaluation_point_boundary(drug: str, point: int) -> None:
    events = [course(drug), *NO_RESPONSE]
    assert found(events, point - 1) == []
    assert found(events, point) == [("warning", ep(drug))]


def test_message_and_evidence_name_the_course_and_the_numbers() -> None:
    [f] = findings_of(RULE, [course("tacrolimus"), *NO_RESPONSE], day(183))
    assert "tacrolimus course started 2025-01-01 (still being taken)" in f.message
    assert "183 days after its start" in f.message
    assert "Latest proteinuria 5 g/d on 2025-06-20 (peak of this episode 6 g/d on 2024-12-27)" in f.message
    assert "6 months" in f.message and "mg" not in f.message
    assert [(e.kind, e.name, e.value) for e in f.evidence] == [
        ("medication", "tacrolimus", 1.0), ("lab", "proteinuria_24h", 6.0), ("lab", "proteinuria_24h", 5.0),
        ("derived", "evaluation_point_days", 183.0)]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [course("cyclosporine"), *NO_RESPONSE]
    assert course_non_response.evaluate(context(events, day(200))) == findings_of(RULE, events, day(200))


def test_a_partial_remission_before_the_evaluation_point_means_no_alert() -> None:
    events = [course("cyclosporine"), upd(6.0, -5), upd(2.6, 150), upd(2.5, 160)]  # PR confirmed day 160
    assert found(events, 183) == []
    # the remission counts even if the patient relapsed since (PR was reached during the course)
    events += [upd(5.0, 175), upd(5.5, 182)]
    assert found(events, 200) == []


def test_a_remission_after_the_evaluation_point_resolves_it() -> None:
    events = [course("cyclosporine"), *NO_RESPONSE, upd(2.6, 200), upd(2.5, 210)]
    assert found(events, 209) == [("warning", ep("cyclosporine"))]
    assert found(events, 210) == []


def test_one_alert_per_course_with_a_stable_episode() -> None:
    events = [course("tacrolimus", 0, 89), course("tacrolimus", 90), *NO_RESPONSE]  # a dose change on day 90
    assert {e for d in (183, 250, 400) for e in found(events, d)} == {("warning", ep("tacrolimus"))}


def test_a_course_stopped_before_its_evaluation_point_is_still_judged() -> None:
    events = [course("tacrolimus", 0, 100), *NO_RESPONSE]
    [f] = findings_of(RULE, events, day(183))
    assert "last given 2025-04-11" in f.message


@pytest.mark.parametrize(("later", "start"), [
    ("rituximab", 200), ("mycophenolate", 200), ("cyclophosphamide", 200), ("chlorambucil", 200)])
def test_another_immunosuppressive_course_resolves_it(later: str, start: int) -> None:
    events = [course("tacrolimus", 0, 190), *NO_RESPONSE, med(PID, later, start, 1, "mg")]
    assert found(events, 199) == [("warning", ep("tacrolimus"))]
    assert found(events, 200) == []


def test_a_glucocorticoid_is_an_adjunct_not_another_course() -> None:
    events = [course("cyclosporine"), *NO_RESPONSE, med(PID, "prednisone", 150, 10, "mg", frequency="qd")]
    assert found(events, 183) == [("warning", ep("cyclosporine"))]
    only_steroid = [med(PID, "prednisone", 0, 10, "mg", frequency="qd"), *NO_RESPONSE]
    assert found(only_steroid, 400) == []


def test_anti_cd20_courses_are_left_to_rtx_non_response() -> None:
    assert found([med(PID, "rituximab", 0, 1000, "mg"), *NO_RESPONSE], 400) == []


def test_a_restart_after_a_long_break_is_a_new_course_judged_from_its_own_start() -> None:
    events = [course("tacrolimus", 0, 100), *NO_RESPONSE, course("tacrolimus", 200), upd(5.2, 300)]
    assert found(events, 199) == [("warning", ep("tacrolimus"))]
    assert found(events, 200) == []  # the restart is another course
    assert found(events, 382) == []
    assert found(events, 383) == [("warning", ep("tacrolimus", 200))]


# ---- cyclophosphamide: the later of 12 months after the start and 6 months after the end ----------
def test_six_month_regimen_is_judged_12_months_after_its_start() -> None:
    events = [course("cyclophosphamide", 0, 179, "qd"), *NO_RESPONSE]
    [c] = therapy_courses(timeline(events), "cyclophosphamide")
    assert evaluation_date(c) == day(365)  # max(0 + 365, 179 + 183 = 362)
    assert found(events, 364) == []
    assert found(events, 365) == [("warning", ep("cyclophosphamide"))]


def test_twelve_month_regimen_waits_6_months_after_its_end() -> None:
    events = [course("cyclophosphamide", 0, 364, "qd"), *NO_RESPONSE]
    assert found(events, 546) == []  # 12 months after the start, but only 182 days after the end
    assert found(events, 547) == [("warning", ep("cyclophosphamide"))]


def test_ponticelli_months_are_one_course_judged_from_the_first_cyclophosphamide() -> None:
    months = [course("cyclophosphamide", s, s + 29, "qd") for s in (30, 90, 150)]
    steroids = [med(PID, "methylprednisolone", s, 1, "g", frequency="qd", end=s + 2) for s in (0, 60, 120)]
    events = [*months, *steroids, *NO_RESPONSE]
    assert found(events, 394) == []
    assert found(events, 395) == [("warning", ep("cyclophosphamide", 30))]


def test_open_ended_cyclophosphamide_is_not_judged_while_it_goes_on() -> None:
    assert found([course("cyclophosphamide", 0, None, "qd"), *NO_RESPONSE], 900) == []


def test_no_proteinuria_since_the_start_is_no_remission_and_says_so() -> None:
    [f] = findings_of(RULE, [upd(6.0, -5), course("mycophenolate")], day(183))
    assert (f.severity, f.episode) == ("warning", ep("mycophenolate"))
    assert "No proteinuria has been measured since the course started" in f.message
