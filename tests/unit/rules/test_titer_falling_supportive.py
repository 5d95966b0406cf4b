"""titer_falling_supportive: no immunosuppression active or in the past 6 months; anti-PLA2R was >= 14
RU/mL and the latest value is >= 15% below a value 60-120 days earlier; no egfr_decline. Info.

Literature case: Rodriguez-Spanish cohort (CKJ/NDT 2021, PMC8690096): on conservative therapy a fall
of >= 15% at 3 months predicted a >= 50% proteinuria reduction at 6 months; seed review section 2.1
(non-immunosuppressive therapy may be extended 3-6 months).
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult
from monitor.rules import RULES, titer_falling_supportive
from monitor.rules.titer_falling_supportive import (
    COMPARED_FROM_DAYS,
    COMPARED_TO_DAYS,
    EARLIER_TITER_FROM_RU_ML,
    MIN_FALL,
    NO_IMMUNOSUPPRESSION_DAYS,
)
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med, patient

RULE = "titer_falling_supportive"


def titer(value: float, on: int, **kw: object) -> LabResult:
    return lab(PID, "anti_pla2r", value, "RU/mL", on, **kw)


def acei(start: int = -200) -> AnyEvent:
    return med(PID, "ace_inhibitor", start, 10, "mg", frequency="qd")


def found(events: list[AnyEvent], as_of: int) -> list[tuple[str, str]]:
    return [(f.severity, f.episode) for f in findings_of(RULE, events, day(as_of))]


def test_registered_and_a_fall_on_supportive_care_is_information() -> None:
    assert titer_falling_supportive in RULES
    events = [acei(), titer(80, 0), titer(60, 90)]
    [f] = findings_of(RULE, events, day(95))
    assert (f.severity, f.episode) == ("info", day(90).isoformat())
    assert "fell from 80 RU/mL on 2025-01-01 to 60 RU/mL on 2025-04-01 (25% lower over 90 days)" in f.message
    assert "3-6 months" in f.message and "15%" in f.message
    assert [(e.kind, e.name, e.value) for e in f.evidence] == [
        ("lab", "anti_pla2r", 80.0), ("lab", "anti_pla2r", 60.0), ("derived", "anti_pla2r_fall_pct", 25.0)]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [titer(80, 0), titer(60, 90)]
    assert titer_falling_supportive.evaluate(context(events, day(95))) == findings_of(RULE, events, day(95))


@pytest.mark.parametrize(("latest", "fires"), [(34.0, True), (34.01, False)])
def test_a_fall_of_exactly_15_percent_counts(latest: float, fires: bool) -> None:
    assert MIN_FALL == 0.15
    assert bool(found([titer(40, 0), titer(latest, 90)], 90)) is fires


@pytest.mark.parametrize(("gap", "fires"), [(COMPARED_FROM_DAYS - 1, False), (COMPARED_FROM_DAYS, True),
                                            (COMPARED_TO_DAYS, True), (COMPARED_TO_DAYS + 1, False)])
def test_the_earlier_value_is_60_to_120_days_before(gap: int, fires: bool) -> None:
    assert (COMPARED_FROM_DAYS, COMPARED_TO_DAYS) == (60, 120)
    assert bool(found([titer(80, 0), titer(40, gap)], gap)) is fires


@pytest.mark.parametrize(("earlier", "fires"), [(13.9, False), (14.0, True)])
def test_the_earlier_value_must_be_antibody_positive(earlier: float, fires: bool) -> None:
    assert EARLIER_TITER_FROM_RU_ML == 14.0
    assert bool(found([titer(earlier, 0), titer(5, 90)], 90)) is fires


def test_any_positive_value_in_the_window_will_do() -> None:
    # 50 (day 0) -> 48 (day 30) -> 40 (day 100): 40 is not 15% below 48 (30 days: outside the window)
    # but is 20% below 50 (100 days before it)
    assert found([titer(50, 0), titer(48, 30), titer(40, 100)], 100) == [("info", day(100).isoformat())]


@pytest.mark.parametrize(("comparator", "value", "fires"), [("<", 2, True), (">", 30, False)])
def test_censored_latest_titer(comparator: str, value: float, fires: bool) -> None:
    assert bool(found([titer(40, 0), titer(value, 90, comparator=comparator)], 90)) is fires


def test_an_earlier_value_bounded_from_above_is_not_known_positive() -> None:
    assert found([titer(200, 0, comparator="<"), titer(5, 90)], 90) == []


# ---- immunosuppression ---------------------------------------------------------------------------
@pytest.mark.parametrize("drug", ["tacrolimus", "mycophenolate", "glucocorticoid", "cyclophosphamide"])
def test_not_while_immunosuppression_is_taken(drug: str) -> None:
    assert found([med(PID, drug, -30, 1, "mg", frequency="qd"), titer(80, 0), titer(40, 90)], 90) == []


def test_an_anti_cd20_dose_is_immunosuppression() -> None:
    assert found([med(PID, "rituximab", -10, 1000, "mg"), titer(80, 0), titer(40, 90)], 90) == []


@pytest.mark.parametrize(("stopped", "fires"), [(-NO_IMMUNOSUPPRESSION_DAYS - 1, True),
                                                (-NO_IMMUNOSUPPRESSION_DAYS, False)])
def test_the_whole_fall_must_follow_six_months_off_immunosuppression(stopped: int, fires: bool) -> None:
    # the earlier titer (day 0) must be drawn more than 183 days after the last day of treatment
    assert NO_IMMUNOSUPPRESSION_DAYS == 183
    events = [med(PID, "tacrolimus", stopped - 200, 2, "mg", frequency="bid", end=stopped),
              titer(80, 0), titer(40, 90)]
    assert bool(found(events, 90)) is fires


def test_a_fall_that_began_under_treatment_is_the_treatments_effect() -> None:
    # cyclophosphamide to day 179; titer 20 on day 90 and 5 on day 180: still not information on day
    # 400, when six months without treatment have passed (modified Ponticelli)
    events = [med(PID, "cyclophosphamide", 0, 150, "mg", frequency="qd", end=179), titer(20, 90), titer(5, 180)]
    assert found(events, 400) == []


def test_ace_inhibitors_and_anticoagulants_are_supportive_care() -> None:
    events = [acei(), med(PID, "anticoagulant", -10, 5, "mg", frequency="bid"), titer(80, 0), titer(40, 90)]
    assert found(events, 90) == [("info", day(90).isoformat())]


# ---- egfr_decline, resolution, episode ----------------------------------------------------------------
def test_not_while_egfr_declines() -> None:
    falling = [lab(PID, "egfr", v, "mL/min/1.73m2", d) for d, v in ((-100, 80), (-50, 82), (85, 55))]
    assert found([*falling, titer(80, 0), titer(40, 90)], 90) == []
    stable = [lab(PID, "egfr", v, "mL/min/1.73m2", d) for d, v in ((-100, 80), (-50, 82), (85, 78))]
    assert found([*stable, titer(80, 0), titer(40, 90)], 90) == [("info", day(90).isoformat())]


def test_resolves_when_a_later_titer_no_longer_fell() -> None:
    events = [titer(80, 0), titer(60, 90), titer(58, 180)]  # 58 is only 3% below 60
    assert found(events, 179) == [("info", day(90).isoformat())]
    assert found(events, 180) == []


def test_a_titer_that_keeps_falling_keeps_one_episode() -> None:
    events = [titer(90, 0), titer(60, 90), titer(35, 180), titer(15, 270)]
    assert {found(events, d)[0] for d in (90, 180, 270)} == {("info", day(90).isoformat())}


def test_a_single_titer_or_none_is_silent() -> None:
    assert found([patient(), titer(80, 0)], 90) == [] and found([patient()], 90) == []
