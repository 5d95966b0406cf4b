"""ctx_cumulative_dose: cumulative cyclophosphamide >= 10 g warning, >= 36 g critical; one episode.

Motivating sources: a 6-month modified Ponticelli course gives about 10-15 g (2 mg/kg/d orally in
months 2, 4 and 6); Faurschou 2008 found bladder cancer risk above 36 g; van den Brand 2014 found
malignancy risk in membranous nephropathy growing with the cumulative dose.
"""

from __future__ import annotations

import pytest

from monitor.display import evidence_number
from monitor.events import MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules import ctx_cumulative_dose as rule
from tests.unit.rules.builders import PID, AnyEvent, Day, context, findings_of, med, patient


def run(events: list[AnyEvent], as_of: Day) -> list[Finding]:
    return rule.evaluate(context(events, as_of))


def pulse(on: Day, dose: float = 1000, unit: str = "mg") -> MedicationEvent:
    return med(PID, "cyclophosphamide", on, dose, unit, route="iv")


def oral(start: Day, end: Day | None, dose: float, unit: str = "mg") -> MedicationEvent:
    return med(PID, "cyclophosphamide", start, dose, unit, "qd", end=end, route="oral")


def total(f: Finding) -> Evidence:
    [e] = [e for e in f.evidence if e.kind == "derived"]
    return e


def test_ten_one_gram_pulses_reach_exactly_10_g_warning() -> None:
    pulses = [pulse(14 * i) for i in range(10)]
    [f] = run(pulses, 200)
    assert (f.rule, f.severity, f.episode) == ("ctx_cumulative_dose", "warning", "cumulative")
    assert f.fingerprint == "P1/ctx_cumulative_dose/cumulative"
    assert [(e.kind, e.name, e.value, e.unit, e.event_id) for e in f.evidence[:-1]] == [
        ("medication", "cyclophosphamide", 1000.0, "mg", p.identity) for p in pulses]
    assert f.evidence[0].note == "iv once 2025-01-01: counted 1000 mg = 1 administration(s) x 1000 mg"
    assert (total(f).name, total(f).value, total(f).unit, total(f).effective_at) == (
        "cyclophosphamide_cumulative", 10.0, "g", "2025-05-07")
    assert total(f).note == "sum of 10 record(s) up to 2025-05-07"  # the last pulse, day 126
    assert "Cumulative cyclophosphamide is 10 g by 2025-05-07" in f.message
    assert "Faurschou" in f.reference and "van den Brand" in f.reference


def test_below_10_g_does_not_fire() -> None:
    assert run([*[pulse(14 * i) for i in range(9)], pulse(200, 999)], 300) == []


def test_no_cyclophosphamide_does_not_fire() -> None:
    assert run([med(PID, "rituximab", 0, 1000, "mg", route="iv")], 30) == []


@pytest.mark.parametrize(("days", "severity"),
                         [(99, None), (100, "warning"), (359, "warning"), (360, "critical")])
def test_oral_daily_course_boundaries(days: int, severity: str | None) -> None:
    # 100 mg daily: 100 days = 10 g, 360 days = 36 g (end inclusive)
    found = run([oral(0, days - 1, 100)], 400)
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity:
        assert total(found[0]).value == days * 0.1


def test_open_oral_course_is_counted_up_to_as_of_and_escalates_with_one_fingerprint() -> None:
    course = [oral(0, None, 150)]  # 150 mg/d: 10 g after 66.7 days, 36 g after 240 days
    assert run(course, 65) == []  # 66 days = 9.9 g
    [warning] = run(course, 66)  # 67 days = 10.05 g
    [critical] = run(course, 239)  # 240 days = 36 g
    assert (warning.severity, critical.severity) == ("warning", "critical")
    assert warning.fingerprint == critical.fingerprint == "P1/ctx_cumulative_dose/cumulative"
    assert total(critical).value == 36.0
    assert "36 g" in critical.message and "bladder cancer" in critical.message


def test_dose_in_grams() -> None:
    [f] = run([pulse(14 * i, 1.2, "g") for i in range(30)], 500)  # 36 g
    assert f.severity == "critical" and total(f).value == 36.0
    assert f.evidence[0].note == "iv once 2025-01-01: counted 1200 mg = 1 administration(s) x 1200 mg"


def test_mg_per_kg_course_uses_body_weight() -> None:
    # modified Ponticelli: 2 mg/kg/d for months 2, 4 and 6 (3 x 30 days) at 70 kg = 12.6 g
    p = patient(PID, weight_kg=70)
    months = [oral(30, 59, 2, "mg/kg"), oral(90, 119, 2, "mg/kg"), oral(150, 179, 2, "mg/kg")]
    [f] = run([p, *months], 200)
    assert f.severity == "warning" and total(f).value == 12.6
    assert [e.note for e in f.evidence[:-1]] == [
        f"oral qd {s}..{e}: counted 4200 mg = 30 administration(s) x 140 mg"
        for s, e in (("2025-01-31", "2025-03-01"), ("2025-04-01", "2025-04-30"),
                     ("2025-05-31", "2025-06-29"))]


def test_mg_per_m2_pulses_use_body_surface_area() -> None:
    # Mosteller BSA for 76 kg and 171 cm = sqrt(12996 / 3600) = 1.9 m2: 750 mg/m2 = 1425 mg; 8 pulses = 11.4 g
    p = patient(PID, weight_kg=76, height_cm=171)
    [f] = run([p, *[pulse(28 * i, 750, "mg/m2") for i in range(8)]], 300)
    assert f.severity == "warning" and total(f).value == pytest.approx(11.4)


def test_iv_pulses_and_an_oral_course_add_up() -> None:
    # 6 x 750 mg IV (4.5 g) + 100 mg/d orally for 60 days (6 g) = 10.5 g
    pulses = [pulse(30 * i, 750) for i in range(6)]
    course = oral(200, 259, 100)
    [f] = run([*pulses, course], 300)
    assert f.severity == "warning" and total(f).value == 10.5
    assert [e.event_id for e in f.evidence[:-1]] == [p.identity for p in pulses] + [course.identity]
    assert f.evidence[-2].note == (
        "oral qd 2025-07-20..2025-09-17: counted 6000 mg = 60 administration(s) x 100 mg")


def test_records_without_weight_are_named_and_the_counted_total_still_fires() -> None:
    per_kg = oral(0, 29, 2, "mg/kg")
    [f] = run([*[pulse(40 + 14 * i) for i in range(12)], per_kg], 300)
    assert f.severity == "warning" and total(f).value == 12.0
    assert ("1 record(s) could not be counted (2025-01-01: dose in mg/kg but no body weight "
            "recorded)") in f.message
    [uncounted] = [e for e in f.evidence if e.event_id == per_kg.identity]
    assert uncounted.note == "not counted: dose in mg/kg but no body weight recorded"
    assert total(f).note.endswith("1 record(s) not counted, so the true total is higher")


def test_uncounted_records_below_10_g_raise_info_then_escalate_when_weight_is_known() -> None:
    months = [oral(0, 89, 2, "mg/kg")]  # 90 days x 2 mg/kg
    [info] = run(months, 100)
    assert (info.severity, info.episode) == ("info", "cumulative")
    assert total(info).value == 0.0 and "until the missing data" in info.message
    [warning] = run([patient(PID, weight_kg=70), *months], 100)  # 90 x 140 mg = 12.6 g
    assert warning.severity == "warning" and warning.fingerprint == info.fingerprint


def test_never_resolves_after_the_course_ended() -> None:
    assert [f.severity for f in run([oral(0, 99, 100)], 3000)] == ["warning"]


def test_future_doses_are_not_counted() -> None:
    events = [pulse(14 * i) for i in range(10)]
    assert run(events, 14 * 8) == []  # 9 pulses by day 112


def test_registered_in_assess() -> None:
    events = [oral(0, 99, 100)]
    assert findings_of("ctx_cumulative_dose", events, 200) == run(events, 200)


def test_the_message_states_the_total_as_its_evidence_row_shows_it() -> None:
    # 73 days x 750 mg = 54.75 g: the evidence row shows 54.8 g, and so must the sentence
    [f] = run([oral(0, 72, 750)], 120)
    shown = evidence_number(total(f).as_dict())
    assert shown == "54.8"
    assert f"Cumulative cyclophosphamide is {shown} g by" in f.message
