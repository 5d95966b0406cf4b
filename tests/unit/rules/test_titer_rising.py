"""titer_rising: latest anti-PLA2R >= 20, >= 1.5x and >= 10 RU/mL above the lowest of 12 months.

Literature case (KDIGO 2021; seed review): the titer is measured every 3-6 months and rises months
before proteinuria does, so a climb from a low level is an early warning.
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult

from monitor.rules import titer_rising
from tests.unit.rules.builders import PID, context, day, findings_of, lab

RULE = "titer_rising"


def titer(value: float, on: int, unit: str = "RU/mL") -> LabResult:
    return lab(PID, "anti_pla2r", value, unit, on)


def test_a_titer_that_rose_1_5_fold_and_10_units_fires_a_warning() -> None:
    events = [titer(20, 0), titer(30, 90)]
    [f] = findings_of(RULE, events, day(90))
    assert (f.rule, f.severity, f.episode) == (RULE, "warning", day(90).isoformat())
    assert "30 RU/mL" in f.message and "20 RU/mL" in f.message and "1.5x" in f.message
    assert [(e.kind, e.name, e.value, e.effective_at[:10]) for e in f.evidence] == [
        ("lab", "anti_pla2r", 20.0, str(day(0))),
        ("lab", "anti_pla2r", 30.0, str(day(90))),
        ("derived", "anti_pla2r_rise_ratio", 1.5, str(day(90))),
    ]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [titer(20, 0), titer(30, 90)]
    assert titer_rising.evaluate(context(events, day(90))) == findings_of(RULE, events, day(90))


@pytest.mark.parametrize(("lowest", "latest", "fires"), [
    (20.0, 30.0, True),    # exactly 1.5x, +10
    (20.0, 29.9, False),   # 1.495x
    (20.1, 30.15, True),   # exactly 1.5x in decimal, 30.150000000000002 in float
    (10.0, 20.0, True),    # 2x, exactly +10, exactly 20
    (10.1, 20.0, False),   # 1.98x but only +9.9
    (5.0, 19.9, False),    # 4x and +14.9 but below 20
])
def test_boundaries(lowest: float, latest: float, fires: bool) -> None:
    events = [titer(lowest, 0), titer(latest, 90)]
    assert len(findings_of(RULE, events, day(90))) == int(fires)


def test_a_single_measurement_is_not_a_rise() -> None:
    assert findings_of(RULE, [titer(300, 0)], day(0)) == []


@pytest.mark.parametrize(("earlier_day", "fires"), [(-365, True), (-366, False)])
def test_the_window_is_the_preceding_12_months(earlier_day: int, fires: bool) -> None:
    events = [titer(10, earlier_day), titer(40, 0)]
    assert len(findings_of(RULE, events, day(0))) == int(fires)


def test_compares_with_the_lowest_value_of_the_window() -> None:
    events = [titer(40, 0), titer(20, 100), titer(30, 200)]
    [f] = findings_of(RULE, events, day(200))
    assert (f.evidence[0].value, f.evidence[0].effective_at[:10]) == (20.0, str(day(100)))


def test_a_titer_that_fell_is_not_rising() -> None:
    assert findings_of(RULE, [titer(80, 0), titer(40, 90)], day(90)) == []


def test_units_u_per_ml_are_the_same_scale() -> None:
    events = [titer(12, 0, "U/mL"), titer(24, 90, "U/mL")]
    [f] = findings_of(RULE, events, day(90))
    assert [e.value for e in f.evidence if e.kind == "lab"] == [12.0, 24.0]


def test_episode_is_the_first_value_of_the_run_and_is_stable() -> None:
    events = [titer(20, 0), titer(30, 90), titer(45, 180)]
    assert [f.fingerprint for f in findings_of(RULE, events, day(100))] == [
        f"P1/titer_rising/{day(90).isoformat()}"]
    [f] = findings_of(RULE, events, day(180))
    assert f.episode == day(90).isoformat()
    assert f.evidence[1].value == 45.0  # the latest value is the one reported


def test_resolves_when_the_latest_no_longer_meets_it_and_a_new_rise_is_a_new_episode() -> None:
    events = [titer(20, 0), titer(30, 90), titer(25, 180), titer(40, 270)]
    assert findings_of(RULE, events, day(180)) == []
    [f] = findings_of(RULE, events, day(270))
    assert f.episode == day(270).isoformat()


def test_a_titer_falling_after_re_treatment_is_no_longer_rising() -> None:
    """Found in the demo cohort: 2 -> 126 -> 115 (rituximab) -> 42 RU/mL kept 'rising' open."""
    events = [titer(2, 0), titer(126, 90), titer(114.7, 150), titer(41.8, 190)]
    assert [f.episode for f in findings_of(RULE, events, day(90))] == [day(90).isoformat()]
    assert findings_of(RULE, events, day(150)) == []  # 115 < 126: the rise has stopped
    assert findings_of(RULE, events, day(190)) == []  # still 20x the low, but falling


def test_a_titer_equal_to_the_previous_one_still_counts_as_risen() -> None:
    events = [titer(10, 0), titer(40, 90), titer(40, 180)]
    assert [f.episode for f in findings_of(RULE, events, day(180))] == [day(90).isoformat()]
