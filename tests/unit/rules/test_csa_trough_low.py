"""csa_trough_low: cyclosporine active and latest CsA trough < 100 ng/mL (Cattran 2007).

The motivating case: Cattran 2007 found relapses more frequent in cyclosporine-treated IMN patients
whose trough stayed below 100 ng/mL, so a low trough during an active course is worth a review.
"""

from __future__ import annotations

import pytest

from monitor.events import MedicationEvent
from monitor.findings import Finding
from monitor.rules import csa_trough_low as rule
from tests.unit.rules.builders import PID, AnyEvent, Day, context, day, findings_of, lab, med


def cyclosporine(start: Day = 0, end: Day | None = None, dose: float = 150) -> MedicationEvent:
    return med(PID, "cyclosporine", start, dose, "mg", "bid", end=end)


def run(events: list[AnyEvent], as_of: Day) -> list[Finding]:
    return rule.evaluate(context(events, as_of))


def test_low_trough_on_cyclosporine_fires_with_its_evidence() -> None:
    course = cyclosporine()
    trough = lab(PID, "csa_trough", 80, "ng/mL", 30)
    [f] = run([course, trough], 31)
    assert (f.rule, f.severity, f.episode) == ("csa_trough_low", "warning", "2025-01-31")
    assert f.fingerprint == "P1/csa_trough_low/2025-01-31"
    assert [(e.kind, e.name, e.value, e.unit, e.event_id) for e in f.evidence] == [
        ("lab", "csa_trough", 80.0, "ng/mL", trough.identity),
        ("medication", "cyclosporine", 150.0, "mg", course.identity),
    ]
    assert "80 ng/mL on 2025-01-31" in f.message
    assert "below 100 ng/mL" in f.message and "started 2025-01-01" in f.message
    assert f.reference == rule.REFERENCE and "Cattran" in f.reference
    assert rule.RULE_ID == "csa_trough_low" and rule.CSA_TROUGH_LOW_NG_ML == 100.0


def test_trough_in_range_does_not_fire() -> None:
    assert run([cyclosporine(), lab(PID, "csa_trough", 150, "ng/mL", 30)], 31) == []


@pytest.mark.parametrize(("value", "fires"), [(100.0, False), (99.9, True), (100.1, False), (0.0, True)])
def test_threshold_is_strictly_below_100(value: float, fires: bool) -> None:
    found = run([cyclosporine(), lab(PID, "csa_trough", value, "ng/mL", 30)], 31)
    assert [f.episode for f in found] == (["2025-01-31"] if fires else [])


def test_nmol_per_litre_is_converted_and_reported() -> None:
    # 83 nmol/L x 1.2026 = 99.8158 ng/mL: below 100
    [f] = run([cyclosporine(), lab(PID, "csa_trough", 83, "nmol/L", 30)], 31)
    [trough] = [e for e in f.evidence if e.kind == "lab"]
    assert trough.value == pytest.approx(99.8158)
    assert (trough.unit, trough.reported) == ("ng/mL", "83 nmol/L")
    assert "99.8 ng/mL (83 nmol/L)" in f.message  # the lab's precision, still below 100


def test_nmol_per_litre_just_in_range_does_not_fire() -> None:
    # 84 nmol/L = 101.0 ng/mL
    assert run([cyclosporine(), lab(PID, "csa_trough", 84, "nmol/L", 30)], 31) == []


def test_ug_per_litre_is_the_same_scale() -> None:
    [f] = run([cyclosporine(), lab(PID, "csa_trough", 99.9, "ug/L", 30)], 31)
    assert f.evidence[0].value == 99.9 and f.evidence[0].reported == "99.9 ug/L"


@pytest.mark.parametrize(("comparator", "value", "fires"),
                         [("<", 100, True), ("<=", 100, False), (">", 50, False)])
def test_censored_results_fire_only_when_certainly_low(comparator: str, value: float, fires: bool) -> None:
    trough = lab(PID, "csa_trough", value, "ng/mL", 30, comparator=comparator)
    assert len(run([cyclosporine(), trough], 31)) == (1 if fires else 0)


def test_low_trough_after_cyclosporine_stopped_does_not_fire() -> None:
    events = [cyclosporine(end=60), lab(PID, "csa_trough", 50, "ng/mL", 70)]
    assert run(events, 70) == []


def test_trough_before_the_course_started_does_not_fire() -> None:
    events = [cyclosporine(start=10), lab(PID, "csa_trough", 20, "ng/mL", 5)]
    assert run(events, 20) == []


def test_resolves_when_cyclosporine_is_stopped() -> None:
    events = [cyclosporine(end=60), lab(PID, "csa_trough", 80, "ng/mL", 30)]
    assert [f.episode for f in run(events, 60)] == ["2025-01-31"]  # end is inclusive
    assert run(events, 61) == []


def test_resolves_with_a_later_trough_of_100_or_more() -> None:
    events = [cyclosporine(), lab(PID, "csa_trough", 80, "ng/mL", 30),
              lab(PID, "csa_trough", 100, "ng/mL", 45)]
    assert len(run(events, 44)) == 1
    assert run(events, 45) == []


def test_fingerprint_is_stable_across_a_run_of_low_troughs() -> None:
    first = lab(PID, "csa_trough", 80, "ng/mL", 30)
    second = lab(PID, "csa_trough", 90, "ng/mL", 45)
    events = [cyclosporine(), first, second]
    [before] = run(events, 31)
    [after] = run(events, 46)
    assert before.fingerprint == after.fingerprint == "P1/csa_trough_low/2025-01-31"
    assert [(e.event_id, e.note) for e in after.evidence if e.kind == "lab"] == [
        (first.identity, "first low trough of this run"), (second.identity, None)]
    assert "90 ng/mL on 2025-02-15" in after.message
    assert "2 consecutive troughs since 2025-01-31" in after.message


def test_a_later_separate_run_is_a_new_episode() -> None:
    events = [cyclosporine(), lab(PID, "csa_trough", 80, "ng/mL", 30),
              lab(PID, "csa_trough", 120, "ng/mL", 45), lab(PID, "csa_trough", 70, "ng/mL", 60)]
    [f] = run(events, 61)
    assert f.episode == day(60).isoformat() == "2025-03-02"
    assert [e.value for e in f.evidence if e.kind == "lab"] == [70.0]


def test_results_after_as_of_are_not_seen() -> None:
    events = [cyclosporine(), lab(PID, "csa_trough", 150, "ng/mL", 30),
              lab(PID, "csa_trough", 70, "ng/mL", 60)]
    assert run(events, 59) == []


def test_retracted_trough_does_not_count() -> None:
    low = lab(PID, "csa_trough", 80, "ng/mL", 30, source="lis", source_id="T1")
    retracted = lab(PID, "csa_trough", 80, "ng/mL", 30, source="lis", source_id="T1",
                    status="entered-in-error")
    assert run([cyclosporine(), low, retracted], 31) == []


def test_both_courses_are_evidence_when_the_course_changed_after_the_trough() -> None:
    old, new = cyclosporine(end=40, dose=150), cyclosporine(start=41, dose=100)
    events = [old, new, lab(PID, "csa_trough", 80, "ng/mL", 30)]
    [f] = run(events, 50)
    assert [(e.event_id, e.note) for e in f.evidence if e.kind == "medication"] == [
        (old.identity, "bid 2025-01-01..2025-02-10"), (new.identity, "course active now")]


def test_registered_in_assess() -> None:
    events = [cyclosporine(), lab(PID, "csa_trough", 80, "ng/mL", 30)]
    assert findings_of("csa_trough_low", events, 31) == run(events, 31)
