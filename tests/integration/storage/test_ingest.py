from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from storage import repository as repo
from storage import views
from storage.db import session
from storage.models import EventRow, InboxRow, PatientRow

from .builders import T0, lab, med, patient

pytestmark = pytest.mark.integration


def _events(s):  # type: ignore[no-untyped-def]
    return list(s.execute(select(EventRow).order_by(EventRow.id)).scalars())


def test_store_payload_dedupes_by_bytes(engine) -> None:  # type: ignore[no-untyped-def]
    data = b'{"type":"lab"}\n'
    with session(engine) as s:
        first, created = repo.store_payload(s, data, "ndjson", "a.ndjson", T0)
        again, created_again = repo.store_payload(s, data, "ndjson", "b.ndjson", T0)
        other, created_other = repo.store_payload(s, data + b"\n", "ndjson", "a.ndjson", T0, line_offset=10)
    assert created and not created_again and created_other
    assert first == again != other
    with session(engine) as s:
        assert repo.load_payload(s, first) == (data, "ndjson", "a.ndjson")
        item = repo.lock_inbox(s, other)
        assert item is not None and item.payload_bytes == data + b"\n" and item.line_offset == 10
        assert item.state == "received"
        assert repo.lock_inbox(s, 999_999) is None
    with pytest.raises(ValueError, match="unknown format"), session(engine) as s:
        repo.store_payload(s, b"x", "xml", "x", T0)


def test_inbox_states_and_sweeper(engine) -> None:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        a, _ = repo.store_payload(s, b"a", "csv", "a.csv", T0)
        b, _ = repo.store_payload(s, b"b", "csv", "b.csv", T0)
        c, _ = repo.store_payload(s, b"c", "csv", "c.csv", T0 + timedelta(hours=1))
        repo.inbox_mark(s, a, "processing", T0)
        repo.inbox_mark(s, b, "processed", T0, counts={"accepted": 3})
    with session(engine) as s:
        assert repo.pending_inbox(s, older_than=T0 + timedelta(minutes=5), limit=10) == [a]
        assert repo.pending_inbox(s, older_than=T0 + timedelta(hours=2), limit=10) == [a, c]
        rows = {r.id: r for r in s.execute(select(InboxRow)).scalars()}
        assert rows[a].attempts == 1 and rows[b].counts == {"accepted": 3} and rows[b].processed_at == T0
        repo.inbox_mark(s, a, "failed", T0, error="boom")
    with session(engine) as s:
        assert repo.pending_inbox(s, older_than=T0 + timedelta(hours=2), limit=10) == [c]


def test_store_events_is_idempotent(engine) -> None:  # type: ignore[no-untyped-def]
    batch = [patient(), lab(), lab(at="2025-03-10", value=80), med(), lab(pid="P2")]
    with session(engine) as s:
        inbox, _ = repo.store_payload(s, b"x", "ndjson", "x", T0)
        r1 = repo.store_events(s, inbox, batch + [batch[1]], T0)
    assert (r1.accepted, r1.duplicate, r1.corrected, r1.retracted) == (5, 1, 0, 0)
    assert r1.patients == {"P1", "P2"}
    with session(engine) as s:
        # clear the marks, then the same events again: nothing stored, nothing marked dirty
        for pid, mark in repo.dirty_since_of(s, ["P1", "P2"]).items():
            assert mark == T0
            assert repo.clear_dirty(s, pid, mark)
    with session(engine) as s:
        r2 = repo.store_events(s, inbox, batch, T0 + timedelta(hours=1))
    assert (r2.accepted, r2.duplicate, r2.corrected, r2.retracted, r2.patients) == (0, 5, 0, 0, set())
    with session(engine) as s:
        rows = _events(s)
        assert len(rows) == 5 and all(r.is_current and r.version == 1 for r in rows)
        assert repo.dirty_since_of(s, ["P1", "P2"]) == {"P1": None, "P2": None}
        p2 = s.get(PatientRow, "P2")
        assert p2 is not None and p2.first_seen_at == T0 and p2.active  # created for an unknown patient
        med_row = next(r for r in rows if r.kind == "medication")
        assert med_row.effective_at.isoformat() == "2025-02-01T00:00:00+00:00"
        assert med_row.recorded_at is not None and med_row.recorded_at.tzinfo is not None


def test_correction_is_a_new_version_and_becomes_current(engine) -> None:  # type: ignore[no-untyped-def]
    first = lab(source="lis", source_id="R1", value=3.0, analyte="proteinuria_24h", unit="g/d")
    fixed = lab(source="lis", source_id="R1", value=5.1, analyte="proteinuria_24h", unit="g/d", status="corrected")
    with session(engine) as s:
        repo.store_events(s, None, [first], T0)
    with session(engine) as s:
        r = repo.store_events(s, None, [fixed], T0 + timedelta(minutes=1))
    assert (r.accepted, r.corrected, r.duplicate) == (0, 1, 0)
    with session(engine) as s:
        rows = _events(s)
        assert [(x.version, x.is_current, x.status) for x in rows] == [(1, False, "final"), (2, True, "corrected")]
        t = repo.load_timeline(s, "P1")
        assert [x.value for x in t.labs] == [5.1]


def test_a_second_final_with_another_value_is_quarantined_even_in_one_batch(engine) -> None:  # type: ignore[no-untyped-def]
    # a final changes only by a correction: another final of the same result with another value used
    # to win by arrival and count as "corrected"; it is refused and the first value stays
    a = lab(source="lis", source_id="R9", value=40)
    b = lab(source="lis", source_id="R9", value=45)
    with session(engine) as s:
        r = repo.store_events(s, None, [a, b], T0)
    assert (r.accepted, r.corrected, r.duplicate) == (1, 0, 0)
    assert [(q.field, q.value) for q in r.quarantined] == [("status", "final")]
    assert "earlier final result of the same identity (lab:lis:R9)" in r.quarantined[0].reason
    with session(engine) as s:
        assert [x.value for x in repo.load_timeline(s, "P1").labs] == [40]
    with session(engine) as s:  # and across batches; the first content again is a duplicate
        r = repo.store_events(s, None, [b, a], T0 + timedelta(hours=1))
        assert (r.accepted, r.corrected, r.duplicate, len(r.quarantined)) == (0, 0, 1, 1)
        assert [x.value for x in repo.load_timeline(s, "P1").labs] == [40]
        assert len(_events(s)) == 1
    with session(engine) as s:  # after a correction, a final repeating the corrected value is nothing new
        fixed = lab(source="lis", source_id="R9", value=45, status="corrected")
        assert repo.store_events(s, None, [fixed], T0 + timedelta(hours=2)).corrected == 1
        r = repo.store_events(s, None, [b, lab(source="lis", source_id="R9", value=50)], T0 + timedelta(hours=3))
        assert (r.duplicate, len(r.quarantined)) == (1, 1)
        assert [x.value for x in repo.load_timeline(s, "P1").labs] == [45]


def test_retraction_removes_the_fact_but_keeps_history(engine) -> None:  # type: ignore[no-untyped-def]
    res = lab(source="lis", source_id="R2", value=90)
    with session(engine) as s:
        repo.store_events(s, None, [res, lab(value=20, at="2025-04-01")], T0)
    with session(engine) as s:
        r = repo.store_events(s, None, [lab(source="lis", source_id="R2", value=90, status="entered-in-error")],
                              T0 + timedelta(days=1))
    assert (r.accepted, r.corrected, r.retracted) == (0, 0, 1)
    with session(engine) as s:
        assert [x.value for x in repo.load_timeline(s, "P1").labs] == [20]
        assert len(_events(s)) == 3
        view = views.patient_view(s, "P1")
        assert view is not None and view["events"] == {"current": {"lab": 1}, "retracted": 1, "versions": 3}


def test_preliminary_then_final(engine) -> None:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [lab(source="lis", source_id="R3", status="preliminary", value=10)], T0)
        t = repo.load_timeline(s, "P1")
        assert t.labs == () and [x.value for x in t.preliminary] == [10]
    with session(engine) as s:
        r = repo.store_events(s, None, [lab(source="lis", source_id="R3", value=12)], T0 + timedelta(hours=2))
        assert r.corrected == 1
        t = repo.load_timeline(s, "P1")
        assert [x.value for x in t.labs] == [12] and t.preliminary == ()


def test_quarantine_items_are_listed_with_their_source(engine) -> None:  # type: ignore[no-untyped-def]
    items = [repo.QuarantineItem(3, "unit", "furlongs", "unit 'furlongs' is not accepted", '{"x":1}'),
             repo.QuarantineItem(None, "(message)", "MSH|...", "not HL7", "MSH|...")]
    with session(engine) as s:
        inbox, _ = repo.store_payload(s, b"q", "ndjson", "bad.ndjson", T0)
        assert repo.quarantine_items(s, inbox, items, T0) == 2
    with session(engine, write=False) as s:
        q = views.list_quarantine(s)
        assert views.list_quarantine(s, limit=1, inbox_id=inbox) == q[:1]
    assert len(q) == 2 and q[0]["line"] is None  # newest first
    assert q[1] == {"id": q[1]["id"], "inbox_id": inbox, "source_name": "bad.ndjson", "line": 3, "field": "unit",
                    "value": "furlongs", "reason": "unit 'furlongs' is not accepted", "raw": '{"x":1}',
                    "created_at": T0.isoformat()}
