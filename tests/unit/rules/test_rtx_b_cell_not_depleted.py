"""rtx_b_cell_not_depleted: CD19 >= 5 cells/uL 7-60 days after the last dose of an anti-CD20 course.

Literature case (KDIGO 2021 practice points): nephrotic patients lose rituximab in the urine, and
B cells that are still present weeks after the course flag an under-dosed course.
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult

from monitor.rules import rtx_b_cell_not_depleted
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med

RULE = "rtx_b_cell_not_depleted"
EPISODE = f"rituximab:{day(0).isoformat()}"
LAST_DOSE = 14


def course(start: int = 0) -> list[AnyEvent]:
    return [med(PID, "rituximab", start, 1000, "mg", route="iv"),
            med(PID, "rituximab", start + 14, 1000, "mg", route="iv")]


def cd19(value: float, on: int, unit: str = "cells/uL") -> LabResult:
    return lab(PID, "cd19_count", value, unit, on)


def test_b_cells_present_weeks_after_the_course_fire_a_warning() -> None:
    events = [*course(), cd19(25, LAST_DOSE + 21)]
    [f] = findings_of(RULE, events, day(LAST_DOSE + 21))
    assert (f.rule, f.severity, f.episode) == (RULE, "warning", EPISODE)
    assert "CD19 25 cells/\u00b5L" in f.message and "21 days after the last rituximab dose" in f.message
    assert [(e.kind, e.name, e.value, e.effective_at[:10]) for e in f.evidence] == [
        ("medication", "rituximab", 1000.0, str(day(LAST_DOSE))),
        ("lab", "cd19_count", 25.0, str(day(LAST_DOSE + 21))),
    ]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [*course(), cd19(25, 35)]
    assert rtx_b_cell_not_depleted.evaluate(context(events, day(35))) == findings_of(RULE, events, day(35))


@pytest.mark.parametrize(("value", "fires"), [(5.0, True), (4.9, False)])
def test_depleted_means_below_5(value: float, fires: bool) -> None:
    events = [*course(), cd19(value, LAST_DOSE + 21)]
    assert len(findings_of(RULE, events, day(LAST_DOSE + 21))) == int(fires)


@pytest.mark.parametrize(("days_after", "fires"), [(6, False), (7, True), (60, True), (61, False)])
def test_window_is_7_to_60_days_after_the_last_dose(days_after: int, fires: bool) -> None:
    events = [*course(), cd19(30, LAST_DOSE + days_after)]
    assert len(findings_of(RULE, events, day(LAST_DOSE + days_after))) == int(fires)


@pytest.mark.parametrize(("value", "unit", "fires"), [(0.005, "10^9/L", True), (0.0049, "10^9/L", False),
                                                      (5, "10^6/L", True), (5, "/mm3", True)])
def test_unit_variants(value: float, unit: str, fires: bool) -> None:
    events = [*course(), cd19(value, LAST_DOSE + 21, unit)]
    found = findings_of(RULE, events, day(LAST_DOSE + 21))
    assert len(found) == int(fires)
    if fires:
        assert (found[0].evidence[-1].value, found[0].evidence[-1].unit) == (5.0, "cells/uL")


def test_window_counts_from_the_last_dose_not_the_first() -> None:
    # 10 days after the first dose is before the window of the last one (day 14 + 7)
    events = [*course(), cd19(30, 10)]
    assert findings_of(RULE, events, day(20)) == []


def test_no_anti_cd20_course_no_alert() -> None:
    events = [med(PID, "cyclosporine", 0, 100, "mg", frequency="bid"), cd19(200, 30)]
    assert findings_of(RULE, events, day(30)) == []


def test_resolves_with_a_later_count_below_5_even_after_the_window() -> None:
    events = [*course(), cd19(25, 30), cd19(2, 120)]
    assert len(findings_of(RULE, events, day(119))) == 1
    assert findings_of(RULE, events, day(120)) == []


def test_depleted_then_present_again_inside_the_window_fires() -> None:
    events = [*course(), cd19(1, 25), cd19(12, 60)]
    assert findings_of(RULE, events, day(59)) == []
    [f] = findings_of(RULE, events, day(60))
    assert [e.value for e in f.evidence if e.kind == "lab"] == [12.0]


def test_fingerprint_is_the_course_and_stable_when_reassessed_later() -> None:
    events = [*course(), cd19(25, 30), cd19(40, 50)]
    prints = {f.fingerprint for d in (30, 50, 200) for f in findings_of(RULE, events, day(d))}
    assert prints == {f"P1/{RULE}/{EPISODE}"}
    [f] = findings_of(RULE, events, day(200))
    assert [e.value for e in f.evidence if e.kind == "lab"] == [25.0, 40.0]


def test_a_new_course_replaces_the_old_episode() -> None:
    events = [*course(), cd19(25, 30), *course(200)]
    assert findings_of(RULE, events, day(200)) == []
    events.append(cd19(9, 240))
    [f] = findings_of(RULE, events, day(240))
    assert f.episode == f"rituximab:{day(200).isoformat()}"
