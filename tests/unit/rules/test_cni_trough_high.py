"""cni_trough_high: CsA > 190 ng/mL or tacrolimus > 10 ng/mL while on the drug (nephrotoxicity risk).

Motivating sources: Waldman kept CsA troughs at 125-190 ug/L to avoid nephrotoxicity (seed review);
KDIGO 2012 tacrolimus target 5-10 ng/mL during induction.
"""

from __future__ import annotations

import pytest

from monitor.events import MedicationEvent
from monitor.findings import Finding
from monitor.rules import cni_trough_high as rule
from tests.unit.rules.builders import PID, AnyEvent, Day, context, findings_of, lab, med


def course(drug: str, start: Day = 0, end: Day | None = None) -> MedicationEvent:
    return med(PID, drug, start, 150 if drug == "cyclosporine" else 2, "mg", "bid", end=end)


def run(events: list[AnyEvent], as_of: Day) -> list[Finding]:
    return rule.evaluate(context(events, as_of))


def test_high_cyclosporine_trough_fires_with_drug_in_the_episode() -> None:
    csa = course("cyclosporine")
    trough = lab(PID, "csa_trough", 250, "ng/mL", 59)
    [f] = run([csa, trough], 60)
    assert (f.rule, f.severity, f.episode) == ("cni_trough_high", "warning", "cyclosporine:2025-03-01")
    assert f.fingerprint == "P1/cni_trough_high/cyclosporine:2025-03-01"
    assert [(e.kind, e.name, e.value, e.event_id) for e in f.evidence] == [
        ("lab", "csa_trough", 250.0, trough.identity), ("medication", "cyclosporine", 150.0, csa.identity)]
    assert "250 ng/mL on 2025-03-01 is above 190 ng/mL" in f.message and "nephrotoxicity" in f.message


def test_high_tacrolimus_trough_fires() -> None:
    [f] = run([course("tacrolimus"), lab(PID, "tac_trough", 14, "ng/mL", 59)], 60)
    assert f.episode == "tacrolimus:2025-03-01" and "above 10 ng/mL" in f.message


def test_troughs_in_range_do_not_fire() -> None:
    events = [course("cyclosporine"), course("tacrolimus"), lab(PID, "csa_trough", 150, "ng/mL", 30),
              lab(PID, "tac_trough", 7, "ng/mL", 30)]
    assert run(events, 31) == []


@pytest.mark.parametrize(("value", "fires"), [(190.0, False), (190.1, True)])
def test_cyclosporine_limit_is_strictly_above_190(value: float, fires: bool) -> None:
    found = run([course("cyclosporine"), lab(PID, "csa_trough", value, "ng/mL", 30)], 31)
    assert len(found) == (1 if fires else 0)


@pytest.mark.parametrize(("value", "fires"), [(10.0, False), (10.1, True)])
def test_tacrolimus_limit_is_strictly_above_10(value: float, fires: bool) -> None:
    found = run([course("tacrolimus"), lab(PID, "tac_trough", value, "ng/mL", 30)], 31)
    assert len(found) == (1 if fires else 0)


@pytest.mark.parametrize(("analyte", "drug", "nmol_l", "ng_ml", "fires"), [
    ("csa_trough", "cyclosporine", 158.0, 190.0108, True),   # x 1.2026
    ("csa_trough", "cyclosporine", 157.9, 189.8905, False),
    ("tac_trough", "tacrolimus", 12.5, 10.05, True),          # x 0.8040
    ("tac_trough", "tacrolimus", 12.4, 9.9696, False),
])
def test_nmol_per_litre_is_converted(analyte: str, drug: str, nmol_l: float, ng_ml: float,
                                     fires: bool) -> None:
    trough = lab(PID, analyte, nmol_l, "nmol/L", 30)
    assert trough.value == pytest.approx(ng_ml)
    found = run([course(drug), trough], 31)
    assert len(found) == (1 if fires else 0)
    if fires:
        assert f"({nmol_l:g} nmol/L)" in found[0].message
        assert found[0].evidence[0].reported == f"{nmol_l:g} nmol/L"


def test_each_drug_is_its_own_episode() -> None:
    events = [course("cyclosporine"), course("tacrolimus"), lab(PID, "csa_trough", 220, "ng/mL", 30),
              lab(PID, "tac_trough", 12, "ng/mL", 40)]
    assert sorted(f.episode for f in run(events, 41)) == ["cyclosporine:2025-01-31", "tacrolimus:2025-02-10"]


def test_trough_of_a_drug_not_taken_does_not_fire() -> None:
    assert run([course("tacrolimus"), lab(PID, "csa_trough", 400, "ng/mL", 30)], 31) == []


def test_high_trough_after_the_drug_stopped_does_not_fire() -> None:
    assert run([course("tacrolimus", end=20), lab(PID, "tac_trough", 15, "ng/mL", 25)], 25) == []
    # drawn on the drug, but the drug has been stopped since: resolved
    assert run([course("tacrolimus", end=40), lab(PID, "tac_trough", 15, "ng/mL", 30)], 41) == []


def test_upper_bounded_result_is_not_certainly_high() -> None:
    trough = lab(PID, "csa_trough", 250, "ng/mL", 30, comparator="<")
    assert run([course("cyclosporine"), trough], 31) == []


def test_fingerprint_is_stable_and_resolves_with_a_trough_in_range() -> None:
    events = [course("cyclosporine"), lab(PID, "csa_trough", 230, "ng/mL", 30),
              lab(PID, "csa_trough", 210, "ng/mL", 45), lab(PID, "csa_trough", 170, "ng/mL", 60)]
    first, second = run(events, 31), run(events, 46)
    assert [f.fingerprint for f in first] == [f.fingerprint for f in second] == [
        "P1/cni_trough_high/cyclosporine:2025-01-31"]
    assert [e.value for e in second[0].evidence if e.kind == "lab"] == [230.0, 210.0]
    assert run(events, 60) == []


def test_registered_in_assess() -> None:
    events = [course("tacrolimus"), lab(PID, "tac_trough", 12, "ng/mL", 30)]
    assert findings_of("cni_trough_high", events, 31) == run(events, 31)
