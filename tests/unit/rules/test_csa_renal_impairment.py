"""csa_renal_impairment: cyclosporine started while the latest eGFR in the 90 days up to its start was
< 60 mL/min/1.73 m2; resolves when cyclosporine is stopped.

Literature case: seed review section 2.4.1 (IMN with impaired renal function should avoid
cyclosporine; 6 months of alternating glucocorticoid and an alkylating agent instead); KDIGO 2012 CKD
(G3a begins below 60).
"""

from __future__ import annotations

import pytest

from monitor.egfr import egfr_series
from monitor.events import LabResult, MedicationEvent
from monitor.rules import RULES, csa_renal_impairment
from monitor.rules.csa_renal_impairment import EGFR_IMPAIRED_BELOW, LOOKBACK_DAYS, renal_impairment_at
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med, patient, timeline

RULE = "csa_renal_impairment"
EPISODE = f"cyclosporine:{day(0).isoformat()}"


def egfr(value: float, on: int, **kw: object) -> LabResult:
    return lab(PID, "egfr", value, "mL/min/1.73m2", on, **kw)


def csa(start: int = 0, end: int | None = None, dose: float = 100) -> MedicationEvent:
    return med(PID, "cyclosporine", start, dose, "mg", frequency="bid", end=end)


def found(events: list[AnyEvent], as_of: int) -> list[tuple[str, str]]:
    return [(f.severity, f.episode) for f in findings_of(RULE, events, day(as_of))]


# ---- the pure check, usable for a planned start ----------------------------------------------------
def at(series: list[LabResult], start: int) -> float | None:
    found_ = renal_impairment_at(tuple(series), day(start))
    return None if found_ is None else found_.value


@pytest.mark.parametrize(("value", "impaired"), [(59.9, True), (60.0, False), (60.1, False)])
def test_threshold(value: float, impaired: bool) -> None:
    assert EGFR_IMPAIRED_BELOW == 60.0
    assert at([egfr(value, -10)], 0) == (value if impaired else None)


@pytest.mark.parametrize(("on", "counted"), [(-LOOKBACK_DAYS, True), (-LOOKBACK_DAYS - 1, False), (0, True),
                                              (1, False)])
def test_window_is_the_90_days_up_to_and_including_the_start(on: int, counted: bool) -> None:
    assert LOOKBACK_DAYS == 90
    assert at([egfr(45, on)], 0) == (45 if counted else None)


def test_the_latest_value_in_the_window_decides() -> None:
    assert at([egfr(45, -60), egfr(70, -10)], 0) is None
    assert at([egfr(70, -60), egfr(45, -10)], 0) == 45


@pytest.mark.parametrize(("comparator", "value", "impaired"), [(">", 60, False), ("<", 15, True), (">", 45, False)])
def test_censored_egfr(comparator: str, value: float, impaired: bool) -> None:
    assert (at([egfr(value, -10, comparator=comparator)], 0) is not None) is impaired


def test_a_planned_start_can_be_checked_before_any_cyclosporine_is_recorded() -> None:
    """What an order-entry integration does: the patient's eGFR series and the order's start date."""
    t = timeline([patient(birth_date="1958-01-01", sex="male"), lab(PID, "serum_creatinine", 150, "umol/L", 100)])
    series = egfr_series(t)  # CKD-EPI 2021 from creatinine: about 42 mL/min/1.73 m2
    found_ = renal_impairment_at(series, day(120))  # the order's planned start
    assert found_ is not None and 40 < found_.value < 45
    assert renal_impairment_at(series, day(100 + LOOKBACK_DAYS + 1)) is None  # too old to judge


# ---- the rule ---------------------------------------------------------------------------------------
def test_registered_and_fires_while_cyclosporine_is_taken() -> None:
    assert csa_renal_impairment in RULES
    events = [egfr(52, -20), csa()]
    assert found(events, 0) == [("warning", EPISODE)]
    [f] = findings_of(RULE, events, day(30))
    assert "started on 2025-01-01 while the latest eGFR before it was 52 mL/min/1.73 m² on 2024-12-12" in f.message
    assert "below 60" in f.message and "alkylating" in f.message and " mg" not in f.message
    assert [(e.kind, e.name, e.value) for e in f.evidence] == [("medication", "cyclosporine", 100.0),
                                                               ("lab", "egfr", 52.0)]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [egfr(52, -20), csa()]
    assert csa_renal_impairment.evaluate(context(events, day(30))) == findings_of(RULE, events, day(30))


@pytest.mark.parametrize(("as_of", "fires"), [(120, True), (121, False)])
def test_resolves_when_cyclosporine_is_stopped(as_of: int, fires: bool) -> None:
    assert found([egfr(52, -20), csa(0, end=120)], as_of) == ([("warning", EPISODE)] if fires else [])


def test_a_dose_change_keeps_the_episode_of_the_course_start() -> None:
    events = [egfr(52, -20), csa(0, end=59), csa(60, dose=75), egfr(75, 50)]
    assert found(events, 100) == [("warning", EPISODE)]  # judged at the course's start, not the new record


def test_normal_egfr_at_the_start_and_a_later_fall_do_not_fire() -> None:
    assert found([egfr(75, -20), csa(), egfr(50, 60)], 90) == []


def test_no_egfr_before_the_start_does_not_fire() -> None:
    assert found([csa(), egfr(40, 30)], 90) == []


def test_a_later_course_is_judged_on_its_own_start() -> None:
    events = [egfr(52, -20), csa(0, end=100), egfr(72, 150), csa(200)]
    assert found(events, 100) == [("warning", EPISODE)]
    assert found(events, 150) == []
    assert found(events, 210) == []  # eGFR 72 before the restart


def test_computed_egfr_from_creatinine_counts_and_is_named() -> None:
    events = [patient(birth_date="1958-01-01", sex="male"), lab(PID, "serum_creatinine", 150, "umol/L", -10), csa()]
    [f] = findings_of(RULE, events, day(0))
    assert "CKD-EPI 2021 from serum creatinine" in f.message
    assert f.evidence[1].note is not None and "computed by CKD-EPI 2021" in f.evidence[1].note


@pytest.mark.parametrize("drug", ["tacrolimus", "mycophenolate", "cyclophosphamide"])
def test_other_drugs_do_not_fire(drug: str) -> None:
    assert found([egfr(40, -10), med(PID, drug, 0, 1, "mg", frequency="bid")], 30) == []
