"""tac_trough_low: tacrolimus active and latest trough < 3 ng/mL (below any IMN regimen's target)."""

from __future__ import annotations

import pytest

from monitor.events import MedicationEvent
from monitor.findings import Finding
from monitor.rules import tac_trough_low as rule
from tests.unit.rules.builders import PID, AnyEvent, Day, context, findings_of, lab, med


def tacrolimus(start: Day = 0, end: Day | None = None) -> MedicationEvent:
    return med(PID, "tacrolimus", start, 2, "mg", "bid", end=end)


def run(events: list[AnyEvent], as_of: Day) -> list[Finding]:
    return rule.evaluate(context(events, as_of))


def test_low_trough_on_tacrolimus_fires_with_its_evidence() -> None:
    course = tacrolimus()
    trough = lab(PID, "tac_trough", 2.1, "ng/mL", 30)
    [f] = run([course, trough], 31)
    assert (f.rule, f.severity, f.episode) == ("tac_trough_low", "warning", "2025-01-31")
    assert f.fingerprint == "P1/tac_trough_low/2025-01-31"
    assert [(e.kind, e.name, e.value, e.event_id) for e in f.evidence] == [
        ("lab", "tac_trough", 2.1, trough.identity), ("medication", "tacrolimus", 2.0, course.identity)]
    assert "2.1 ng/mL on 2025-01-31" in f.message and "below 3 ng/mL" in f.message
    assert "KDIGO 2012" in f.reference and rule.TAC_TROUGH_LOW_NG_ML == 3.0


def test_trough_in_target_does_not_fire() -> None:
    assert run([tacrolimus(), lab(PID, "tac_trough", 6, "ng/mL", 30)], 31) == []


@pytest.mark.parametrize(("value", "fires"), [(3.0, False), (2.9, True), (3.1, False)])
def test_threshold_is_strictly_below_3(value: float, fires: bool) -> None:
    assert len(run([tacrolimus(), lab(PID, "tac_trough", value, "ng/mL", 30)], 31)) == (1 if fires else 0)


@pytest.mark.parametrize(("nmol_l", "ng_ml", "fires"), [(3.6, 2.8944, True), (3.8, 3.0552, False)])
def test_nmol_per_litre_is_converted(nmol_l: float, ng_ml: float, fires: bool) -> None:
    found = run([tacrolimus(), lab(PID, "tac_trough", nmol_l, "nmol/L", 30)], 31)
    assert len(found) == (1 if fires else 0)
    if fires:
        assert found[0].evidence[0].value == pytest.approx(ng_ml)
        assert found[0].evidence[0].reported == f"{nmol_l:g} nmol/L"
        assert f"2.9 ng/mL ({nmol_l:g} nmol/L)" in found[0].message


def test_below_detection_limit_fires() -> None:
    [f] = run([tacrolimus(), lab(PID, "tac_trough", 1.0, "ng/mL", 30, comparator="<")], 31)
    assert "<1 ng/mL" in f.message and f.evidence[0].note == "<1"


def test_low_trough_after_tacrolimus_stopped_does_not_fire() -> None:
    assert run([tacrolimus(end=60), lab(PID, "tac_trough", 1.5, "ng/mL", 70)], 70) == []


def test_resolves_when_tacrolimus_stops_or_a_trough_reaches_3() -> None:
    low = lab(PID, "tac_trough", 2.0, "ng/mL", 30)
    assert run([tacrolimus(end=40), low], 41) == []
    events = [tacrolimus(), low, lab(PID, "tac_trough", 3.0, "ng/mL", 40)]
    assert len(run(events, 39)) == 1 and run(events, 40) == []


def test_episode_is_the_first_low_trough_of_the_current_run() -> None:
    events = [tacrolimus(), lab(PID, "tac_trough", 2.0, "ng/mL", 30),
              lab(PID, "tac_trough", 5.0, "ng/mL", 45),
              lab(PID, "tac_trough", 2.5, "ng/mL", 60), lab(PID, "tac_trough", 2.2, "ng/mL", 75)]
    [f] = run(events, 80)
    assert f.episode == "2025-03-02"
    assert [e.value for e in f.evidence if e.kind == "lab"] == [2.5, 2.2]


def test_registered_in_assess() -> None:
    events = [tacrolimus(), lab(PID, "tac_trough", 2.0, "ng/mL", 30)]
    assert findings_of("tac_trough_low", events, 31) == run(events, 31)
