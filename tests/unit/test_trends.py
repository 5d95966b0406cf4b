"""Pure series helpers (monitor/trends.py)."""

from __future__ import annotations

import math

import pytest

from monitor.trends import (
    ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML,
    ANTI_PLA2R_NEGATIVE_BELOW_RU_ML,
    ANTI_PLA2R_POSITIVE_FROM_RU_ML,
    halving_time_days,
    immunological_class,
    immunological_state,
    log_slope_per_30_days,
    percent_change,
    titer_class,
    trailing_min,
)
from tests.unit.rules.builders import PID, day, lab


def titers(*pairs: tuple[int, float]) -> list:
    return [lab(PID, "anti_pla2r", v, "RU/mL", d) for d, v in pairs]


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, "negative"), (13.99, "negative"), (14.0, "borderline"), (19.9, "borderline"),
    (19.99, "borderline"), (20.0, "positive"), (1500.0, "positive"),
])
def test_titer_class_boundaries(value: float, expected: str) -> None:
    assert titer_class(value) == expected


def test_percent_change() -> None:
    assert percent_change(100, 75) == pytest.approx(-25.0)
    assert percent_change(8, 12) == pytest.approx(50.0)
    assert percent_change(0, 5) is None


def test_trailing_min_window_edges_and_ties() -> None:
    series = titers((0, 10), (100, 30), (200, 10), (300, 40), (365, 50))
    # window [0, 365]: two tens, the earliest wins
    found = trailing_min(series, day(365), 365)
    assert found is not None and found.effective_date == day(0)
    # window [1, 365] excludes day 0
    found = trailing_min(series, day(365), 364)
    assert found is not None and found.effective_date == day(200)
    # excluding the end value itself
    found = trailing_min(titers((300, 40), (365, 5)), day(365), 365, include_end=False)
    assert found is not None and found.value == 40
    assert trailing_min(series, day(-1), 30) is None


def test_log_slope_of_an_exact_halving_every_30_days() -> None:
    series = titers((0, 160), (30, 80), (60, 40), (90, 20))
    slope = log_slope_per_30_days(series)
    assert slope == pytest.approx(math.log(0.5))
    assert halving_time_days(series) == pytest.approx(30.0)


def test_log_slope_rising_and_halving_time_none() -> None:
    series = titers((0, 10), (60, 40))
    assert log_slope_per_30_days(series) == pytest.approx(math.log(2))
    assert halving_time_days(series) is None


def test_log_slope_needs_two_distinct_days_and_skips_zero() -> None:
    assert log_slope_per_30_days(titers((0, 10))) is None
    assert log_slope_per_30_days(titers((0, 10), (0, 12))) is None
    # 0 has no logarithm: skipped, leaving one point
    assert log_slope_per_30_days(titers((0, 10), (30, 0))) is None
    # with a floor (detection limit 2 RU/mL) the 0 counts as 2
    assert log_slope_per_30_days(titers((0, 8), (30, 0)), floor=2) == pytest.approx(math.log(0.25))
    with pytest.raises(ValueError):
        log_slope_per_30_days(titers((0, 8)), floor=0)


# ------------------------------------------------------------------ immunological state (patient summary)


@pytest.mark.parametrize(("value", "comparator", "expected"), [
    (1.99, None, "complete immunological remission"), (2.0, None, "negative"),
    (13.99, None, "negative"), (14.0, None, "borderline"), (19.9, None, "borderline"),
    (19.99, None, "borderline"), (20.0, None, "positive"), (168.0, None, "positive"),
    (2.0, "<", "complete immunological remission"),  # "<2 RU/mL", the ELISA's lower reporting limit
    (2.0, "<=", "negative"), (14.0, "<", "negative"), (14.0, "<=", None), (20.0, "<", None),
    (20.0, ">", "positive"), (20.0, ">=", "positive"), (15.0, ">", None),
])
def test_immunological_class(value: float, comparator: str | None, expected: str | None) -> None:
    assert immunological_class(value, comparator) == expected


def test_immunological_state_is_the_latest_titer_with_its_date() -> None:
    from tests.unit.rules.builders import PID, lab

    titers = (lab(PID, "anti_pla2r", 150, "RU/mL", 0), lab(PID, "anti_pla2r", 16.5, "RU/mL", 90))
    found = immunological_state(titers)
    assert found is not None and found.state == "borderline" and found.titer is titers[-1]
    assert found.as_dict()["date"] == "2025-04-01" and found.as_dict()["state"] == "borderline"
    assert immunological_state(()) is None
    censored = immunological_state((lab(PID, "anti_pla2r", 50, "RU/mL", 0, comparator="<"),))
    assert censored is not None and censored.as_dict()["state"] == "indeterminate"


def test_cut_offs_are_the_shared_ones() -> None:
    assert (ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML, ANTI_PLA2R_NEGATIVE_BELOW_RU_ML,
            ANTI_PLA2R_POSITIVE_FROM_RU_ML) == (2.0, 14.0, 20.0)
