"""Remission state machine (monitor/remission.py) against the KDIGO 2021 definitions."""

from __future__ import annotations

from typing import Any

from monitor.remission import RemissionHistory, remission_history
from monitor.timeline import Timeline
from tests.unit.rules.builders import PID, day, lab


def p24(value: float, on: int) -> Any:
    return lab(PID, "proteinuria_24h", value, "g/d", on)


def history(*events: Any) -> RemissionHistory:
    return remission_history(Timeline.build(PID, list(events)))


def test_no_data_and_nephrotic() -> None:
    assert history().state == "no_data"
    h = history(p24(8.0, 0), p24(9.0, 30))
    assert h.state == "nephrotic"
    assert h.episode_peak is not None and h.episode_peak.value == 9.0
    assert h.episode_start == day(0)


def test_partial_remission_needs_two_values_at_least_7_days_apart() -> None:
    six_days = history(p24(8.0, 0), p24(3.0, 30), p24(2.9, 36))
    assert six_days.state == "non_nephrotic" and six_days.remissions == ()
    seven_days = history(p24(8.0, 0), p24(3.0, 30), p24(2.9, 37))
    assert seven_days.state == "partial_remission"
    assert seven_days.since == day(37)
    (r,) = seven_days.remissions
    assert r.kind == "partial" and r.confirmed_at == day(37)
    assert [e.effective_date for e in r.evidence] == [day(30), day(37)]


def test_a_value_in_between_that_does_not_qualify_restarts_confirmation() -> None:
    h = history(p24(8.0, 0), p24(3.0, 30), p24(4.0, 34), p24(3.0, 38))
    assert h.state == "non_nephrotic"


def test_partial_remission_needs_50_percent_below_the_peak() -> None:
    # peak 6: 3.0 is exactly 50% below (qualifies), 3.01 is not
    assert history(p24(6.0, 0), p24(3.0, 30), p24(3.0, 37)).state == "partial_remission"
    assert history(p24(6.0, 0), p24(3.01, 30), p24(3.01, 37)).state == "non_nephrotic"


def test_partial_remission_needs_below_3_5() -> None:
    # peak 10: 3.5 is >= 50% below but not < 3.5
    assert history(p24(10.0, 0), p24(3.5, 30), p24(3.5, 37)).state == "nephrotic"
    assert history(p24(10.0, 0), p24(3.49, 30), p24(3.49, 37)).state == "partial_remission"


def test_complete_remission_below_0_3_with_normal_albumin() -> None:
    base = [p24(8.0, 0), p24(0.2, 100), p24(0.29, 107)]
    h = history(*base)
    assert h.state == "complete_remission"
    assert [r.kind for r in h.remissions] == ["complete"]
    with_normal = history(*base, lab(PID, "serum_albumin", 36, "g/L", 105))
    assert with_normal.state == "complete_remission"
    # albumin 30 g/L is not normal: the same proteinuria is only a partial remission
    with_low = history(*base, lab(PID, "serum_albumin", 30, "g/L", 105))
    assert with_low.state == "partial_remission"
    assert history(p24(8.0, 0), p24(0.2, 100), p24(0.3, 107)).state == "partial_remission"  # 0.3 is not < 0.3


def test_albumin_recovering_later_upgrades_to_complete() -> None:
    h = history(p24(8.0, 0), p24(0.2, 100), lab(PID, "serum_albumin", 30, "g/L", 101), p24(0.25, 107),
                lab(PID, "serum_albumin", 38, "g/L", 140), p24(0.2, 150))
    assert h.state == "complete_remission"
    assert [r.kind for r in h.remissions] == ["partial", "complete"]


def in_pr() -> list[Any]:
    return [p24(8.0, 0), p24(3.0, 30), p24(2.5, 40)]  # PR confirmed on day 40


def test_one_high_value_after_remission_is_a_possible_relapse() -> None:
    h = history(*in_pr(), p24(5.0, 100))
    assert h.state == "possible_relapse"
    relapse = h.open_relapse
    assert relapse is not None and relapse.confirmed_at is None and relapse.first.value == 5.0
    assert relapse.after.kind == "partial"


def test_second_high_value_7_days_later_confirms_the_relapse() -> None:
    assert history(*in_pr(), p24(5.0, 100), p24(4.0, 106)).state == "possible_relapse"
    h = history(*in_pr(), p24(5.0, 100), p24(4.0, 107))
    assert h.state == "relapse"
    relapse = h.open_relapse
    assert relapse is not None and relapse.confirmed_at == day(107)
    assert relapse.episode == day(100).isoformat()


def test_unconfirmed_relapse_is_closed_when_values_fall_back() -> None:
    h = history(*in_pr(), p24(5.0, 100), p24(2.0, 110))
    assert h.state == "partial_remission"
    assert h.open_relapse is None
    (closed,) = h.relapses
    assert closed.ended_by == "not_confirmed" and closed.ended_at == day(110)
    assert closed.confirmed_at is None


def test_confirmed_relapse_opens_a_new_episode_with_its_own_peak() -> None:
    h = history(*in_pr(), p24(4.0, 100), p24(4.5, 107))
    assert h.state == "relapse"
    assert h.episode_start == day(100)
    assert h.episode_peak is not None and h.episode_peak.value == 4.5
    # 3.0 would be >= 50% below the first peak (8) but not below the new one (4.5): no remission
    h = history(*in_pr(), p24(4.0, 100), p24(4.5, 107), p24(3.0, 150), p24(3.0, 160))
    assert h.state == "relapse" and h.open_relapse is not None
    # 2.2 is >= 50% below 4.5: a confirmed PR ends the relapse
    h = history(*in_pr(), p24(4.0, 100), p24(4.5, 107), p24(2.2, 150), p24(2.2, 160))
    assert h.state == "partial_remission"
    assert h.relapses[-1].ended_by == "remission" and h.relapses[-1].ended_at == day(160)
    assert len(h.remissions) == 2
    assert h.remission_confirmed_between(day(150), day(170)) is h.remissions[-1]


def test_upcr_in_mg_per_mmol() -> None:
    def upcr(mg_mmol: float, on: int) -> Any:
        return lab(PID, "upcr", mg_mmol, "mg/mmol", on)

    peak = upcr(700, 0)  # 6.19 g/g
    assert history(peak, upcr(300, 30), upcr(300, 37)).state == "partial_remission"  # 2.65 g/g
    assert history(peak, upcr(25, 30), upcr(25, 37)).state == "complete_remission"  # 0.22 g/g
    assert history(peak, upcr(40, 30), upcr(40, 37)).state == "partial_remission"  # 0.35 g/g


def test_relapse_from_complete_remission() -> None:
    h = history(p24(8.0, 0), p24(0.2, 100), p24(0.2, 110), p24(6.0, 200), p24(7.0, 210))
    assert h.state == "relapse"
    assert h.relapses[-1].after.kind == "complete"
