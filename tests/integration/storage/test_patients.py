from __future__ import annotations

from datetime import date, timedelta

import pytest

from monitor.assess import assess
from storage import repository as repo
from storage import views
from storage.db import session

from .builders import T0, lab, patient

pytestmark = pytest.mark.integration


def test_claim_dirty_and_compare_and_set_clear(engine) -> None:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid="A")], T0)
        repo.store_events(s, None, [lab(pid="B")], T0 + timedelta(seconds=5))
    with session(engine) as s:
        assert repo.claim_dirty(s, 10, T0 + timedelta(minutes=1)) == ["A", "B"]  # oldest first
        assert repo.claim_dirty(s, 10, T0 + timedelta(seconds=1)) == ["A"]  # debounce: B is too fresh
        seen = dict(repo.claim_dirty_marks(s, 1, T0 + timedelta(minutes=1)))
    assert seen == {"A": T0}
    # a new result arrives for A while it is being reassessed: the stale mark must not clear it
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid="A", value=99)], T0)  # same clock value: still a new mark
    with session(engine) as s:
        assert not repo.clear_dirty(s, "A", seen["A"])
        fresh = repo.dirty_since_of(s, ["A"])["A"]
        assert fresh is not None and fresh != seen["A"]
        assert repo.clear_dirty(s, "A", fresh)
        assert repo.claim_dirty(s, 10, T0 + timedelta(minutes=1)) == ["B"]


def test_active_patient_ids_keyset_pagination(engine) -> None:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid=f"P{i:03d}") for i in range(25)], T0)
        repo.set_active(s, "P010", False)
    pages: list[list[str]] = []
    after = None
    while True:
        with session(engine) as s:
            ids = repo.active_patient_ids(s, after=after, limit=10)
        if not ids:
            break
        pages.append(ids)
        after = ids[-1]
    assert [len(p) for p in pages] == [10, 10, 4]
    assert [pid for page in pages for pid in page] == [f"P{i:03d}" for i in range(25) if i != 10]


def test_save_assessment_and_patient_view(engine) -> None:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [patient(), lab(analyte="proteinuria_24h", value=6, unit="g/d")], T0)
    with session(engine) as s:
        a = assess(repo.load_timeline(s, "P1"), date(2025, 6, 1))
        repo.save_assessment(s, a, T0)
    with session(engine) as s:
        v = views.patient_view(s, "P1")
        assert views.patient_view(s, "nobody") is None
    assert v is not None
    assert v["last_as_of"] == "2025-06-01" and v["last_assessed_at"] == T0.isoformat()
    assert v["remission_state"] == a.remission.state and v["risk_category"] == a.risk.category
    assert v["summary"]["patient_id"] == "P1" and v["pending_reassessment"] is True
    assert v["events"]["current"] == {"patient": 1, "lab": 1}
    assert isinstance(v["open_alerts"], list)


def test_nightly_run_lock(engine) -> None:  # type: ignore[no-untyped-def]
    day = date(2025, 6, 1)
    with session(engine) as s:
        assert repo.claim_nightly_run(s, day, "scheduler-1", T0)
    with session(engine) as s:
        assert not repo.claim_nightly_run(s, day, "scheduler-2", T0)
        assert not repo.claim_nightly_run(s, day, "scheduler-2", T0 + timedelta(minutes=5),
                                          stale_after=timedelta(hours=1))
        assert repo.claim_nightly_run(s, date(2025, 6, 2), "scheduler-2", T0)
    with session(engine) as s:  # the first owner died: after stale_after one claimer takes over
        assert repo.claim_nightly_run(s, day, "scheduler-3", T0 + timedelta(hours=2), stale_after=timedelta(hours=1))
        assert not repo.claim_nightly_run(s, day, "scheduler-4", T0 + timedelta(hours=2),
                                          stale_after=timedelta(hours=1))
        repo.finish_nightly_run(s, day, T0 + timedelta(hours=3), patients=25, owner="scheduler-3")
    with session(engine) as s:
        run = repo.nightly_run(s, day)
        assert run is not None and run["state"] == "finished" and run["patients"] == 25
        assert run["owner"] == "scheduler-3"
        assert not repo.claim_nightly_run(s, day, "scheduler-5", T0 + timedelta(days=2), stale_after=timedelta(hours=1))


def test_sweeper_queries(engine) -> None:  # type: ignore[no-untyped-def]
    day = date(2025, 6, 1)
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid="A"), lab(pid="B")], T0)
        repo.store_events(s, None, [lab(pid="C")], T0 + timedelta(hours=1))
        a = assess(repo.load_timeline(s, "A"), day)
        repo.save_assessment(s, a, T0)
        repo.claim_nightly_run(s, day, "sched", T0)
        repo.claim_nightly_run(s, date(2025, 6, 2), "sched", T0 + timedelta(hours=2))
        repo.finish_nightly_run(s, date(2025, 6, 2), T0 + timedelta(hours=3))
    with session(engine, write=False) as s:
        assert repo.stale_dirty_patients(s, older_than=T0 + timedelta(minutes=30), limit=10) == ["A", "B"]
        assert repo.patients_not_assessed_since(s, day, limit=10) == ["B", "C"]
        assert repo.unfinished_nightly_runs(s, started_before=T0 + timedelta(hours=5)) == [day]
    with session(engine) as s:
        inbox, _ = repo.store_payload(s, b"z", "csv", "z.csv", T0)
        repo.inbox_mark(s, inbox, "processed", T0, counts={"accepted": 1})
    with session(engine, write=False) as s:
        st = views.inbox_status(s, [inbox, 12345])
    assert len(st) == 1 and st[0]["state"] == "processed" and st[0]["counts"] == {"accepted": 1}


def _set_valid_until(engine, values: dict[str, date | None]) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.begin() as c:
        for pid, until in values.items():
            c.execute(text("update patients set valid_until = :u, last_as_of = :l, dirty_since = null"
                           " where patient_id = :p"), {"u": until, "l": date(2025, 5, 1) if until else None, "p": pid})


def test_due_patients_are_the_never_assessed_the_expired_and_the_dirty_each_once(engine) -> None:  # type: ignore[no-untyped-def]
    day = date(2025, 6, 1)
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid=f"P{i:02d}") for i in range(12)], T0)
    _set_valid_until(engine, {
        "P00": None, "P01": None,  # never assessed
        "P02": day - timedelta(days=3), "P03": day, "P04": day - timedelta(days=3),  # reached
        "P05": day + timedelta(days=1), "P06": date.max, "P07": day + timedelta(days=30),  # not yet
        "P08": day + timedelta(days=2), "P09": date.max, "P10": day, "P11": day + timedelta(days=9),
    })
    with session(engine) as s:
        repo.mark_dirty(s, ["P06", "P03"], T0)  # P06: new events; P03: already due
        repo.set_active(s, "P10", False)
    pages: list[list[str]] = []
    cursor: repo.DueCursor | None = repo.DUE_START
    while cursor is not None:
        with session(engine) as s:
            ids, cursor = repo.due_patient_page(s, day, cursor, limit=2)
        pages.append(ids)
    due = [pid for page in pages for pid in page]
    assert due == ["P00", "P01", "P02", "P04", "P03", "P06"]  # expired ones by valid_until, then id
    assert all(len(p) <= 2 for p in pages)
    with session(engine) as s:
        assert repo.count_due(s, day) == {"new": 2, "expired": 3, "dirty": 1, "due": 6, "active": 11}
        # what a due-only nightly run for `day` still owes (dirty ones are the sweeper's)
        assert repo.patients_owed(s, day, "due", limit=100) == ["P00", "P01", "P02", "P04", "P03"]


def test_saving_an_assessment_stores_valid_until_and_takes_the_patient_out_of_the_due_set(engine) -> None:  # type: ignore[no-untyped-def]
    day = date(2025, 6, 1)
    with session(engine) as s:
        repo.store_events(s, None, [patient(), lab(analyte="proteinuria_24h", value=6, unit="g/d")], T0)
    with session(engine) as s:
        a = assess(repo.load_timeline(s, "P1"), day)
        repo.save_assessment(s, a, T0)
        repo.clear_dirty(s, "P1", repo.dirty_since_of(s, ["P1"])["P1"])  # type: ignore[arg-type]
    assert a.valid_until > day
    with session(engine) as s:
        assert repo.due_patient_page(s, day, repo.DUE_START, 10) == ([], None)
        assert repo.due_patient_page(s, a.valid_until, repo.DUE_START, 10)[0] == ["P1"]
        assert repo.due_patient_page(s, a.valid_until - timedelta(days=1), repo.DUE_START, 10)[0] == []
