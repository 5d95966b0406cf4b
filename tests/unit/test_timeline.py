"""One patient's history (monitor/timeline.py): clinical order, versions, retractions, as_of cuts."""

from __future__ import annotations

import random

from monitor.timeline import Timeline, judge_final
from tests.unit.rules.builders import PID, day, lab, med, patient


def albumin(value: float, on: int, **fields: object):  # type: ignore[no-untyped-def]
    return lab(PID, "serum_albumin", value, "g/L", on, **fields)


def test_clinical_order_whatever_the_input_order() -> None:
    events = [albumin(30 + i, on=i * 10) for i in range(10)]
    events.append(lab(PID, "anti_pla2r", 50, "RU/mL", 15))
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        t = Timeline.build(PID, shuffled)
        assert [r.effective_date for r in t.labs] == sorted(r.effective_date for r in events)
        assert [r.value for r in t.series("serum_albumin")] == [30 + i for i in range(10)]
        assert t == Timeline.build(PID, events)


def test_exact_duplicate_counts_once() -> None:
    a = albumin(30, on=1)
    assert len(Timeline.build(PID, [a, a, albumin(30, on=1)]).labs) == 1
    with_id = albumin(30, on=1, source="lab", source_id="X")
    assert len(Timeline.build(PID, [with_id, with_id]).labs) == 1


def test_other_patients_are_ignored() -> None:
    t = Timeline.build(PID, [albumin(30, on=1), lab("P2", "serum_albumin", 20, "g/L", 1)])
    assert [r.patient_id for r in t.labs] == [PID]


def test_correction_supersedes_and_a_late_final_does_not_win_back() -> None:
    final = albumin(30, on=1, source="lab", source_id="X", recorded_at="2025-01-02T08:00:00Z")
    corrected = albumin(23, on=1, source="lab", source_id="X", status="corrected",
                        recorded_at="2025-01-03T08:00:00Z")
    # the original final re-sent after the correction (a replay, a re-transmission)
    late_final = albumin(30, on=1, source="lab", source_id="X", recorded_at="2025-01-05T08:00:00Z")
    for events in ([final, corrected], [corrected, final], [final, corrected, late_final],
                   [late_final, corrected, final]):
        t = Timeline.build(PID, events)
        assert [r.value for r in t.labs] == [23]


def test_judge_final_only_a_correction_changes_a_final_value() -> None:
    final = albumin(30, on=1, source="lab", source_id="X")
    other = albumin(35, on=1, source="lab", source_id="X")
    assert judge_final(final, []) == ("version", None)
    assert judge_final(other, [final]) == ("conflict", final)  # a second final, another value
    in_g_dl = lab(PID, "serum_albumin", 3.0, "g/dL", 1, source="lab", source_id="X")
    assert judge_final(in_g_dl, [final]) == ("repeat", final)  # the same value in another unit
    moved = albumin(30, on=2, source="lab", source_id="X")  # another time is another fact too
    assert judge_final(moved, [final])[0] == "conflict"
    fixed = albumin(35, on=1, source="lab", source_id="X", status="corrected")
    assert judge_final(fixed, [final]) == ("version", None)  # a correction is one
    assert judge_final(other, [final, fixed]) == ("repeat", fixed)  # it says what the correction says
    assert judge_final(albumin(40, on=1, source="lab", source_id="X"), [final, fixed]) == ("conflict", fixed)
    prelim = albumin(28, on=1, source="lab", source_id="X", status="preliminary")
    assert judge_final(final, [prelim]) == ("version", None)  # a final after a preliminary
    assert judge_final(final, [fixed]) == ("version", None)  # an original arriving after its correction
    gone = albumin(30, on=1, source="lab", source_id="X", status="entered-in-error")
    assert judge_final(gone, [final]) == ("version", None)
    # patient and medication records change by new versions: never judged
    assert judge_final(med(PID, "rituximab", 1, 500, "mg", source="ph", source_id="A"),
                       [med(PID, "rituximab", 1, 1000, "mg", source="ph", source_id="A")]) == ("version", None)


def test_a_later_correction_beats_an_earlier_one() -> None:
    c1 = albumin(23, on=1, source="lab", source_id="X", status="corrected", recorded_at="2025-01-03T08:00:00Z")
    c2 = albumin(25, on=1, source="lab", source_id="X", status="amended", recorded_at="2025-01-04T08:00:00Z")
    assert [r.value for r in Timeline.build(PID, [c2, c1]).labs] == [25]


def test_entered_in_error_retracts() -> None:
    final = albumin(30, on=1, source="lab", source_id="X")
    retracted = albumin(30, on=1, source="lab", source_id="X", status="entered-in-error")
    kept = albumin(31, on=2, source="lab", source_id="Y")
    t = Timeline.build(PID, [final, kept, retracted])
    assert [r.value for r in t.labs] == [31]
    # a retraction wins even over a correction that arrives after it
    late = albumin(29, on=1, source="lab", source_id="X", status="corrected", recorded_at="2025-02-01T00:00:00Z")
    assert [r.value for r in Timeline.build(PID, [final, retracted, late, kept]).labs] == [31]


def test_retracted_medication_is_dropped() -> None:
    dose = med(PID, "rituximab", 1, 1000, "mg", source="pharm", source_id="A")
    retracted = med(PID, "rituximab", 1, 1000, "mg", source="pharm", source_id="A", status="entered-in-error")
    assert Timeline.build(PID, [dose, retracted]).medications == ()


def test_preliminary_is_kept_aside_until_final() -> None:
    prelim = albumin(22, on=1, source="lab", source_id="X", status="preliminary")
    t = Timeline.build(PID, [prelim])
    assert t.labs == () and [r.value for r in t.preliminary] == [22]
    assert t.latest("serum_albumin") is None
    final = albumin(24, on=1, source="lab", source_id="X")
    t = Timeline.build(PID, [final, prelim])
    assert [r.value for r in t.labs] == [24] and t.preliminary == ()


def test_until_drops_later_events() -> None:
    events = [
        patient(sex="female"), albumin(30, on=10), albumin(25, on=20), albumin(20, on=21),
        lab(PID, "upcr", 4, "g/g", 21, status="preliminary"),
        med(PID, "cyclosporine", 5, 100, "mg", "bid", end=100), med(PID, "rituximab", 21, 1000, "mg"),
    ]
    t = Timeline.build(PID, events).until(day(20))
    assert [r.value for r in t.labs] == [30, 25]
    assert [m.drug for m in t.medications] == ["cyclosporine"]  # started by then, kept whole
    assert t.medications[0].end == day(100)
    assert t.preliminary == ()
    assert t.patient is not None and t.patient.sex == "female"
    # until is idempotent and the full timeline is unchanged
    assert t.until(day(20)) == t
    assert len(Timeline.build(PID, events).labs) == 3


def test_until_keeps_a_result_later_on_the_day() -> None:
    r = lab(PID, "serum_albumin", 30, "g/L", "2025-01-10", effective_at="2025-01-10T23:59:00Z")
    assert len(Timeline.build(PID, [r]).until(day("2025-01-10")).labs) == 1


def test_proteinuria_prefers_24h_over_upcr_on_the_same_day() -> None:
    events = [
        lab(PID, "upcr", 500, "mg/mmol", 1),  # 4.42 g/g, replaced by the collection of that day
        lab(PID, "proteinuria_24h", 5200, "mg/24h", 1),
        lab(PID, "upcr", 3.1, "g/g", 30),
        lab(PID, "proteinuria_24h", 2.0, "g/d", 60),
    ]
    series = Timeline.build(PID, events).proteinuria()
    assert [(r.analyte, r.value) for r in series] == [
        ("proteinuria_24h", 5.2), ("upcr", 3.1), ("proteinuria_24h", 2.0)]


def test_latest_and_drugs() -> None:
    t = Timeline.build(PID, [albumin(30, on=1), albumin(25, on=2), med(PID, "arb", 1, 50, "mg", "qd"),
                             med(PID, "ace_inhibitor", 3, 5, "mg", "qd")])
    latest = t.latest("serum_albumin")
    assert latest is not None and latest.value == 25
    assert [m.drug for m in t.drugs("ace_inhibitor", "arb")] == ["arb", "ace_inhibitor"]
    assert t.latest("anti_pla2r") is None
