from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.timeline import Timeline
from storage import repository as repo
from storage.db import session

from .builders import T0, lab, med, patient

pytestmark = pytest.mark.integration


def _history() -> list:  # type: ignore[type-arg]
    return [
        patient(weight_kg=72.5, height_cm=175),
        lab(analyte="proteinuria_24h", value=6200, unit="mg/d", at="2025-01-10"),  # converted to g/d
        lab(analyte="serum_albumin", value=2.1, unit="g/dL", at="2025-01-10T09:30:00+02:00"),
        lab(analyte="anti_pla2r", value=8, unit="RU/mL", at="2025-03-01", comparator="<"),
        lab(analyte="upcr", value=350, unit="mg/mmol", at="2025-02-01", source="lis", source_id="U1"),
        lab(analyte="upcr", value=300, unit="mg/mmol", at="2025-02-01", source="lis", source_id="U1",
            status="corrected"),
        lab(analyte="cd19_count", value=0.3, unit="cells/uL", at="2025-04-01", status="preliminary"),
        lab(analyte="egfr", value=55, unit="mL/min/1.73m2", at="2024-12-01", status="entered-in-error"),
        med(),
        med(drug="cyclosporine", dose=150, frequency="bid", start="2025-01-01", end="2025-12-31"),
        med(drug="glucocorticoid", start="2025-01-05", status="preliminary"),
    ]


def _stamped(batch: list, now) -> list:  # type: ignore[type-arg,no-untyped-def]
    # what store_events records: a missing recorded_at becomes arrival time + position in the batch
    return [e.model_copy(update={"recorded_at": now + timedelta(microseconds=i)})
            if getattr(e, "recorded_at", "-") is None else e for i, e in enumerate(batch)]


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "validated"])
def test_load_timeline_round_trip_equals_build(engine, trusted: bool) -> None:  # type: ignore[no-untyped-def]
    events = _history()
    first, second = list(reversed(events[:5])), events[5:]  # arrival order must not matter
    t1 = T0 + timedelta(minutes=1)
    with session(engine) as s:
        repo.store_events(s, None, first, T0)
    with session(engine) as s:
        repo.store_events(s, None, second, t1)
    expected = Timeline.build("P1", _stamped(first, T0) + _stamped(second, t1))
    with session(engine) as s:
        got = repo.load_timeline(s, "P1", trusted=trusted)
    assert got == expected
    assert len(got.labs) == 4 and len(got.medications) == 2 and len(got.preliminary) == 1
    assert got.patient is not None and got.patient.weight_kg == 72.5
    assert [r.value for r in got.series("upcr")] == [pytest.approx(300 * 8.84 / 1000, rel=1e-6)]
    for a, b in zip(got.labs, expected.labs):
        assert a.identity == b.identity and a.content_hash == b.content_hash
        assert a.model_dump() == b.model_dump() and a.effective_at.tzinfo is not None


def test_load_timelines_in_one_call(engine) -> None:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid=f"P{i}", value=20 + i) for i in range(5)], T0)
        repo.store_events(s, None, [lab(pid="P9", source="x", source_id="1", status="entered-in-error")], T0)
    with session(engine) as s:
        got = repo.load_timelines(s, ["P0", "P3", "P9", "UNKNOWN"])
    assert set(got) == {"P0", "P3", "P9"}  # unknown ids are absent; P9 has an empty timeline
    assert [r.value for r in got["P3"].labs] == [23] and got["P9"].labs == ()
    with session(engine) as s:
        assert repo.load_timeline(s, "UNKNOWN").labs == ()
