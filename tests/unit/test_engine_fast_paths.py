"""The engine's speed-ups (issue 7) compute exactly what the plain definitions compute.

Each fast path is compared with the straightforward definition it replaced (kept here as the
reference): per-event memos, construct_trusted vs pydantic's model_construct, the per-timeline
proteinuria/drug memos, and egfr_decline's baseline walk.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.egfr import egfr_series
from monitor.events import (
    DRUGS,
    LabResult,
    MedicationEvent,
    Patient,
    construct_trusted,
)
from monitor.proteinuria import estimate
from monitor.rules import egfr_decline
from monitor.timeline import Timeline
from tests.strategies import events, histories, timelines

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODELS = {"patient": Patient, "lab": LabResult, "medication": MedicationEvent}


def _lab(**over: Any) -> LabResult:
    raw: dict[str, Any] = {"patient_id": "P1", "analyte": "upcr", "value": 250, "unit": "mg/mmol",
                           "effective_at": datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))}
    return LabResult(**(raw | over))


# ------------------------------------------------------------------------------ per-event memos


@SETTINGS
@given(events("P1"))
def test_memoised_properties_equal_a_fresh_computation(event: Any) -> None:
    fresh = construct_trusted(type(event), dict(event.__dict__))
    assert event.identity == fresh.identity == type(event).identity.fn(fresh)  # type: ignore[attr-defined]
    if isinstance(event, LabResult):
        assert event.effective_date == event.effective_at.date()


def test_memos_change_neither_equality_nor_hash_nor_dumps() -> None:
    a, b = _lab(), _lab()
    assert a.effective_date and a.identity  # memoised on a only
    assert "effective_date" in a.__dict__ and "effective_date" not in b.__dict__
    assert a == b and hash(a) == hash(b)
    assert a.model_dump() == b.model_dump() and a.model_dump_json() == b.model_dump_json()
    assert repr(a) == repr(b) and a.content_hash == b.content_hash


def test_model_copy_drops_the_memos() -> None:
    a = _lab()
    old_day, old_identity = a.effective_date, a.identity
    later = a.model_copy(update={"effective_at": a.effective_at + timedelta(days=3)})
    assert later.effective_date == old_day + timedelta(days=3)
    assert later.identity != old_identity  # a hashed identity includes the time
    assert a.effective_date == old_day and a.identity == old_identity
    same = a.model_copy()
    assert same == a and same.effective_date == old_day


# ------------------------------------------------------------------------------ construct_trusted


@SETTINGS
@given(events("P1"), st.data())
def test_construct_trusted_equals_model_construct(event: Any, data: st.DataObject) -> None:
    model = type(event)
    fields = list(model.model_fields)
    full = {k: getattr(event, k) for k in fields}
    # a full payload, a partial one (required fields possibly missing), and one with an unknown key
    given_keys = data.draw(st.lists(st.sampled_from(fields), unique=True))
    partial = {k: full[k] for k in given_keys}
    for values in (full, partial, full | {"not_a_field": 1}, partial | {"not_a_field": 1}):
        mine = construct_trusted(model, dict(values))
        theirs = model.model_construct(**dict(values))
        assert list(mine.__dict__.items()) == list(theirs.__dict__.items())  # same fields, same order
        assert mine.model_fields_set == theirs.model_fields_set
        assert mine.__pydantic_extra__ == theirs.__pydantic_extra__
        assert mine.__pydantic_private__ == theirs.__pydantic_private__
        assert mine == theirs
        if values is full:
            assert mine == event and mine.model_dump() == event.model_dump()
            assert mine.model_copy(update={"source": "x"}).model_fields_set == theirs.model_copy(
                update={"source": "x"}).model_fields_set


def test_construct_trusted_gives_each_event_its_own_fields_set() -> None:
    a = construct_trusted(Patient, {"patient_id": "P1"})
    b = construct_trusted(Patient, {"patient_id": "P2"})
    assert a.model_fields_set == {"patient_id"} and a.__pydantic_fields_set__ is not b.__pydantic_fields_set__


# ------------------------------------------------------------------------------ per-timeline memos


def _reference_proteinuria(t: Timeline) -> tuple[LabResult, ...]:
    # the plain definition: collections, and UPCRs (a mg/mmol one as its KDIGO estimate) on other days
    days = {r.effective_date for r in t.series("proteinuria_24h")}
    return tuple(estimate(r) for r in t.labs if r.analyte == "proteinuria_24h"
                 or (r.analyte == "upcr" and r.effective_date not in days))


@SETTINGS
@given(timelines(max_size=60), st.lists(st.sampled_from(DRUGS), max_size=3))
def test_timeline_memos_equal_the_plain_definitions(t: Timeline, names: list[str]) -> None:
    for _ in range(2):  # computed, then memoised
        assert t.proteinuria() == _reference_proteinuria(t)
        assert t.drugs(*names) == tuple(m for m in t.medications if m.drug in set(names))
        for drug in DRUGS:
            assert t.drugs(drug) == tuple(m for m in t.medications if m.drug == drug)
    assert t.proteinuria() is t.proteinuria()


@SETTINGS
@given(histories(max_size=50), st.dates(date(2019, 1, 1), date(2028, 1, 1)))
def test_until_starts_its_own_memos(history: tuple[str, list[Any]], as_of: date) -> None:
    pid, evs = history
    full = Timeline.build(pid, evs)
    full.proteinuria(), full.drugs("rituximab"), egfr_series(full)  # warm the full timeline's memos
    cut = full.until(as_of)
    fresh = Timeline.build(pid, evs).until(as_of)
    assert cut.proteinuria() == fresh.proteinuria() == _reference_proteinuria(fresh)
    assert egfr_series(cut) == egfr_series(fresh)
    if cut is not full:
        assert cut._derived is not full._derived


def test_proteinuria_keeps_clinical_order_across_the_two_series() -> None:
    t0 = datetime(2025, 1, 1, 8, tzinfo=UTC)
    labs = [
        LabResult(patient_id="P1", analyte="proteinuria_24h", value=4.0, unit="g/d", effective_at=t0),
        LabResult(patient_id="P1", analyte="upcr", value=3.0, unit="g/g", effective_at=t0 + timedelta(days=1)),
        LabResult(patient_id="P1", analyte="upcr", value=2.0, unit="g/g", effective_at=t0 + timedelta(hours=2)),
        LabResult(patient_id="P1", analyte="upcr", value=2.5, unit="g/g", effective_at=t0 + timedelta(days=2)),
        LabResult(patient_id="P1", analyte="proteinuria_24h", value=3.5, unit="g/d", effective_at=t0 + timedelta(days=2)),
    ]
    t = Timeline.build("P1", labs)
    assert t.proteinuria() == _reference_proteinuria(t)
    assert [r.value for r in t.proteinuria()] == [4.0, 3.0, 3.5]


# ------------------------------------------------------------------------------ egfr_decline walk

_SLACK = timedelta(days=2)


def _reference_baseline(series: tuple[LabResult, ...], i: int, lo: int = 0) -> tuple[float, tuple[LabResult, ...]] | None:
    on = series[i].effective_date
    start = on - timedelta(days=egfr_decline.BASELINE_WINDOW_DAYS)
    window = tuple(r for r in series[lo:i] if start <= r.effective_date < on)
    if len(window) < egfr_decline.BASELINE_MIN_VALUES:
        return None
    value = float(statistics.median(r.value for r in window))
    return (value, window) if value > 0 else None


def _reference_run(series: tuple[LabResult, ...], meets: Callable[[LabResult, float], bool]) -> Any:
    run = None
    lo = 0
    for i, x in enumerate(series):
        if run is not None and meets(x, run.baseline):
            run = egfr_decline._Run(run.first, x, run.baseline, run.baseline_values)
            continue
        run = None
        oldest = x.effective_date - timedelta(days=egfr_decline.BASELINE_WINDOW_DAYS) - _SLACK
        while lo < i and series[lo].effective_date < oldest:
            lo += 1
        found = _reference_baseline(series, i, lo)
        if found is not None and meets(x, found[0]):
            run = egfr_decline._Run(x, x, found[0], found[1])
    return run


@SETTINGS
@given(timelines(max_size=60))
def test_egfr_decline_walk_equals_the_plain_definition(t: Timeline) -> None:
    egfr = egfr_series(t)
    creatinine = t.series("serum_creatinine")
    assert egfr_decline._current_run(egfr, egfr_decline._egfr_declined) == _reference_run(
        egfr, egfr_decline._egfr_declined)
    assert egfr_decline._current_run(creatinine, egfr_decline._creatinine_rose) == _reference_run(
        creatinine, egfr_decline._creatinine_rose)
    for series in (egfr, creatinine):
        for i in range(len(series)):
            assert egfr_decline._baseline(series, i) == _reference_baseline(series, i)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=15))
def test_median_equals_statistics_median(values: list[float]) -> None:
    assert egfr_decline._median(list(values)) == statistics.median(values)
