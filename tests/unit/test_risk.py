"""KDIGO 2021 risk category (monitor/risk.py): each boundary tested on both sides."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.risk import RiskAssessment, acei_arb_response, risk_category
from tests.unit.rules.builders import PID, assess_on, context, day, lab, med, patient

AS_OF = 400


def risk(events: list[Any], as_of: int = AS_OF) -> RiskAssessment:
    return risk_category(context(events, as_of))


def egfr(value: float, on: int = 390) -> Any:
    return lab(PID, "egfr", value, "mL/min/1.73m2", on)


def prot(value: float, on: int = 390, analyte: str = "proteinuria_24h", unit: str = "g/d") -> Any:
    return lab(PID, analyte, value, unit, on)


def alb(value: float, on: int = 390) -> Any:
    return lab(PID, "serum_albumin", value, "g/L", on)


def pla2r(value: float, on: int = 390) -> Any:
    return lab(PID, "anti_pla2r", value, "RU/mL", on)


def text(r: RiskAssessment) -> str:
    return " | ".join(r.reasons)


def test_no_proteinuria_is_unknown() -> None:
    r = risk([egfr(90), alb(40)])
    assert r.category == "unknown"
    assert "no proteinuria" in text(r)


def test_subnephrotic_with_normal_albumin_is_low() -> None:
    r = risk([egfr(90), prot(2.0), alb(35)])
    assert r.category == "low"
    assert "2 g/d" in text(r) and "35 g/L" in text(r)


def test_low_albumin_at_30_is_low_but_flagged_unconfirmed() -> None:
    # KDIGO21 first low line: albumin > 30 (strict); without 6 months of ACEi/ARB the reasons say so
    r = risk([egfr(90), prot(2.0), alb(30)])
    assert r.category == "low"
    assert "to be confirmed" in text(r) and "30 g/L" in text(r)
    assert "to be confirmed" not in text(risk([egfr(90), prot(2.0), alb(30.1)]))


def test_nephrotic_without_markers_is_moderate() -> None:
    r = risk([egfr(90), prot(5.0), alb(28), pla2r(30)])
    assert r.category == "moderate"
    assert "no ACEi/ARB recorded" in text(r)


def test_exactly_nephrotic_threshold_is_not_low() -> None:
    assert risk([egfr(90), prot(3.5), alb(40)]).category == "moderate"
    assert risk([egfr(90), prot(3.49), alb(40)]).category == "low"


@pytest.mark.parametrize(("albumin", "category"), [(24.9, "high"), (25.0, "moderate")])
def test_albumin_below_25_makes_nephrotic_high(albumin: float, category: str) -> None:
    r = risk([egfr(90), prot(5.0), alb(albumin)])
    assert r.category == category
    if category == "high":
        assert "24.9 g/L" in text(r) and "< 25" in text(r)


@pytest.mark.parametrize(("titer", "category"), [(50.1, "high"), (50.0, "moderate")])
def test_pla2r_above_50_makes_nephrotic_high(titer: float, category: str) -> None:
    assert risk([egfr(90), prot(5.0), alb(30), pla2r(titer)]).category == category


@pytest.mark.parametrize(("value", "category"), [(59.9, "high"), (60.0, "low")])
def test_egfr_below_60_is_high(value: float, category: str) -> None:
    r = risk([egfr(value), prot(1.0), alb(40)])
    assert r.category == category
    if category == "high":
        assert "59.9" in text(r)


def test_egfr_computed_from_creatinine_counts() -> None:
    # male, 57 years, creatinine 200 umol/L: CKD-EPI 2021 about 33 mL/min/1.73m2
    events = [patient(birth_date="1968-03-02", sex="male"), prot(1.0),
              lab(PID, "serum_creatinine", 200, "umol/L", 390)]
    r = risk(events)
    assert r.category == "high"
    assert "eGFR 3" in text(r)


def heavy_run(days: list[int], value: float = 9.0) -> list[Any]:
    return [prot(value, on=d) for d in days]


def test_proteinuria_above_8_for_more_than_6_months_is_high() -> None:
    r = risk([egfr(90), alb(30), *heavy_run([200, 260, 320, 384])])
    assert r.category == "high"
    assert "184 days" in text(r)


def test_proteinuria_above_8_for_exactly_6_months_is_not_high() -> None:
    assert risk([egfr(90), alb(30), *heavy_run([200, 260, 320, 383])]).category == "moderate"


def test_one_value_of_8_breaks_the_heavy_run() -> None:
    events = [egfr(90), alb(30), *heavy_run([200, 260, 384]), prot(8.0, on=320)]
    assert risk(events).category == "moderate"


def test_heavy_run_that_ended_is_not_current() -> None:
    events = [egfr(90), alb(40), *heavy_run([0, 100, 200, 300]), prot(2.0, on=390)]
    assert risk(events).category == "low"


def acei(start: int, end: int | None = None, drug: str = "ace_inhibitor") -> Any:
    return med(PID, drug, start, 10, "mg", "qd", end)


@pytest.mark.parametrize(("after", "category"), [(3.9, "low"), (4.0, "moderate")])
def test_decrease_more_than_half_after_6_months_of_acei_is_low(after: float, category: str) -> None:
    # baseline 8 g/d at start; 4.0 is exactly 50% (KDIGO: a decrease > 50% is needed)
    events = [egfr(90), acei(0), prot(8.0, on=-10), prot(after, on=200), alb(28)]
    r = risk(events)
    assert r.category == category
    assert "8 -> " in text(r)


def test_not_decreased_with_low_albumin_is_high_and_decreased_is_not() -> None:
    base = [egfr(90), acei(0), prot(8.0, on=-10), alb(20)]
    assert risk([*base, prot(4.0, on=200)]).category == "high"
    assert risk([*base, prot(3.9, on=200)]).category == "low"


def test_value_before_6_months_is_not_the_response() -> None:
    # day 182 is not yet 6 months (183 days): the response cannot be judged; nephrotic = moderate
    events = [egfr(90, on=180), acei(0), prot(8.0, on=-10), prot(3.6, on=182), alb(28, on=180)]
    r = risk(events, as_of=190)
    assert r.category == "moderate"
    assert "no proteinuria 6 months or more into it" in text(r)
    early = risk(events, as_of=182)
    judged = day(183).isoformat()  # the ACEi started on day 0
    assert early.category == "moderate" and f"cannot be judged before {judged}" in text(early)
    later = risk([*events, prot(3.6, on=183)], as_of=190)
    assert later.category == "low"  # (8 - 3.6) / 8 = 55% > 50% on day 183


def test_baseline_is_the_value_at_acei_start() -> None:
    events = [prot(9.0, on=-200), prot(6.0, on=-5), prot(2.0, on=200), acei(0)]
    ctx = context(events, AS_OF)
    response = acei_arb_response(ctx.proteinuria, ctx.timeline.medications, ctx.as_of)
    assert response is not None and response.baseline is not None and response.after is not None
    assert response.baseline.value == 6.0  # the latest before start, not the older peak
    assert response.after.value == 2.0
    assert response.decreased


def test_acei_to_arb_switch_is_one_exposure_but_a_long_gap_restarts_it() -> None:
    base = [egfr(90), prot(8.0, on=-10), prot(3.9, on=200), alb(28)]
    switched = [*base, acei(0, end=100), acei(105, drug="arb")]
    assert risk(switched).category == "low"
    restarted = [*base, acei(0, end=100), acei(140, drug="arb")]
    assert risk(restarted).category == "moderate"  # the ARB exposure is only 260 days old, but
    # its baseline (within 90 days before day 140) is missing: -10 is 150 days before


def test_rapid_egfr_fall_of_25_percent_within_3_months_is_very_high() -> None:
    r = risk([prot(2.0), alb(40), egfr(90, on=300), egfr(67.5, on=390)])
    assert r.category == "very_high"
    assert "25%" in text(r) and "90" in text(r) and "67.5" in text(r)


def test_egfr_fall_just_under_25_percent_is_not_very_high() -> None:
    assert risk([prot(2.0), alb(40), egfr(90, on=300), egfr(67.6, on=390)]).category == "low"


def test_egfr_fall_over_more_than_3_months_is_not_very_high() -> None:
    assert risk([prot(2.0), alb(40), egfr(90, on=297), egfr(67, on=390)]).category == "low"


def test_recovered_egfr_fall_is_not_very_high() -> None:
    events = [prot(2.0), alb(40), egfr(90, on=300), egfr(60, on=340), egfr(85, on=390)]
    assert risk(events).category == "low"


def test_very_high_activity_flag_is_beside_the_category() -> None:
    r = risk([egfr(90), prot(2.0), alb(40), pla2r(151)])
    assert r.category == "low" and r.very_high_activity
    assert "151" in text(r)
    assert not risk([egfr(90), prot(2.0), alb(40), pla2r(150)]).very_high_activity


def test_without_egfr_the_category_is_unknown_unless_high_anyway() -> None:
    r = risk([prot(2.0), alb(40)])
    assert r.category == "unknown" and "no eGFR" in text(r)
    # nephrotic + albumin < 25 is high whatever the eGFR (< 60 is high too)
    assert risk([prot(5.0), alb(20)]).category == "high"


def test_upcr_stands_in_and_the_reason_says_so() -> None:
    r = risk([egfr(90), prot(200, analyte="upcr", unit="mg/mmol"), alb(40)])  # 1.768 g/g
    assert r.category == "low"
    assert "UPCR" in text(r)


def test_events_after_as_of_do_not_count() -> None:
    events = [egfr(90), prot(2.0), alb(40), prot(9.0, on=AS_OF + 10), alb(15, on=AS_OF + 10)]
    assert risk(events).category == "low"


def test_assessment_summary_carries_the_risk() -> None:
    summary = assess_on([egfr(90), prot(5.0), alb(20), pla2r(200)], AS_OF).summary()
    assert summary["risk"]["category"] == "high"
    assert summary["risk"]["very_high_activity"] is True
    assert summary["risk"]["reasons"]
