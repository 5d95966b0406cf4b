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
    assert "No proteinuria result for more than 90 days: the last was 6 g/d" in f.message
    assert "mycophenolate started" in f.message
    assert [(e.kind, e.name, e.value, e.effective_at[:10]) for e in f.evidence] == [
        ("medication", "mycophenolate", 1000.0, str(day(0))),
        ("lab", "proteinuria_24h", 6.0, str(day(10))),
        ("derived", "result_due_every_days", 90.0, str(day(101))),  # overdue from day 10 + 91
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
    assert "No proteinuria result since mycophenolate started more than 90 days ago (2025-01-01)" in f.message
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


def test_the_message_names_its_source() -> None:
    """Regression: the source was printed as the literal text '{due.source}' (a missing f-prefix)."""
    [f] = findings_of(RULE, [mycophenolate(0), upd(6.0, 10)], day(101))
    assert "(KDIGO 2021)" in f.message and "{" not in f.message


# ---- the 12 months after a calcineurin inhibitor stops (issue 11) -------------------------------------
def tacrolimus(start: int = 0, end: int | None = 100) -> MedicationEvent:
    return med(PID, "tacrolimus", start, 2, "mg", frequency="bid", end=end)


@pytest.mark.parametrize(("as_of", "overdue"), [(100 + 90, False), (100 + 91, True)])
def test_after_a_cni_stops_proteinuria_is_due_every_90_days(as_of: int, overdue: bool) -> None:
    events = [tacrolimus(0, 100), lab(PID, "tac_trough", 6, "ng/mL", 90), upd(4.0, 100)]
    assert episodes(events, as_of) == ([f"proteinuria:{day(100).isoformat()}"] if overdue else [])


@pytest.mark.parametrize(("as_of", "due"), [(100 + 365, True), (100 + 366, False)])
def test_post_cni_monitoring_lasts_12_months_after_the_last_day(as_of: int, due: bool) -> None:
    events = [tacrolimus(0, 100), lab(PID, "tac_trough", 6, "ng/mL", 90), upd(4.0, 90)]
    assert episodes(events, as_of) == ([f"proteinuria:{day(90).isoformat()}"] if due else [])


def test_post_cni_message_names_the_stopped_course_and_why() -> None:
    events = [tacrolimus(0, 100), lab(PID, "tac_trough", 6, "ng/mL", 90), upd(4.0, 95)]
    [f] = findings_of(RULE, events, day(200))
    assert "tacrolimus course 2025-01-01..2025-04-11, stopped" in f.message
    assert "calcineurin inhibitor stops" in f.message and "40-50%" in f.message and "CJASN" in f.message


def test_post_cni_covers_the_last_course_of_either_cni_and_dose_changes() -> None:
    events = [med(PID, "cyclosporine", 0, 100, "mg", frequency="bid", end=59),
              med(PID, "cyclosporine", 60, 75, "mg", frequency="bid", end=120), upd(4.0, 110)]
    assert episodes(events, 201) == [f"proteinuria:{day(110).isoformat()}"]
    assert episodes(events, 200) == []


def test_no_post_cni_monitoring_while_a_cni_is_still_taken_or_never_was() -> None:
    assert episodes([med(PID, "ace_inhibitor", 0, 10, "mg", frequency="qd"), upd(4.0, 10)], 300) == []
    # the trough and proteinuria are due the usual way while tacrolimus goes on; no second finding
    events = [tacrolimus(0, None), lab(PID, "tac_trough", 6, "ng/mL", 250), upd(4.0, 10)]
    assert episodes(events, 300) == [f"proteinuria:{day(10).isoformat()}"]


# ---- white-cell counts during a cyclophosphamide course (issue 11) -------------------------------------
def cyclophosphamide(start: int = 0, end: int | None = 89) -> MedicationEvent:
    return med(PID, "cyclophosphamide", start, 150, "mg", frequency="qd", end=end)


def wbc(value: float, on: int) -> LabResult:
    return lab(PID, "wbc", value, "10^9/L", on)


def wbc_episodes(events: list[AnyEvent], as_of: int) -> list[str]:
    return [e for e in episodes([*events, upd(5.0, as_of)], as_of) if e.startswith("wbc:")]


@pytest.mark.parametrize(("as_of", "overdue"), [(14, False), (15, True)])
def test_a_wbc_is_due_within_14_days_of_the_start(as_of: int, overdue: bool) -> None:
    assert wbc_episodes([cyclophosphamide()], as_of) == ([f"wbc:{day(0).isoformat()}"] if overdue else [])


@pytest.mark.parametrize(("last", "as_of", "overdue"), [
    (40, 54, False), (40, 55, True),  # day 55 is in the first 8 weeks (days 0-55): 15 days is overdue
    (41, 56, False),  # from day 56 a WBC is due every 60 days
    (60, 120, False), (60, 121, True)])
def test_every_14_days_for_8_weeks_then_every_60(last: int, as_of: int, overdue: bool) -> None:
    events = [cyclophosphamide(0, 150), wbc(6.0, last)]
    assert wbc_episodes(events, as_of) == ([f"wbc:{day(last).isoformat()}"] if overdue else [])


@pytest.mark.parametrize(("as_of", "overdue"), [(89 + 30, True), (89 + 31, False)])
def test_wbc_monitoring_ends_30_days_after_the_last_day(as_of: int, overdue: bool) -> None:
    events = [cyclophosphamide(0, 89), wbc(6.0, 50)]
    assert wbc_episodes(events, as_of) == ([f"wbc:{day(50).isoformat()}"] if overdue else [])


def test_wbc_message_and_evidence() -> None:
    events = [cyclophosphamide(0, 89), wbc(6.2, 5), upd(5.0, 20)]
    [f] = [f for f in findings_of(RULE, events, day(20)) if f.episode.startswith("wbc:")]
    assert (f.severity, f.episode) == ("info", f"wbc:{day(5).isoformat()}")
    assert "No white-cell count result for more than 14 days: the last was 6.2 ×10⁹/L" in f.message
    assert "first 8 weeks of a cyclophosphamide course" in f.message and "every 14 days" in f.message
    assert "CJASN" in f.message
    assert [e.kind for e in f.evidence] == ["medication", "lab", "derived"]


def test_ponticelli_months_share_one_8_week_start() -> None:
    months = [cyclophosphamide(s, s + 29) for s in (30, 90, 150)]
    counts = [wbc(6.0, d) for d in (30, 40, 50, 60, 70, 80)]  # every 10 days for 8 weeks from day 30
    # day 95, in the second month: 15 days after the last count, but past the first 8 weeks
    assert wbc_episodes([*months, *counts], 95) == []
    assert wbc_episodes([*months, *counts], 141) == [f"wbc:{day(80).isoformat()}"]  # 61 days


def test_no_wbc_due_for_other_drugs_and_a_neutrophil_count_is_not_a_wbc() -> None:
    assert wbc_episodes([mycophenolate(0)], 30) == []
    events = [cyclophosphamide(), lab(PID, "neutrophils", 3.0, "10^9/L", 10)]
    assert wbc_episodes(events, 15) == [f"wbc:{day(0).isoformat()}"]
