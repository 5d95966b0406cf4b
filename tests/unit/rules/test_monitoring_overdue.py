"""monitoring_overdue: on immunosuppression or within 12 months of an anti-CD20 course, a proteinuria
or (PLA2R-positive) anti-PLA2R missing for > 90 days, or a CNI trough missing for > 60 days.

Literature case (KDIGO 2021): response is judged on proteinuria and anti-PLA2R at 3 and 6 months of
therapy, and calcineurin inhibitors are dosed by trough level; a missing result delays all three.
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult, MedicationEvent

from monitor.rules import monitoring_overdue
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med

RULE = "monitoring_overdue"


def upd(value: float, on: int) -> LabResult:
    return lab(PID, "proteinuria_24h", value, "g/d", on)


def mycophenolate(start: int = 0, end: int | None = None) -> MedicationEvent:
    return med(PID, "mycophenolate", start, 1000, "mg", frequency="bid", end=end)


def cyclosporine(start: int = 0) -> MedicationEvent:
    return med(PID, "cyclosporine", start, 100, "mg", frequency="bid")


def episodes(events: list[AnyEvent], as_of: int) -> list[str]:
    return [f.episode for f in findings_of(RULE, events, day(as_of))]


def test_proteinuria_missing_for_91_days_is_an_info_finding() -> None:
    events = [mycophenolate(0), upd(6.0, 10)]
    [f] = findings_of(RULE, events, day(101))
    assert (f.rule, f.severity, f.episode) == (RULE, "info", f"proteinuria:{day(10).isoformat()}")
    assert "No proteinuria result for 91 days" in f.message and "6 g/d" in f.message
    assert "mycophenolate started" in f.message
    assert [(e.kind, e.name, e.value, e.effective_at[:10]) for e in f.evidence] == [
        ("medication", "mycophenolate", 1000.0, str(day(0))),
        ("lab", "proteinuria_24h", 6.0, str(day(10))),
        ("derived", "days_without_result", 91.0, str(day(101))),
    ]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = [mycophenolate(0), upd(6.0, 10)]
    assert monitoring_overdue.evaluate(context(events, day(101))) == findings_of(RULE, events, day(101))


@pytest.mark.parametrize(("as_of", "overdue"), [(100, False), (101, True)])
def test_90_days_is_on_time_91_is_overdue(as_of: int, overdue: bool) -> None:
    assert len(findings_of(RULE, [mycophenolate(0), upd(6.0, 10)], day(as_of))) == int(overdue)


@pytest.mark.parametrize(("as_of", "overdue"), [(90, False), (91, True)])
def test_a_recent_therapy_start_is_the_anchor(as_of: int, overdue: bool) -> None:
    # last proteinuria long before the therapy: counted from the start, not from the old value
    events = [upd(6.0, -200), mycophenolate(0)]
    assert episodes(events, as_of) == ([f"proteinuria:{day(0).isoformat()}"] if overdue else [])


def test_never_measured_is_counted_from_the_therapy_start() -> None:
    [f] = findings_of(RULE, [mycophenolate(0)], day(91))
    assert f.episode == f"proteinuria:{day(0).isoformat()}"
    assert "No proteinuria result since mycophenolate started 91 days ago" in f.message
    assert [e.kind for e in f.evidence] == ["medication", "derived"]


def test_upcr_counts_as_proteinuria() -> None:
    events = [mycophenolate(0), upd(6.0, 10), lab(PID, "upcr", 400, "mg/mmol", 80)]
    assert episodes(events, 101) == []
    [f] = findings_of(RULE, events, day(171))
    assert f.episode == f"proteinuria:{day(80).isoformat()}"
    assert f.evidence[1].name == "upcr"


def test_off_therapy_nothing_is_overdue() -> None:
    events = [mycophenolate(0, end=50), upd(6.0, 10), lab(PID, "anti_pla2r", 100, "RU/mL", 10)]
    assert findings_of(RULE, events, day(200)) == []


def test_supportive_therapy_alone_is_not_immunosuppression() -> None:
    events = [med(PID, "ace_inhibitor", 0, 10, "mg", frequency="qd"), upd(6.0, 10)]
    assert findings_of(RULE, events, day(300)) == []


def test_fingerprint_is_stable_and_a_new_result_resolves_it() -> None:
    events = [mycophenolate(0), upd(6.0, 10)]
    prints = {f.fingerprint for d in (101, 150, 300) for f in findings_of(RULE, events, day(d))}
    assert prints == {f"P1/{RULE}/proteinuria:{day(10).isoformat()}"}
    events.append(upd(5.0, 160))
    assert episodes(events, 200) == []
    assert episodes(events, 251) == [f"proteinuria:{day(160).isoformat()}"]  # a new episode


@pytest.mark.parametrize(("as_of", "overdue"), [(379, True), (380, False)])
def test_monitoring_lasts_12_months_after_the_last_anti_cd20_dose(as_of: int, overdue: bool) -> None:
    # last rituximab dose on day 14; 379 - 14 = 365 days (within 12 months), 380 - 14 = 366
    events = [med(PID, "rituximab", 0, 1000, "mg"), med(PID, "rituximab", 14, 1000, "mg"), upd(6.0, 200)]
    expected = [f"proteinuria:{day(200).isoformat()}"] if overdue else []
    assert episodes(events, as_of) == expected


def test_anti_cd20_monitoring_is_anchored_at_the_first_dose() -> None:
    events = [upd(6.0, -200), med(PID, "rituximab", 0, 1000, "mg"), med(PID, "rituximab", 14, 1000, "mg")]
    assert episodes(events, 90) == []
    assert episodes(events, 91) == [f"proteinuria:{day(0).isoformat()}"]


@pytest.mark.parametrize(("titer", "unit", "followed"), [
    (14.0, "RU/mL", True), (13.9, "RU/mL", False), (150.0, "U/mL", True)])
def test_anti_pla2r_is_due_only_for_pla2r_positive_patients(titer: float, unit: str, followed: bool) -> None:
    events = [lab(PID, "anti_pla2r", titer, unit, -5), mycophenolate(0), upd(6.0, 100)]
    expected = [f"anti_pla2r:{day(0).isoformat()}"] if followed else []
    assert episodes(events, 101) == expected


def test_anti_pla2r_90_vs_91_days_after_the_last_titer() -> None:
    events = [lab(PID, "anti_pla2r", 60, "RU/mL", 20), mycophenolate(0), upd(6.0, 100)]
    assert episodes(events, 110) == []
    [f] = findings_of(RULE, events, day(111))
    assert f.episode == f"anti_pla2r:{day(20).isoformat()}"
    assert "anti-PLA2R" in f.message and "60 RU/mL" in f.message


@pytest.mark.parametrize(("as_of", "overdue"), [(70, False), (71, True)])
def test_cyclosporine_trough_missing_for_more_than_60_days(as_of: int, overdue: bool) -> None:
    events = [cyclosporine(0), lab(PID, "csa_trough", 120, "ng/mL", 10), upd(6.0, as_of)]
    assert episodes(events, as_of) == ([f"csa_trough:{day(10).isoformat()}"] if overdue else [])


def test_trough_in_nmol_per_l_counts() -> None:
    events = [cyclosporine(0), lab(PID, "csa_trough", 100, "nmol/L", 50), upd(6.0, 100)]
    assert episodes(events, 100) == []


def test_a_trough_of_the_other_cni_does_not_count() -> None:
    events = [med(PID, "tacrolimus", 0, 2, "mg", frequency="bid"), lab(PID, "csa_trough", 120, "ng/mL", 50),
              upd(6.0, 100)]
    [f] = findings_of(RULE, events, day(100))
    assert f.episode == f"tac_trough:{day(0).isoformat()}"
    assert "tacrolimus trough" in f.message


def test_one_finding_per_missing_series() -> None:
    events = [lab(PID, "anti_pla2r", 100, "RU/mL", -5), upd(8.0, -5), cyclosporine(0)]
    found = findings_of(RULE, events, day(120))
    assert sorted(f.episode for f in found) == [
        f"anti_pla2r:{day(0).isoformat()}", f"csa_trough:{day(0).isoformat()}",
        f"proteinuria:{day(0).isoformat()}"]
    assert {f.severity for f in found} == {"info"}
