"""egfr_decline: latest eGFR >= 25% (critical >= 40%) below the median of the previous 12 months;
on a calcineurin inhibitor also a creatinine rise > 20% above its baseline (CNI nephrotoxicity).

Motivating sources: KDIGO 2021 (an unexplained fall in kidney function marks high risk of
progression) and KDIGO 2012 (check CNI levels on an unexplained creatinine rise > 20%).
"""

from __future__ import annotations

import pytest

from monitor.egfr import ckd_epi_2021
from monitor.events import LabResult, MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules import egfr_decline as rule
from tests.unit.rules.builders import PID, AnyEvent, Day, context, day, findings_of, lab, med, patient


def run(events: list[AnyEvent], as_of: Day) -> list[Finding]:
    return rule.evaluate(context(events, as_of))


def egfr(value: float, on: Day, **fields: object) -> LabResult:
    return lab(PID, "egfr", value, "mL/min/1.73m2", on, **fields)


def creatinine(value: float, on: Day, unit: str = "umol/L") -> LabResult:
    return lab(PID, "serum_creatinine", value, unit, on)


def derived(f: Finding, name: str) -> Evidence:
    [e] = [e for e in f.evidence if e.kind == "derived" and e.name == name]
    return e


def test_fall_of_a_third_fires_with_baseline_and_latest_as_evidence() -> None:
    b1, b2, latest = egfr(80, 0), egfr(80, 60), egfr(52, 120)
    [f] = run([b1, b2, latest], 120)
    assert (f.rule, f.severity, f.episode) == ("egfr_decline", "warning", "2025-05-01")
    assert f.fingerprint == "P1/egfr_decline/2025-05-01"
    assert [(e.kind, e.name, e.value, e.event_id, e.note) for e in f.evidence] == [
        ("lab", "egfr", 80.0, b1.identity, "baseline"),
        ("lab", "egfr", 80.0, b2.identity, "baseline"),
        ("lab", "egfr", 52.0, latest.identity, "latest"),
        ("derived", "egfr_baseline", 80.0, None, "median of 2 values from 2025-01-01 to 2025-03-02"),
        ("derived", "egfr_decline_pct", 35.0, None,
         "latest eGFR vs baseline (warning >= 25%, critical >= 40%)"),
    ]
    assert "eGFR 52 mL/min/1.73 m\u00b2 on 2025-05-01 is 35% below the baseline of 80 mL/min/1.73 m\u00b2" in f.message
    assert "nephrotoxicity" not in f.message  # not on a calcineurin inhibitor
    assert "KDIGO 2021" in f.reference and "KDIGO 2012" in f.reference


def test_stable_egfr_does_not_fire() -> None:
    assert run([egfr(80, 0), egfr(78, 60), egfr(76, 120)], 120) == []


@pytest.mark.parametrize(("latest", "severity"), [
    (60.1, None), (60.0, "warning"), (48.1, "warning"), (48.0, "critical"), (30.0, "critical")])
def test_boundaries_25_and_40_percent(latest: float, severity: str | None) -> None:
    # baseline 80: exactly 25% = 60, exactly 40% = 48
    found = run([egfr(80, 0), egfr(80, 60), egfr(latest, 120)], 120)
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_critical_message_says_why() -> None:
    [f] = run([egfr(100, 0), egfr(100, 60), egfr(55, 120)], 120)
    assert f.severity == "critical" and derived(f, "egfr_decline_pct").value == 45.0
    assert "40% or more" in f.message


def test_needs_two_baseline_values() -> None:
    assert run([egfr(80, 60), egfr(40, 120)], 120) == []


def test_baseline_is_the_median_not_the_mean() -> None:
    # median(80, 70, 200) = 80 -> 60 is a 25% fall (the mean, 116.7, would make it 48.6%: critical)
    [f] = run([egfr(80, 0), egfr(70, 30), egfr(200, 60), egfr(60, 120)], 120)
    assert f.severity == "warning" and derived(f, "egfr_baseline").value == 80.0


def test_baseline_window_is_the_previous_12_months() -> None:
    old = [egfr(90, 0), egfr(90, 10)]
    assert [f.episode for f in run([*old, egfr(50, 365)], 365)] == ["2026-01-01"]  # day 0 is 365 days back
    assert run([*old, egfr(50, 366)], 366) == []  # day 0 has left the window: one value is not enough
    assert run([*old, egfr(50, 400)], 400) == []


def test_baseline_window_edges() -> None:
    events = [egfr(90, 0), egfr(90, 10), egfr(90, 20), egfr(50, 375)]
    [f] = run(events, 375)
    assert [e.effective_at[:10] for e in f.evidence if e.note == "baseline"] == ["2025-01-11", "2025-01-21"]


def test_sustained_fall_keeps_firing_with_the_same_episode() -> None:
    # against a rolling median the 4th low value would be judged against median(90,90,60,60) = 75
    events = [egfr(90, 0), egfr(90, 30), egfr(60, 60), egfr(60, 90), egfr(61, 120), egfr(60, 150)]
    fingerprints = {d: [f.fingerprint for f in run(events, d)] for d in (60, 90, 120, 150)}
    assert set(map(tuple, fingerprints.values())) == {("P1/egfr_decline/2025-03-02",)}
    [f] = run(events, 150)
    assert derived(f, "egfr_baseline").value == 90.0
    assert [e.note for e in f.evidence if e.kind == "lab"] == [
        "baseline", "baseline", "first value of this decline", "latest"]


def test_recovery_resolves_and_a_later_fall_is_a_new_episode() -> None:
    events = [egfr(90, 0), egfr(90, 30), egfr(60, 60), egfr(85, 90), egfr(86, 120), egfr(55, 150)]
    assert run(events, 90) == []
    assert [f.episode for f in run(events, 150)] == [day(150).isoformat()]


def test_latest_bounded_from_below_is_not_a_decline() -> None:
    assert run([egfr(95, 0), egfr(95, 60), egfr(60, 120, comparator=">")], 120) == []


def test_computed_egfr_fires_with_the_creatinine_as_evidence() -> None:
    # male, 55 years old in 2025; creatinine in mg/dL converted to umol/L (x 88.42)
    p = patient(PID, birth_date="1970-01-01", sex="male")
    crs = [creatinine(1.0, 0, "mg/dL"), creatinine(1.0, 60, "mg/dL"), creatinine(1.5, 120, "mg/dL")]
    [f] = run([p, *crs], 120)
    base = round(ckd_epi_2021(88.42, 55, "male"), 1)
    low = round(ckd_epi_2021(1.5 * 88.42, 55, "male"), 1)
    assert (base, low) == (88.9, 54.6)  # published equation, worked by hand: see tests/unit/test_egfr.py
    assert f.severity == "warning" and derived(f, "egfr_decline_pct").value == pytest.approx(38.583, abs=1e-3)
    labs = [(e.name, e.value, e.reported) for e in f.evidence if e.kind == "lab"]
    assert labs == [("egfr", base, None), ("serum_creatinine", 88.42, "1 mg/dL"),
                    ("egfr", base, None), ("serum_creatinine", 88.42, "1 mg/dL"),
                    ("egfr", low, None), ("serum_creatinine", 132.63, "1.5 mg/dL")]
    assert "computed by CKD-EPI 2021 from serum creatinine 133 \u00b5mol/L (1.5 mg/dL)" in f.message


def test_reported_egfr_is_used_on_a_day_with_both() -> None:
    p = patient(PID, birth_date="1970-01-01", sex="male")
    events = [p, egfr(90, 0), egfr(90, 60), egfr(85, 120), creatinine(3.0, 120, "mg/dL")]
    assert run(events, 120) == []  # the creatinine alone would compute about 24 mL/min/1.73m2


def on_cni(drug: str = "cyclosporine", end: Day | None = None) -> MedicationEvent:
    return med(PID, drug, 0, 150 if drug == "cyclosporine" else 2, "mg", "bid", end=end)


@pytest.mark.parametrize(("latest", "fires"), [(120.0, False), (120.1, True), (121.0, True)])
def test_creatinine_rise_on_a_cni_is_strictly_above_20_percent(latest: float, fires: bool) -> None:
    events = [on_cni(), creatinine(100, 0), creatinine(100, 60), creatinine(latest, 120)]
    assert [f.severity for f in run(events, 120)] == (["warning"] if fires else [])


def test_creatinine_rise_on_a_cni_names_nephrotoxicity_and_asks_for_a_trough() -> None:
    course = on_cni("tacrolimus")
    c1, c2, c3 = creatinine(100, 0), creatinine(104, 60), creatinine(126, 120)
    [f] = run([course, c1, c2, c3], 120)
    assert (f.severity, f.episode) == ("warning", "2025-05-01")
    assert "calcineurin-inhibitor nephrotoxicity" in f.message and "tacrolimus trough level" in f.message
    assert "126 \u00b5mol/L on 2025-05-01 is 24% above its baseline of 102 \u00b5mol/L" in f.message
    assert [(e.kind, e.name, e.value, e.event_id) for e in f.evidence] == [
        ("lab", "serum_creatinine", 100.0, c1.identity), ("lab", "serum_creatinine", 104.0, c2.identity),
        ("lab", "serum_creatinine", 126.0, c3.identity),
        ("derived", "creatinine_baseline", 102.0, None), ("derived", "creatinine_rise_pct", 23.529, None),
        ("medication", "tacrolimus", 2.0, course.identity)]


def test_creatinine_rise_in_mg_per_dl() -> None:
    # 1.0 -> 1.22 mg/dL = 88.42 -> 107.87 umol/L: +22%
    events = [on_cni(), creatinine(1.0, 0, "mg/dL"), creatinine(1.0, 60, "mg/dL"),
              creatinine(1.22, 120, "mg/dL")]
    [f] = run(events, 120)
    assert derived(f, "creatinine_rise_pct").value == 22.0
    assert "108 \u00b5mol/L (1.22 mg/dL)" in f.message


def test_creatinine_rise_off_cni_does_not_fire() -> None:
    rise = [creatinine(100, 0), creatinine(100, 60), creatinine(130, 120)]
    assert run(rise, 120) == []  # no CNI, no demographics for an eGFR
    assert run([on_cni(end=100), *rise], 120) == []  # CNI stopped before the rise
    assert run([on_cni(end=125), *rise], 126) == []  # CNI stopped since: resolved


def test_egfr_decline_on_a_cni_also_names_nephrotoxicity() -> None:
    [f] = run([on_cni(), egfr(80, 0), egfr(80, 60), egfr(56, 120)], 120)
    assert f.severity == "warning" and "cyclosporine trough level" in f.message


def test_both_conditions_make_one_critical_alert_named_by_the_earliest_run() -> None:
    p = patient(PID, birth_date="1970-01-01", sex="male")
    # creatinine +22% on day 90 (eGFR down ~21%: below 25%), then doubled on day 120 (eGFR down > 40%)
    crs = [creatinine(100, 0), creatinine(100, 30), creatinine(122, 90), creatinine(200, 120)]
    events = [p, on_cni(), *crs]
    [early] = run(events, 90)
    assert (early.severity, early.episode) == ("warning", "2025-04-01")
    [late] = run(events, 120)
    assert (late.severity, late.episode) == ("critical", "2025-04-01")
    assert late.fingerprint == early.fingerprint
    assert {e.name for e in late.evidence if e.kind == "derived"} == {
        "egfr_baseline", "egfr_decline_pct", "creatinine_baseline", "creatinine_rise_pct"}
    ids = [e.event_id for e in late.evidence if e.kind == "lab"]
    assert len(ids) == len(set(ids))  # each stored result once


def test_registered_in_assess() -> None:
    events = [egfr(80, 0), egfr(80, 60), egfr(52, 120)]
    assert findings_of("egfr_decline", events, 120) == run(events, 120)
