"""A UPCR in mg/mmol is judged by KDIGO's pairing of units (mg/mmol / 100 ~ g/d), while the stored
result keeps what the lab reported (monitor/proteinuria.py; docs/clinical-rules.md, "Series the rules
read"). Boundaries on both sides, through the remission state, the relapse rule and the risk category.
"""

from __future__ import annotations

import pytest

from monitor.assess import assess
from monitor.display import proteinuria_text
from monitor.events import LabResult
from monitor.proteinuria import KDIGO_MG_PER_MMOL_PER_G_PER_DAY, estimate, is_estimate, molar_ratio
from monitor.remission import remission_history
from monitor.timeline import Timeline
from tests.unit.rules.builders import PID, day, findings_of, lab


def upcr(value: float, on: int, unit: str = "mg/mmol", **fields: object) -> LabResult:
    return lab(PID, "upcr", value, unit, on, **fields)


def upd(value: float, on: int) -> LabResult:
    return lab(PID, "proteinuria_24h", value, "g/d", on)


def state(*events: LabResult) -> str:
    return remission_history(Timeline.build(PID, events)).state


def test_the_stored_result_keeps_what_the_lab_reported_and_its_exact_conversion() -> None:
    r = upcr(372, 0)
    # unchanged storage: the exact molar conversion to g/g, and the reported value and unit beside it
    assert (r.value, r.unit, r.reported_value, r.reported_unit) == (pytest.approx(3.28848), "g/g", 372, "mg/mmol")
    e = estimate(r)
    assert (e.value, e.unit, e.analyte) == (3.72, "g/d", "upcr")
    assert e.identity == r.identity and e.effective_at == r.effective_at and e.reported_value == 372
    assert is_estimate(e) and not is_estimate(r) and molar_ratio(r) == 372
    assert KDIGO_MG_PER_MMOL_PER_G_PER_DAY == 100


def test_the_series_reads_the_estimate_and_other_results_as_they_are() -> None:
    t = Timeline.build(PID, [upcr(372, 0), upcr(1.2, 10, "g/g"), upcr(800, 20, "mg/g"), upd(4.0, 30),
                             upcr(500, 30)])  # a UPCR on the day of a 24-h collection is left out
    assert [(r.analyte, r.value, r.unit) for r in t.proteinuria()] == [
        ("upcr", 3.72, "g/d"), ("upcr", 1.2, "g/g"), ("upcr", 0.8, "g/g"), ("proteinuria_24h", 4.0, "g/d")]
    assert t.series("upcr")[0].value == pytest.approx(3.28848)  # the timeline's results are the stored ones


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (0.35, "g/mmol", 3.5), (350, "mg/mmol", 3.5), (30, "mg/mmol", 0.3), (29.5, "mg/mmol", 0.295),
])
def test_molar_units_and_float_noise(value: float, unit: str, expected: float) -> None:
    assert estimate(upcr(value, 0, unit)).value == expected  # exactly: no 3.5000000000000004


def test_a_censored_ratio_stays_censored() -> None:
    e = estimate(upcr(5, 0, comparator="<"))
    assert (e.comparator, e.value) == ("<", 0.05)
    assert proteinuria_text(e) == "UPCR <5 mg/mmol (\u2248 <0.05 g/d)"


@pytest.mark.parametrize(("mg_per_mmol", "expected"), [
    (349, "non_nephrotic"), (350, "nephrotic"), (351, "nephrotic"),
    # the regression: by the exact factor 380 mg/mmol was 3.36 g/g, below the nephrotic range
    (380, "nephrotic"),
])
def test_nephrotic_boundary_is_350_mg_per_mmol(mg_per_mmol: float, expected: str) -> None:
    assert state(upcr(mg_per_mmol, 0)) == expected


@pytest.mark.parametrize(("mg_per_mmol", "expected"), [
    (349, "partial_remission"), (350, "nephrotic"), (351, "nephrotic"),
])
def test_partial_remission_needs_below_350_mg_per_mmol(mg_per_mmol: float, expected: str) -> None:
    # peak 800 mg/mmol (8 g/d); two values >= 7 days apart, both <= 50% of the peak
    assert state(upcr(800, 0), upcr(mg_per_mmol, 60), upcr(mg_per_mmol, 67)) == expected


@pytest.mark.parametrize(("mg_per_mmol", "expected"), [
    (29, "complete_remission"), (29.9, "complete_remission"), (30, "partial_remission"),
    (31, "partial_remission"),
    # by the exact factor 33 mg/mmol was 0.29 g/g: complete remission where KDIGO's 30 mg/mmol says not
    (33, "partial_remission"),
])
def test_complete_remission_is_below_30_mg_per_mmol(mg_per_mmol: float, expected: str) -> None:
    assert state(upcr(800, 0), upcr(mg_per_mmol, 60), upcr(mg_per_mmol, 67)) == expected


def test_relapse_rule_and_its_evidence_show_the_reported_value_and_the_estimate() -> None:
    events = [upd(8.0, 0), upcr(250, 60), upcr(240, 70), upcr(372, 150)]
    [f] = findings_of("relapse", events, day(150))
    assert "UPCR 372 mg/mmol (\u2248 3.72 g/d)" in f.message
    assert "partial remission confirmed" in f.message
    last = f.evidence[-1]
    assert (last.name, last.value, last.unit, last.reported) == ("upcr", 3.72, "g/d", "372 mg/mmol")


@pytest.mark.parametrize(("mg_per_mmol", "fires"), [(349, False), (350, False), (351, True)])
def test_relapse_after_a_complete_remission_in_mg_per_mmol(mg_per_mmol: float, fires: bool) -> None:
    events = [upcr(800, 0), upcr(20, 60), upcr(25, 70), upcr(mg_per_mmol, 150)]
    assert state(*events[:3]) == "complete_remission"
    assert len(findings_of("relapse", events, day(150))) == int(fires)


def test_risk_reasons_and_the_summary_show_the_reported_value_and_the_estimate() -> None:
    events = [lab(PID, "egfr", 75, "mL/min/1.73m2", 0), upcr(372, 0), lab(PID, "serum_albumin", 24, "g/L", 0)]
    a = assess(Timeline.build(PID, events), day(1))
    assert any("UPCR 372 mg/mmol (\u2248 3.72 g/d)" in reason for reason in a.risk.reasons)
    item = a.summary()["latest"]["upcr"]
    assert item["value"] == pytest.approx(3.28848) and item["estimate_g_per_day"] == 3.72
    assert (item["reported_value"], item["reported_unit"]) == (372, "mg/mmol")
    assert item["display"] == "372 mg/mmol (\u2248 3.72 g/d)"
    assert a.summary()["remission"]["episode_peak_g_per_day"] == 3.72
