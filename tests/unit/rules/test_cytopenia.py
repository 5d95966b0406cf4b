"""cytopenia: during cyclophosphamide (to 30 days after it), mycophenolate, or the 12 months after the
first anti-CD20 dose, the latest WBC < 3.0 x10^9/L is a warning and the latest neutrophil count
< 1.0 x10^9/L is critical.

Literature case: seed review (cyclophosphamide: leukopenia in 18%, infection in 17%); CTCAE v5.0
(WBC decreased grade 2 < 3.0; neutrophil count decreased grade 3 < 1.0); CJASN review table (WBC
weekly for 8 weeks on a modified Ponticelli regimen).
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult, MedicationEvent
from monitor.rules import RULES, cytopenia
from monitor.rules.cytopenia import (
    ANTI_CD20_EXPOSURE_DAYS,
    CYCLOPHOSPHAMIDE_TAIL_DAYS,
    NEUTROPHILS_LOW_BELOW,
    WBC_LOW_BELOW,
)
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med

RULE = "cytopenia"


def wbc(value: float, on: int, unit: str = "10^9/L", **kw: object) -> LabResult:
    return lab(PID, "wbc", value, unit, on, **kw)


def neut(value: float, on: int, unit: str = "10^9/L", **kw: object) -> LabResult:
    return lab(PID, "neutrophils", value, unit, on, **kw)


def cyclophosphamide(start: int = 0, end: int | None = 89) -> MedicationEvent:
    return med(PID, "cyclophosphamide", start, 150, "mg", frequency="qd", end=end)


def mycophenolate(start: int = 0, end: int | None = None) -> MedicationEvent:
    return med(PID, "mycophenolate", start, 1000, "mg", frequency="bid", end=end)


def severities(events: list[AnyEvent], as_of: int) -> list[str]:
    return [f.severity for f in findings_of(RULE, events, day(as_of))]


def test_low_wbc_on_cyclophosphamide_is_a_warning_with_the_numbers() -> None:
    low = wbc(2.4, 40)
    [f] = findings_of(RULE, [cyclophosphamide(), wbc(6.1, 0), low], day(45))
    assert (f.rule, f.severity, f.episode) == (RULE, "warning", day(40).isoformat())
    assert "white cells 2.4 ×10⁹/L on 2025-02-10 (below 3.0)" in f.message
    assert "cyclophosphamide (course started 2025-01-01, last day 2025-03-31" in f.message
    assert "CTCAE" in f.message and "18%" in f.message
    assert "mg" not in f.message  # advises, never doses
    assert [(e.kind, e.name, e.value) for e in f.evidence] == [
        ("medication", "cyclophosphamide", 150.0), ("lab", "wbc", 2.4)]
    assert f.evidence[1].event_id == low.identity


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [cyclophosphamide(), wbc(2.4, 40)]
    assert cytopenia.evaluate(context(events, day(45))) == findings_of(RULE, events, day(45))


def test_registered() -> None:
    assert cytopenia in RULES


@pytest.mark.parametrize(("value", "expected"), [(2.99, ["warning"]), (3.0, []), (3.01, [])])
def test_wbc_boundary(value: float, expected: list[str]) -> None:
    assert WBC_LOW_BELOW == 3.0
    assert severities([cyclophosphamide(), wbc(value, 40)], 45) == expected


@pytest.mark.parametrize(("value", "expected"), [(0.99, ["critical"]), (1.0, []), (1.01, [])])
def test_neutrophil_boundary(value: float, expected: list[str]) -> None:
    assert NEUTROPHILS_LOW_BELOW == 1.0
    assert severities([cyclophosphamide(), wbc(4.0, 40), neut(value, 40)], 45) == expected


def test_both_low_is_critical_and_the_earliest_run_names_the_episode() -> None:
    events = [cyclophosphamide(), wbc(2.8, 30), neut(1.6, 30), wbc(2.2, 40), neut(0.7, 40)]
    [f] = findings_of(RULE, events, day(45))
    assert (f.severity, f.episode) == ("critical", day(30).isoformat())
    assert "neutrophils 0.7" in f.message and "white cells 2.2" in f.message
    assert "severe neutropenia" in f.message
    assert [e.value for e in f.evidence if e.kind == "lab"] == [0.7, 2.8, 2.2]


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (2400, "cells/uL", ["warning"]), (2.4, "K/uL", ["warning"]), (3000, "/uL", []), (2.9, "G/L", ["warning"])])
def test_units_are_converted_and_shown_as_reported(value: float, unit: str, expected: list[str]) -> None:
    found = findings_of(RULE, [cyclophosphamide(), wbc(value, 40, unit)], day(45))
    assert [f.severity for f in found] == expected
    if found and unit == "cells/uL":
        assert "2.4 ×10⁹/L (2400 cells/µL)" in found[0].message


@pytest.mark.parametrize(("comparator", "value", "expected"), [
    ("<", 0.5, ["critical"]), ("<", 1.0, ["critical"]), ("<", 1.5, []), (">", 0.5, [])])
def test_censored_neutrophil_counts(comparator: str, value: float, expected: list[str]) -> None:
    events = [cyclophosphamide(), wbc(4.0, 40), neut(value, 40, comparator=comparator)]
    assert severities(events, 45) == expected


# ---- exposure windows -----------------------------------------------------------------------------
@pytest.mark.parametrize(("as_of", "fires"), [(89 + CYCLOPHOSPHAMIDE_TAIL_DAYS, True),
                                              (90 + CYCLOPHOSPHAMIDE_TAIL_DAYS, False)])
def test_cyclophosphamide_exposure_ends_30_days_after_its_last_day(as_of: int, fires: bool) -> None:
    assert CYCLOPHOSPHAMIDE_TAIL_DAYS == 30
    events = [cyclophosphamide(0, 89), wbc(2.5, 100)]  # drawn 11 days after the last dose
    assert severities(events, as_of) == (["warning"] if fires else [])


def test_a_count_drawn_before_the_therapy_is_not_its_effect() -> None:
    events = [wbc(2.5, -1), cyclophosphamide(0, 89)]
    assert severities(events, 10) == []
    assert severities([wbc(2.5, 0), cyclophosphamide(0, 89)], 10) == ["warning"]  # on its first day


def test_open_ended_cyclophosphamide_stays_an_exposure() -> None:
    assert severities([cyclophosphamide(0, None), wbc(2.5, 400)], 700) == ["warning"]


def test_ponticelli_alternate_months_are_one_exposure() -> None:
    months = [cyclophosphamide(30, 59), cyclophosphamide(90, 119), cyclophosphamide(150, 179)]
    # a count in a steroid month (day 75) between two cyclophosphamide months still counts
    assert severities([*months, wbc(2.7, 75)], 80) == ["warning"]
    # on day 80 the later months are not known yet; by day 200 the course is known whole
    [f] = findings_of(RULE, [*months, wbc(2.7, 75)], day(80))
    assert "course started 2025-01-31, last day 2025-03-01" in f.message
    [f] = findings_of(RULE, [*months, wbc(2.7, 75)], day(200))
    assert "course started 2025-01-31, last day 2025-06-29" in f.message


@pytest.mark.parametrize(("as_of", "fires"), [(120, True), (121, False)])
def test_mycophenolate_exposure_lasts_while_it_is_taken(as_of: int, fires: bool) -> None:
    events = [mycophenolate(0, end=120), wbc(2.6, 100)]
    assert severities(events, as_of) == (["warning"] if fires else [])


@pytest.mark.parametrize(("as_of", "fires"), [(ANTI_CD20_EXPOSURE_DAYS, True), (ANTI_CD20_EXPOSURE_DAYS + 1, False)])
def test_anti_cd20_exposure_is_12_months_from_the_first_dose(as_of: int, fires: bool) -> None:
    assert ANTI_CD20_EXPOSURE_DAYS == 365
    events = [med(PID, "rituximab", 0, 1000, "mg", route="iv"), med(PID, "rituximab", 14, 1000, "mg", route="iv"),
              neut(0.6, 300), wbc(3.5, 300)]  # late-onset neutropenia
    assert severities(events, as_of) == (["critical"] if fires else [])


def test_obinutuzumab_counts_as_anti_cd20() -> None:
    events = [med(PID, "obinutuzumab", 0, 1000, "mg", route="iv"), wbc(2.0, 60)]
    assert severities(events, 60) == ["warning"]


def test_back_to_back_windows_are_one_exposure() -> None:
    # mycophenolate starts while cyclophosphamide's 30-day tail is running: the count drawn on
    # cyclophosphamide is still judged once mycophenolate is the only exposure left
    events = [cyclophosphamide(0, 89), mycophenolate(110), wbc(2.5, 80)]
    assert severities(events, 200) == ["warning"]
    gap = [cyclophosphamide(0, 89), mycophenolate(130), wbc(2.5, 80)]  # a break of 11 days
    assert severities(gap, 200) == []


# ---- off therapy, resolution ---------------------------------------------------------------------
@pytest.mark.parametrize("drug", ["ace_inhibitor", "glucocorticoid", "tacrolimus", "anticoagulant"])
def test_other_drugs_open_no_exposure(drug: str) -> None:
    assert severities([med(PID, drug, 0, 10, "mg", frequency="qd"), wbc(2.0, 10), neut(0.5, 10)], 20) == []


def test_no_therapy_no_finding() -> None:
    assert severities([wbc(1.5, 10), neut(0.3, 10)], 20) == []


def test_resolves_with_normal_counts_and_a_new_fall_is_a_new_episode() -> None:
    events = [cyclophosphamide(0, 89), wbc(2.5, 30), neut(0.9, 30)]
    assert [f.episode for f in findings_of(RULE, events, day(31))] == [day(30).isoformat()]
    events += [wbc(4.2, 40), neut(2.1, 40)]
    assert severities(events, 41) == []
    events += [wbc(2.9, 60)]
    [f] = findings_of(RULE, events, day(61))
    assert (f.severity, f.episode) == ("warning", day(60).isoformat())


def test_neutrophils_recovered_but_wbc_still_low_downgrades_to_warning() -> None:
    events = [cyclophosphamide(0, 89), wbc(2.5, 30), neut(0.9, 30), wbc(2.8, 40), neut(1.4, 40)]
    [f] = findings_of(RULE, events, day(41))
    assert (f.severity, f.episode) == ("warning", day(30).isoformat())
