"""albumin_low_thrombosis: latest albumin < 20 g/L critical, 20-24.9 warning; silent on anticoagulation.

Motivating sources: the seed review (albumin < 20 g/L calls for anticoagulation/antiplatelet therapy)
and KDIGO 2021 (consider prophylactic anticoagulation below 25 g/L by BCP, 20 g/L by BCG).
"""

from __future__ import annotations

import pytest

from monitor.events import LabResult
from monitor.findings import Finding
from monitor.rules import albumin_low_thrombosis as rule
from tests.unit.rules.builders import PID, AnyEvent, Day, context, findings_of, lab, med


def run(events: list[AnyEvent], as_of: Day) -> list[Finding]:
    return rule.evaluate(context(events, as_of))


def albumin(value: float, on: Day, unit: str = "g/L") -> LabResult:
    return lab(PID, "serum_albumin", value, unit, on)


def test_very_low_albumin_is_critical_with_its_evidence() -> None:
    a = albumin(18, 10)
    [f] = run([a], 10)
    assert (f.rule, f.severity, f.episode) == ("albumin_low_thrombosis", "critical", "2025-01-11")
    assert f.fingerprint == "P1/albumin_low_thrombosis/2025-01-11"
    assert [(e.kind, e.name, e.value, e.unit, e.event_id) for e in f.evidence] == [
        ("lab", "serum_albumin", 18.0, "g/L", a.identity)]
    assert "18 g/L on 2025-01-11" in f.message and "anticoagulation" in f.message
    assert "KDIGO 2021" in f.reference


def test_normal_albumin_does_not_fire() -> None:
    assert run([albumin(38, 10)], 10) == []


@pytest.mark.parametrize(("value", "severity"), [
    (19.9, "critical"), (20.0, "warning"), (24.9, "warning"), (25.0, None), (25.1, None)])
def test_boundaries(value: float, severity: str | None) -> None:
    assert [f.severity for f in run([albumin(value, 10)], 10)] == ([severity] if severity else [])


@pytest.mark.parametrize(("value", "unit", "g_l", "severity"), [
    (1.99, "g/dL", 19.9, "critical"), (2.0, "g/dL", 20.0, "warning"), (2.49, "g/dL", 24.9, "warning"),
    (2.5, "g/dL", 25.0, None), (1990, "mg/dL", 19.9, "critical")])
def test_other_units(value: float, unit: str, g_l: float, severity: str | None) -> None:
    found = run([albumin(value, 10, unit)], 10)
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity:
        assert found[0].evidence[0].value == g_l
        assert found[0].evidence[0].reported == f"{value:g} {unit}"
        assert f"{g_l:g} g/L ({value:g} {unit})" in found[0].message


def test_not_raised_while_an_anticoagulant_is_active() -> None:
    anticoagulant = med(PID, "anticoagulant", 5, 5, "mg", "bid")
    assert run([albumin(15, 10), anticoagulant], 10) == []


def test_resolves_when_an_anticoagulant_is_started() -> None:
    events = [albumin(15, 10), med(PID, "anticoagulant", 12, 5, "mg", "bid")]
    assert [f.severity for f in run(events, 11)] == ["critical"]
    assert run(events, 12) == []


def test_fires_again_once_the_anticoagulant_is_stopped() -> None:
    events = [albumin(15, 10), med(PID, "anticoagulant", 12, 5, "mg", "bid", end=30)]
    assert run(events, 30) == []
    assert [f.episode for f in run(events, 31)] == ["2025-01-11"]


def test_severity_follows_the_latest_value_within_one_episode() -> None:
    events = [albumin(24, 10), albumin(18, 20), albumin(22, 30)]
    by_date = {d: run(events, d) for d in (10, 20, 30)}
    assert [(fs[0].severity, fs[0].fingerprint) for fs in by_date.values()] == [
        ("warning", "P1/albumin_low_thrombosis/2025-01-11"),
        ("critical", "P1/albumin_low_thrombosis/2025-01-11"),
        ("warning", "P1/albumin_low_thrombosis/2025-01-11"),
    ]
    assert [e.value for e in by_date[30][0].evidence] == [24.0, 18.0, 22.0]
    assert by_date[30][0].evidence[0].note == "first low albumin of this run"


def test_resolves_at_25_and_a_later_run_is_a_new_episode() -> None:
    events = [albumin(22, 10), albumin(25, 20), albumin(23, 30)]
    assert run(events, 20) == []
    [f] = run(events, 30)
    assert f.episode == "2025-01-31" and [e.value for e in f.evidence] == [23.0]


def test_only_the_latest_value_decides() -> None:
    assert run([albumin(15, 10), albumin(31, 20)], 20) == []


def test_registered_in_assess() -> None:
    events = [albumin(18, 10)]
    assert findings_of("albumin_low_thrombosis", events, 10) == run(events, 10)


# ---- antiplatelet agents (issue 11): the seed review accepts antiplatelet *or* anticoagulant therapy
@pytest.mark.parametrize("name", [
    "antiplatelet", "aspirin", "Aspirin", "acetylsalicylic acid", "ASA", "clopidogrel", "Plavix",
    "ticagrelor", "Brilinta", "Brilique"])
def test_an_antiplatelet_agent_suppresses_it_like_an_anticoagulant(name: str) -> None:
    antiplatelet = med(PID, name, 5, 100, "mg", "qd")
    assert antiplatelet.drug == "antiplatelet"
    assert run([albumin(15, 10), antiplatelet], 10) == []
    assert run([albumin(22, 10), antiplatelet], 10) == []


def test_resolves_when_an_antiplatelet_agent_is_started_and_returns_when_it_stops() -> None:
    events = [albumin(18, 10), med(PID, "aspirin", 12, 100, "mg", "qd", end=40)]
    assert [f.severity for f in run(events, 11)] == ["critical"]
    assert run(events, 12) == [] and run(events, 40) == []
    assert [(f.severity, f.episode) for f in run(events, 41)] == [("critical", "2025-01-11")]


def test_the_message_names_both_kinds_of_prophylaxis() -> None:
    [f] = run([albumin(18, 10)], 10)
    assert "no anticoagulant or antiplatelet agent is recorded as active" in f.message
    assert "antiplatelet" in f.reference


def test_an_antiplatelet_record_before_or_after_does_not_suppress() -> None:
    assert [f.severity for f in run([albumin(18, 10), med(PID, "aspirin", 0, 100, "mg", "qd", end=9)], 10)] == [
        "critical"]
    assert [f.severity for f in run([albumin(18, 10), med(PID, "clopidogrel", 11, 75, "mg", "qd")], 10)] == [
        "critical"]
