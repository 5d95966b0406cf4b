"""rtx_redose_due: 183-240 days after the first dose of an anti-CD20 course, proteinuria fell >= 25%
from the course baseline without complete remission, and no anti-CD20 dose since day 150.

Literature case (MENTOR, Fervenza NEJM 2019): rituximab 1 g on days 1 and 15; at 6 months, patients
whose proteinuria had fallen by >= 25% without complete remission received a second course.
"""

from __future__ import annotations

import pytest

from monitor import therapy
from monitor.events import LabResult
from monitor.rules import RULES, rtx_non_response, rtx_redose_due
from monitor.rules.rtx_redose_due import NO_DOSE_SINCE_DAY, WINDOW_FROM_DAYS, WINDOW_TO_DAYS
from monitor.therapy import COURSE_BASELINE_LOOKBACK_DAYS, course_baseline_proteinuria
from tests.unit.rules.builders import PID, AnyEvent, context, day, findings_of, lab, med

RULE = "rtx_redose_due"
EPISODE = f"rituximab:{day(0).isoformat()}"


def upd(value: float, on: int) -> LabResult:
    return lab(PID, "proteinuria_24h", value, "g/d", on)


def titer(value: float, on: int) -> LabResult:
    return lab(PID, "anti_pla2r", value, "RU/mL", on)


def mentor(start: int = 0, drug: str = "rituximab") -> list[AnyEvent]:
    return [med(PID, drug, start, 1000, "mg", route="iv"), med(PID, drug, start + 14, 1000, "mg", route="iv")]


def partial_responder(latest: float = 5.0, on: int = 170) -> list[AnyEvent]:
    """8 g/d before the course, `latest` g/d at ~6 months, titer negative: a MENTOR partial responder."""
    return [upd(8.0, -10), titer(120, -10), *mentor(), titer(8, 90), upd(6.5, 90), titer(4, on), upd(latest, on)]


def found(events: list[AnyEvent], as_of: int) -> list[tuple[str, str]]:
    return [(f.severity, f.episode) for f in findings_of(RULE, events, day(as_of))]


def test_registered() -> None:
    assert rtx_redose_due in RULES


@pytest.mark.parametrize(("as_of", "fires"), [(182, False), (183, True), (240, True), (241, False)])
def test_window_is_day_183_to_day_240_inclusive(as_of: int, fires: bool) -> None:
    assert (WINDOW_FROM_DAYS, WINDOW_TO_DAYS) == (183, 240)
    assert found(partial_responder(), as_of) == ([("info", EPISODE)] if fires else [])


def test_message_and_evidence_give_the_numbers() -> None:
    [f] = findings_of(RULE, partial_responder(), day(183))
    assert "In days 183-240 after the first rituximab dose of the course started 2025-01-01" in f.message
    assert "proteinuria is 5 g/d on 2025-06-20, 38% below the pre-course baseline of 8 g/d (2024-12-22)" in f.message
    assert "MENTOR" in f.message and "second course" in f.message and "2025-08-29" in f.message
    assert " mg" not in f.message and "1 g" not in f.message  # advises, never doses
    assert [(e.kind, e.name, e.value) for e in f.evidence] == [
        ("medication", "rituximab", 1000.0), ("lab", "proteinuria_24h", 8.0), ("lab", "proteinuria_24h", 5.0),
        ("derived", "proteinuria_reduction", 37.5)]


def test_evaluate_called_directly_gives_the_same_finding() -> None:
    events = partial_responder()
    assert rtx_redose_due.evaluate(context(events, day(190))) == findings_of(RULE, events, day(190))


@pytest.mark.parametrize(("latest", "redose", "failure"), [(6.0, True, False), (6.01, False, True)])
def test_exactly_25_percent_is_a_partial_response_and_the_two_rules_are_complements(
        latest: float, redose: bool, failure: bool) -> None:
    events = [upd(8.0, -10), *mentor(), upd(latest, 170)]  # no titer: only the proteinuria criterion
    assert bool(found(events, 183)) is redose
    assert bool(findings_of("rtx_non_response", events, day(183))) is failure


def test_complete_remission_means_no_redose() -> None:
    events = [*partial_responder(), upd(0.25, 175), upd(0.2, 182)]  # CR confirmed on day 182
    assert found(events, 183) == []


def test_complete_remission_confirmed_inside_the_window_resolves_it() -> None:
    events = [*partial_responder(), upd(0.25, 190), upd(0.2, 200)]
    assert found(events, 190) == [("info", EPISODE)]  # one value < 0.3 g/d is not yet a CR
    assert found(events, 200) == []


def test_partial_remission_without_complete_remission_still_fires() -> None:
    events = [*partial_responder(latest=2.0, on=160), upd(1.9, 170)]  # PR confirmed, 1.9 g/d
    assert found(events, 183) == [("info", EPISODE)]


def test_a_further_course_resolves_it() -> None:
    events = [*partial_responder(), *mentor(200)]
    assert found(events, 199) == [("info", EPISODE)]
    assert found(events, 200) == []  # the new course is the latest: day 0 of it
    assert found(events, 240) == []


@pytest.mark.parametrize(("last_dose", "fires"), [(NO_DOSE_SINCE_DAY - 1, True), (NO_DOSE_SINCE_DAY, False)])
def test_no_dose_since_day_150(last_dose: int, fires: bool) -> None:
    # doses every 25 days chain into one course; its last one on day 149 or 150
    doses = [med(PID, "rituximab", d, 500, "mg", route="iv") for d in (0, 25, 50, 75, 100, 125, last_dose)]
    events = [upd(8.0, -10), *doses, upd(5.0, 170)]
    assert found(events, 183) == ([("info", EPISODE)] if fires else [])


@pytest.mark.parametrize(("baseline_day", "fires"), [
    (-COURSE_BASELINE_LOOKBACK_DAYS, True), (-COURSE_BASELINE_LOOKBACK_DAYS - 1, False), (0, True)])
def test_the_baseline_window_is_the_shared_one(baseline_day: int, fires: bool) -> None:
    events = [upd(8.0, baseline_day), *mentor(), upd(5.0, 170)]
    assert found(events, 183) == ([("info", EPISODE)] if fires else [])


def test_both_anti_cd20_rules_read_one_baseline_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widening the shared lookback moves the baseline of both rules: one function, never a copy."""
    old = -COURSE_BASELINE_LOOKBACK_DAYS - 10
    redose = [upd(8.0, old), *mentor(), upd(5.0, 170)]
    failure = [upd(8.0, old), *mentor(), upd(7.5, 170)]
    assert found(redose, 183) == [] and findings_of("rtx_non_response", failure, day(183)) == []
    monkeypatch.setattr(therapy, "COURSE_BASELINE_LOOKBACK_DAYS", COURSE_BASELINE_LOOKBACK_DAYS + 10)
    assert found(redose, 183) == [("info", EPISODE)]
    assert [f.severity for f in findings_of("rtx_non_response", failure, day(183))] == ["warning"]
    ctx = context(redose, day(183))
    prot = rtx_non_response.course_proteinuria(ctx, ctx.courses[-1])
    assert prot is not None and prot.baseline is course_baseline_proteinuria(ctx.proteinuria, ctx.courses[-1])


@pytest.mark.parametrize(("on", "fires"), [(89, False), (90, True)])
def test_the_proteinuria_judged_is_drawn_from_day_90(on: int, fires: bool) -> None:
    events = [upd(8.0, -10), *mentor(), upd(5.0, on)]
    assert found(events, 183) == ([("info", EPISODE)] if fires else [])


def test_proteinuria_not_lower_means_no_redose() -> None:
    assert found([upd(8.0, -10), *mentor(), upd(8.5, 170)], 183) == []


def test_other_anti_cd20_agents_count() -> None:
    events = [upd(8.0, -10), *mentor(drug="obinutuzumab"), upd(5.0, 170)]
    assert found(events, 183) == [("info", f"obinutuzumab:{day(0).isoformat()}")]


def test_no_anti_cd20_no_finding() -> None:
    events = [upd(8.0, -10), med(PID, "tacrolimus", 0, 2, "mg", frequency="bid"), upd(5.0, 170)]
    assert found(events, 183) == []


def test_raised_beside_rtx_non_response_when_only_the_titer_failed() -> None:
    # proteinuria -37.5% (partial response) but anti-PLA2R still 80 RU/mL: the domain reports both;
    # the alert lifecycle lets rtx_non_response inhibit this reminder
    events = [upd(8.0, -10), titer(150, -10), *mentor(), titer(80, 170), upd(5.0, 170)]
    rules = {f.rule: f.severity for f in findings_of(RULE, events, day(183))}
    rules |= {f.rule: f.severity for f in findings_of("rtx_non_response", events, day(183))}
    assert rules == {"rtx_redose_due": "info", "rtx_non_response": "warning"}
