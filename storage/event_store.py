"""Events: idempotent, versioned storage of validated events, and timelines rebuilt from it.

Every stored row is one version of one identity (monitor.events). UNIQUE(identity, content_hash) makes
a repeat a no-op; a new content for a known identity is a new version, and `is_current` marks the
version monitor.timeline.current_versions would pick, so readers load current rows only.

Concurrency: store_events locks the touched patients' rows (FOR UPDATE, in patient_id order) before
reading versions, so two transactions never number or flip versions of one patient's identities at
the same time. On SQLite, BEGIN IMMEDIATE (storage.db) serialises writers anyway.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from monitor.events import (
    LabResult,
    MedicationEvent,
    Patient,
    construct_trusted,
)
from monitor.timeline import Timeline, judge_final, version_key
from storage._sql import chunks, in_list, is_postgres, upsert
from storage.inbox import QuarantineItem
from storage.models import EventRow, PatientRow

log = logging.getLogger("imn.storage")

AnyEvent = Patient | LabResult | MedicationEvent
_events = EventRow.__table__  # type: ignore[attr-defined]
_patients = PatientRow.__table__  # type: ignore[attr-defined]
_MODELS: dict[str, type[AnyEvent]] = {"patient": Patient, "lab": LabResult, "medication": MedicationEvent}
INSERT_CHUNK = 1000


@dataclass
class StoreResult:
    accepted: int = 0  # first version of a new identity
    duplicate: int = 0  # a repeat (same identity and content, or a final saying what is stored): nothing stored
    corrected: int = 0  # a new version of a known identity (correction, amendment, final after preliminary)
    retracted: int = 0  # an entered-in-error version
    patients: set[str] = field(default_factory=set)  # patients with new rows (marked dirty)
    # a final result contradicting an earlier final of its identity: not stored, to be quarantined
    quarantined: list[QuarantineItem] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.accepted + self.corrected + self.retracted


@dataclass
class _New:
    event: AnyEvent
    identity: str
    content_hash: str
    payload: dict[str, Any]
    version: int = 0
    is_current: bool = False


@dataclass
class _Old:
    id: int
    patient_id: str
    status: str
    recorded_at: datetime | None
    content_hash: str
    version: int
    is_current: bool


def _stamp(events: list[AnyEvent], now: datetime) -> list[AnyEvent]:
    # recorded_at orders versions of one identity; an event without it is stamped with its arrival,
    # plus its position in the batch, so that a later line of one batch beats an earlier one
    out: list[AnyEvent] = []
    for i, ev in enumerate(events):
        # (Patient has no recorded_at yet: its versions order by content hash, as in monitor.timeline)
        if getattr(ev, "recorded_at", "-") is None:
            ev = ev.model_copy(update={"recorded_at": now + timedelta(microseconds=i)})
        out.append(ev)
    return out


def _effective_at(ev: AnyEvent) -> datetime | None:
    if isinstance(ev, LabResult):
        return ev.effective_at
    if isinstance(ev, MedicationEvent):
        return datetime.combine(ev.start, time(), tzinfo=UTC)
    return None


def store_events(s: Session, inbox_id: int | None, events: list[AnyEvent], now: datetime) -> StoreResult:
    """Store a batch of validated events idempotently (see the module docstring)."""
    result = StoreResult()
    if not events:
        return result
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")

    batch: dict[tuple[str, str], _New] = {}
    for ev in _stamp(events, now):
        key = (ev.identity, ev.content_hash)
        if key in batch:
            result.duplicate += 1
            continue
        batch[key] = _New(ev, key[0], key[1], ev.model_dump(mode="json"))

    dirty_marks = _lock_patients(s, sorted({n.event.patient_id for n in batch.values()}), now)
    old = _existing_versions(s, sorted({n.identity for n in batch.values()}))
    held = _held_results(s, batch, old)

    fresh: list[_New] = []
    per_identity: dict[str, list[_New]] = defaultdict(list)
    for key, n in batch.items():
        if key[1] in old.get(key[0], {}):
            result.duplicate += 1
            continue
        earlier = held.get(n.identity, []) + [m.event for m in per_identity.get(n.identity, [])]
        verdict, kept = judge_final(n.event, earlier)
        if verdict == "repeat":
            result.duplicate += 1
            continue
        if verdict == "conflict" and isinstance(n.event, LabResult) and isinstance(kept, LabResult):
            result.quarantined.append(_conflict_item(n, kept))
            continue
        known = bool(old.get(n.identity)) or bool(per_identity.get(n.identity))
        if n.event.status == "entered-in-error":
            result.retracted += 1
        elif known:
            result.corrected += 1
        else:
            result.accepted += 1
        per_identity[n.identity].append(n)
        fresh.append(n)
    if not fresh:
        return result

    flip_off: list[int] = []
    flip_on: list[int] = []
    touched: set[str] = set()
    for identity, news in per_identity.items():
        prior = old.get(identity, {})
        top = max((o.version for o in prior.values()), default=0)
        for i, n in enumerate(news, start=1):
            n.version = top + i
        candidates: list[tuple[tuple[int, datetime, str], Any]] = [
            (version_key(o.status, o.recorded_at, o.content_hash), o) for o in prior.values()
        ] + [(version_key(n.event.status, getattr(n.event, "recorded_at", None), n.content_hash), n) for n in news]
        winner = max(candidates, key=lambda c: c[0])[1]
        for o in prior.values():
            should = o is winner
            if o.is_current and not should:
                flip_off.append(o.id)
                touched.add(o.patient_id)  # usually the same patient; not when a result was re-filed
            elif should and not o.is_current:
                flip_on.append(o.id)
        for n in news:
            n.is_current = n is winner
            touched.add(n.event.patient_id)

    for ids, flag in ((flip_off, False), (flip_on, True)):
        for part in chunks(ids):
            s.execute(update(_events).where(in_list(s, _events.c.id, part)).values(is_current=flag))
    _insert_rows(s, inbox_id, fresh, now)
    _mark_dirty(s, touched, dirty_marks, now)
    result.patients = touched
    return result


def _held_results(s: Session, batch: dict[tuple[str, str], _New],
                  old: dict[str, dict[str, _Old]]) -> dict[str, list[AnyEvent]]:
    """The stored final and corrected versions (in version order) of the identities for which a new
    final lab result arrives: what judge_final compares it with. Read only for those (rare: a
    re-delivery with the same content is a duplicate by its hash before this)."""
    wanted = sorted({
        n.identity for key, n in batch.items()
        if isinstance(n.event, LabResult) and n.event.status == "final" and key[1] not in old.get(n.identity, {})
        and any(o.status in ("final", "corrected") for o in old.get(n.identity, {}).values())
    })
    found: dict[str, list[AnyEvent]] = defaultdict(list)
    c = _events.c
    for part in chunks(wanted):
        rows = s.execute(
            select(c.identity, c.kind, c.payload)
            .where(in_list(s, c.identity, part), c.status.in_(("final", "corrected")))
            .order_by(c.identity, c.version)
        )
        for identity, kind, payload in rows:
            found[identity].append(event_from_payload(kind, payload))
    return found


def _conflict_item(n: _New, kept: LabResult) -> QuarantineItem:
    new = n.event
    assert isinstance(new, LabResult)
    reason = (f"conflicts with an earlier final result of the same identity ({n.identity}): "
              f"{_shown(new)} where {_shown(kept)} is stored for {new.effective_at.isoformat()}; "
              "the stored result is kept. Send a changed result as a correction "
              "(HL7 OBX-11 C, FHIR status corrected or amended, NDJSON/CSV status corrected)")
    return QuarantineItem(None, "status", new.status, reason, json.dumps(n.payload, separators=(",", ":")))


def _shown(r: LabResult) -> str:
    # full precision: two values that differ must not read the same in the reason
    value = f"{r.comparator or ''}{r.value:.15g} {r.unit}"
    if r.reported_unit is None or r.reported_value is None:
        return value
    return f"{value} (reported {r.reported_value:.15g} {r.reported_unit})"


def _lock_patients(s: Session, patient_ids: list[str], now: datetime) -> dict[str, datetime | None]:
    """Create missing patient rows, lock all of them (in id order: no deadlock between batches) and
    return their dirty_since."""
    marks: dict[str, datetime | None] = {}
    for part in chunks(patient_ids, INSERT_CHUNK):
        s.execute(
            upsert(s, _patients).values([
                {"patient_id": pid, "active": True, "first_seen_at": now} for pid in part
            ]).on_conflict_do_nothing(index_elements=["patient_id"])
        )
        rows = s.execute(
            select(_patients.c.patient_id, _patients.c.dirty_since)
            .where(in_list(s, _patients.c.patient_id, part)).order_by(_patients.c.patient_id).with_for_update()
        )
        marks.update({r.patient_id: r.dirty_since for r in rows})
    return marks


def _existing_versions(s: Session, identities: list[str]) -> dict[str, dict[str, _Old]]:
    found: dict[str, dict[str, _Old]] = defaultdict(dict)
    c = _events.c
    for part in chunks(identities):
        rows = s.execute(
            select(c.id, c.identity, c.patient_id, c.status, c.recorded_at, c.content_hash, c.version,
                   c.is_current).where(in_list(s, c.identity, part))
        )
        for r in rows:
            found[r.identity][r.content_hash] = _Old(r.id, r.patient_id, r.status, r.recorded_at,
                                                     r.content_hash, r.version, r.is_current)
    return found


def _insert_rows(s: Session, inbox_id: int | None, fresh: list[_New], now: datetime) -> None:
    rows = [
        {"identity": n.identity, "patient_id": n.event.patient_id, "kind": n.event.type,
         "status": n.event.status, "content_hash": n.content_hash, "version": n.version,
         "is_current": n.is_current, "payload": n.payload, "effective_at": _effective_at(n.event),
         "recorded_at": getattr(n.event, "recorded_at", None), "received_at": now, "inbox_id": inbox_id}
        for n in fresh
    ]
    # ON CONFLICT DO NOTHING: the unique key stays the last line of defence should a concurrent
    # writer (outside the patient lock, e.g. one identity filed under two patients) get there first
    if is_postgres(s):
        _insert_rows_recordset(s, rows)
        return
    # with RETURNING, SQLAlchemy's "insertmanyvalues" batches the rows into multi-row VALUES
    # statements from one cached template (plain executemany sends a statement per row)
    stmt = (upsert(s, _events).on_conflict_do_nothing(index_elements=["identity", "content_hash"])
            .returning(_events.c.id))
    for part in chunks(rows, INSERT_CHUNK):
        s.execute(stmt, list(part)).all()


_RECORDSET_COLUMNS = (("identity", "text"), ("patient_id", "text"), ("kind", "text"), ("status", "text"),
                      ("content_hash", "text"), ("version", "int"), ("is_current", "bool"), ("payload", "jsonb"),
                      ("effective_at", "timestamptz"), ("recorded_at", "timestamptz"),
                      ("received_at", "timestamptz"), ("inbox_id", "bigint"))
_RECORDSET_SQL = text(
    f"INSERT INTO events ({', '.join(c for c, _ in _RECORDSET_COLUMNS)}) "
    f"SELECT {', '.join(c for c, _ in _RECORDSET_COLUMNS)} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    f"AS x({', '.join(f'{c} {t}' for c, t in _RECORDSET_COLUMNS)}) "
    "ON CONFLICT (identity, content_hash) DO NOTHING"
)


def _insert_rows_recordset(s: Session, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: the chunk travels as one JSON document expanded by jsonb_to_recordset: one
    parameter whatever the number of rows, encoded by the C json encoder and parsed by the server
    (several times faster than executemany or array parameters, and it keeps ON CONFLICT)."""
    for part in chunks(rows, 5000):
        doc = [{**r, "effective_at": _iso(r["effective_at"]), "recorded_at": _iso(r["recorded_at"]),
                "received_at": _iso(r["received_at"])} for r in part]
        s.execute(_RECORDSET_SQL, {"rows": json.dumps(doc, separators=(",", ":"))})


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _mark_dirty(s: Session, patient_ids: Iterable[str], marks: dict[str, datetime | None], now: datetime) -> None:
    # the new mark must differ from the one a reassessment may have read, or clear_dirty's
    # compare-and-set would clear it and lose this batch: never reuse an equal or later value
    params = []
    for pid in sorted(patient_ids):
        seen = marks.get(pid)
        mark = now if seen is None or seen < now else seen + timedelta(microseconds=1)
        params.append({"pid": pid, "mark": mark, "now": now})
    if params:
        s.execute(
            update(_patients).where(_patients.c.patient_id == bindparam("pid"))
            .values(dirty_since=bindparam("mark"), last_event_at=bindparam("now")),
            params,
        )


# ---------------------------------------------------------------------------------------------- read


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """How to turn a JSON value back into the field's Python type (None: it already is one)."""
    args = set(_flatten(annotation))
    if datetime in args:
        return lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(v)
    if date in args:
        return lambda v: v if isinstance(v, date) else date.fromisoformat(v)
    if float in args:
        return float
    return None


def _flatten(annotation: Any) -> Iterable[Any]:
    args = get_args(annotation)
    if not args:
        yield annotation
        return
    for a in args:
        yield from _flatten(a)


_CONVERTERS: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {
    kind: [(name, conv) for name, f in model.model_fields.items() if (conv := _converter(f.annotation))]
    for kind, model in _MODELS.items()
}


def event_from_payload(kind: str, payload: dict[str, Any], trusted: bool = True) -> AnyEvent:
    """Rebuild a stored event. `trusted` skips validation (the payload was validated when stored and
    is the model's own JSON dump): only dates, datetimes and floats need converting back."""
    model = _MODELS[kind]
    if not trusted:
        return model.model_validate(payload)
    data = dict(payload)
    for name, conv in _CONVERTERS[kind]:
        v = data.get(name)
        if v is not None:
            data[name] = conv(v)
    # construct_trusted: model_construct's result without its per-field walk (~100 events per
    # patient in a nightly load; tests/unit/storage checks the result equals full validation)
    return construct_trusted(model, data)


def load_timelines(s: Session, patient_ids: list[str], trusted: bool = True) -> dict[str, Timeline]:
    """Timelines of the known patients among `patient_ids` (unknown ids are absent), one query per
    chunk. A known patient with no usable events gets an empty timeline, so stale alerts resolve."""
    out: dict[str, Timeline] = {}
    c = _events.c
    for part in chunks(sorted(set(patient_ids))):
        known = s.execute(select(_patients.c.patient_id).where(in_list(s, _patients.c.patient_id, part))).scalars()
        grouped: dict[str, list[AnyEvent]] = {pid: [] for pid in known}
        rows = (_current_payloads_pg(s, part) if is_postgres(s) else s.execute(
            select(c.patient_id, c.kind, c.payload)
            .where(c.patient_id.in_(part), c.is_current.is_(True), c.status != "entered-in-error")
            .order_by(c.patient_id, c.id)
        ))
        for pid, kind, payload in rows:
            grouped.setdefault(pid, []).append(event_from_payload(kind, payload, trusted))
        for pid, evs in grouped.items():
            out[pid] = Timeline.of_current(pid, evs) if trusted else Timeline.build(pid, evs)
    return out


_CURRENT_PAYLOADS_SQL = (
    "SELECT patient_id, kind, payload::text FROM events WHERE patient_id = ANY(%s) AND is_current"
    " AND status <> 'entered-in-error' ORDER BY patient_id, id"
)


def _current_payloads_pg(s: Session, patient_ids: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(patient_id, kind, payload) of the patients' current rows, through the driver's own cursor.

    The nightly load reads ~70 rows per patient: SQLAlchemy's Row objects and psycopg's per-row jsonb
    loader took ~40 % of the fetch (bench/nightly.py); payload as text and one json.loads each does not.
    """
    cur = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(_CURRENT_PAYLOADS_SQL, (list(patient_ids),))
        loads = json.loads
        return [(pid, kind, loads(payload)) for pid, kind, payload in cur.fetchall()]
    finally:
        cur.close()


def load_timeline(s: Session, patient_id: str, trusted: bool = True) -> Timeline:
    """One patient's timeline (empty when the patient is unknown)."""
    return load_timelines(s, [patient_id], trusted).get(patient_id) or Timeline.build(patient_id, [])


class TimelineCache:
    """Timelines kept between reassessments in one process, keyed by each patient's event mark.

    The mark is (highest event row id, row count) of the patient: any stored event, version or
    retraction adds a row and changes it, so a cached timeline is used only while the stored events
    are exactly those it was built from. Bounded (least recently used out first).
    """

    def __init__(self, max_patients: int = 5000) -> None:
        self.max_patients = max_patients
        self._held: OrderedDict[str, tuple[tuple[int, int], Timeline]] = OrderedDict()
        self.hits = self.misses = 0

    def load(self, s: Session, patient_ids: list[str], keep: bool = True) -> dict[str, Timeline]:
        """The patients' timelines, from the cache while current; `keep=False` does not add the ones
        it had to load (a nightly pass visits each patient once: caching them only grows memory)."""
        marks = event_marks(s, patient_ids)
        out: dict[str, Timeline] = {}
        stale: list[str] = []
        for pid in patient_ids:
            held = self._held.get(pid)
            if held is not None and held[0] == marks.get(pid, (0, 0)):
                self._held.move_to_end(pid)
                out[pid] = held[1]
            else:
                stale.append(pid)
        self.hits += len(out)
        self.misses += len(stale)
        for pid, timeline in load_timelines(s, stale).items():
            out[pid] = timeline
            if keep and self.max_patients > 0:
                self._held[pid] = (marks.get(pid, (0, 0)), timeline)
                self._held.move_to_end(pid)
        while len(self._held) > self.max_patients:
            self._held.popitem(last=False)
        return out


def event_marks(s: Session, patient_ids: list[str]) -> dict[str, tuple[int, int]]:
    """(highest event id, number of event rows) per patient that has events."""
    c = _events.c
    out: dict[str, tuple[int, int]] = {}
    for part in chunks(sorted(set(patient_ids))):
        rows = s.execute(select(c.patient_id, func.max(c.id), func.count()).where(c.patient_id.in_(part))
                         .group_by(c.patient_id))
        out.update({r[0]: (int(r[1]), int(r[2])) for r in rows})
    return out
