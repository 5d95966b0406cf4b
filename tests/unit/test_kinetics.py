"""monitor.kinetics: the anti-PLA2R half-life and the projected dates below 14 and 2 RU/mL."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from monitor.kinetics import PROJECTION_HORIZON_DAYS, titer_kinetics
from tests.unit.rules.builders import DAY0, PID, day, lab, med, timeline

RTX = [med(PID, "rituximab", 0, 1000, "mg"), med(PID, "rituximab", 14, 1000, "mg")]


def titers(values: list[float | str | None], step: int = 30, first: int = 0) -> list:
    """anti-PLA2R results every `step` days from day `first`; '<2' is a censored value; None: no value."""
    out = []
    for i, v in enumerate(values):
        if v is None:
            continue
        kw = {}
        if isinstance(v, str):
            kw, v = {"comparator": v[0]}, float(v[1:])
        out.append(lab(PID, "anti_pla2r", v, "RU/mL", first + i * step, **kw))
    return out


def kin(values: list[float | str | None], as_of: int, step: int = 30, extra: list | None = None):  # type: ignore[no-untyped-def]
    return titer_kinetics(timeline(RTX + (extra or []) + titers(values, step)), day(as_of))


def test_exact_exponential_half_life_30_days_and_crossings() -> None:
    k = kin([160, 80, 40], as_of=70)
    assert k.state == "falling"
    assert k.course is not None and k.course.regimen == "anti_cd20" and k.course.start == DAY0
    assert k.half_life_days == pytest.approx(30.0, abs=1e-6)
    low, high = k.half_life_interval
    assert low == pytest.approx(30.0, abs=1e-6) and high == pytest.approx(30.0, abs=1e-6)  # a perfect fit
    below14, below2 = k.crossings
    # 40 -> 14 RU/mL: log2(40/14) = 1.515 half-lives = 45.4 days after the last value (day 60)
    assert below14.state == "projected" and below14.on == day(60 + 45)
    assert below14.earliest is not None and below14.latest is not None
    assert (below14.latest - below14.earliest).days <= 1
    # 40 -> 2 RU/mL: log2(20) x 30 = 129.7 days after the last value
    assert below2.state == "projected" and below2.on == day(60 + 130)
    assert "half-life 30 days" in k.message and "three values cannot reveal an outlier" in k.message


def _noisy(rng: np.random.Generator, half_life: float, n: int, cv: float) -> list[float]:
    truth = [300.0 * 0.5 ** (30 * i / half_life) for i in range(n)]
    return [round(t * math.exp(rng.normal(0, cv)), 1) for t in truth]


def test_confidence_intervals_cover_the_true_half_life_and_crossing_about_95_percent() -> None:
    """Seeded noise (multiplicative, 15 % CV, as an ELISA's): the 95 % intervals of the half-life and
    of the date below 14 RU/mL contain the truth in about 95 % of 300 series of six values."""
    rng = np.random.default_rng(20261201)
    half_life, n, trials = 40.0, 6, 300
    true_cross = 40.0 * math.log2(300 / 14)  # days from the first value
    covered_hl = covered_cross = bounded = 0
    for _ in range(trials):
        k = kin(_noisy(rng, half_life, n, 0.15), as_of=30 * (n - 1) + 1)
        low, high = k.half_life_interval
        if k.half_life_days is not None and low is not None and low <= half_life <= (high or math.inf):
            covered_hl += 1
        c = k.crossing(14.0)
        if c is not None and c.state == "projected" and c.earliest is not None:
            bounded += 1
            if (c.earliest - DAY0).days - 1 <= true_cross <= ((c.latest - DAY0).days + 1 if c.latest else math.inf):
                covered_cross += 1
        elif c is not None and c.state == "reached":
            bounded += 1
            covered_cross += 1  # a noisy series already below 14 says nothing against the interval
    assert 0.90 <= covered_hl / trials <= 0.99, covered_hl
    assert bounded == trials
    assert 0.90 <= covered_cross / trials <= 0.995, covered_cross


def test_one_outlier_is_left_out_and_named() -> None:
    k = kin([160, 80, 400, 20, 10], as_of=130)
    assert k.outlier is not None and k.outlier.value == 400 and k.outlier.day == day(60)
    assert k.half_life_days == pytest.approx(30.0, abs=1e-6)
    assert "400 RU/mL on" in k.message and "outlier" in k.message


def test_a_spike_just_after_the_start_does_not_hide_the_decline() -> None:
    # 400 is the highest value: fitting from it would start the decline at the spike
    k = kin([160, 400, 40, 20, 10], as_of=130)
    assert k.outlier is not None and k.outlier.value == 400
    assert k.half_life_days == pytest.approx(30.0, abs=1e-6)
    assert [p.role for p in k.points][:2] == ["fitted", "outlier"]


def test_without_an_outlier_nothing_is_left_out() -> None:
    rng = np.random.default_rng(7)
    k = kin(_noisy(rng, 40.0, 6, 0.05), as_of=160)
    assert k.outlier is None and k.state == "falling"


def test_censored_values_are_not_fitted_but_reach_the_targets() -> None:
    k = kin([160, 80, 40, "<2"], as_of=100)
    assert k.half_life_days == pytest.approx(30.0, abs=1e-6)  # '<2' fitted as 2 would flatten the slope
    assert [p.role for p in k.points] == ["fitted", "fitted", "fitted", "censored"]
    assert [(c.state, c.on) for c in k.crossings] == [("reached", day(90)), ("reached", day(90))]


def test_already_below_14_reports_the_date_and_projects_2() -> None:
    k = kin([160, 80, 40, 10], as_of=100)
    below14, below2 = k.crossings
    assert below14.state == "reached" and below14.on == day(90)
    assert below2.state == "projected" and below2.on > day(90)


def test_rising_titers_are_not_projected() -> None:
    k = kin([20, 40, 80], as_of=70)
    assert k.state == "rising" and k.half_life_days is None
    assert all(c.state == "not_projected" for c in k.crossings)
    assert "rising" in k.message


def test_a_titer_coming_back_after_a_fall_is_rising() -> None:
    k = kin([100, 40, 20, 60, 120], as_of=130)
    assert k.state == "rising"
    assert all(c.state == "not_projected" for c in k.crossings)


def test_a_flat_titer_is_not_falling() -> None:
    k = kin([50, 56, 47, 53, 51], as_of=130)
    assert k.state == "not_falling"
    assert all(c.state in ("not_projected", "projected", "beyond_horizon") for c in k.crossings)
    assert all(c.earliest is None or c.latest is None for c in k.crossings if c.state == "projected")


def test_too_few_values() -> None:
    k = kin([160, 80], as_of=40)
    assert k.state == "too_few_values" and k.fit is None
    assert "3 needed" in k.message


def test_no_titer_and_negative_titers() -> None:
    assert kin([], as_of=40).state == "no_titers"
    k = kin([8, 5, 3], as_of=70)
    assert k.state == "negative" and k.crossing(14.0).state == "reached"  # type: ignore[union-attr]


def test_a_slow_decline_is_not_projected_beyond_two_years() -> None:
    k = kin([200, 195, 190, 186, 181, 177], as_of=160)
    c = k.crossing(2.0)
    assert c is not None and c.state == "beyond_horizon" and c.on is None
    assert f"{PROJECTION_HORIZON_DAYS // 365} years" in c.note


def test_only_the_current_course_counts() -> None:
    """Titers of an earlier course (and before its 90-day baseline window) are not part of the fit."""
    old = [lab(PID, "anti_pla2r", v, "RU/mL", -400 + 30 * i) for i, v in enumerate([300, 30, 5, 2.5])]
    first = [med(PID, "rituximab", -420, 1000, "mg")]
    k = titer_kinetics(timeline(first + old + RTX + titers([160, 80, 40])), day(70))
    assert k.course is not None and k.course.start == DAY0
    assert [p.value for p in k.points] == [160, 80, 40]
    assert k.half_life_days == pytest.approx(30.0, abs=1e-6)


def test_supportive_care_uses_every_titer() -> None:
    k = titer_kinetics(timeline(titers([160, 80, 40])), day(70))
    assert k.course is None and k.since == DAY0 and k.state == "falling"
    assert "supportive care" in k.message


def test_as_of_hides_later_values() -> None:
    events = RTX + titers([160, 80, 40, 20, 10])
    early = titer_kinetics(timeline(events), day(65))
    assert len(early.points) == 3
    assert early.crossing(14.0).state == "projected"  # type: ignore[union-attr]
    assert titer_kinetics(timeline(events), day(125)).crossing(14.0).state == "reached"  # type: ignore[union-attr]


def test_as_dict_is_json_ready() -> None:
    import json

    d = kin([160, 80, 40], as_of=70).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["half_life_days"] == 30.0 and d["crossings"][0]["date"] == (DAY0 + timedelta(days=105)).isoformat()
    assert d["course"] == {"regimen": "anti_cd20", "start": "2025-01-01", "agents": ["rituximab"]}
    assert date.fromisoformat(d["as_of"]) == day(70)
