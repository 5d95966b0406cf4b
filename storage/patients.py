"""Patient rows: the durable debounce flag, the nightly fan-out, saved assessments, the nightly lock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.orm import Session

from monitor.assess import Assessment
from storage._sql import chunks, upsert
from storage.models import NightlyRunRow, PatientRow

_patients = PatientRow.__table__  # type: ignore[attr-defined]
_nightly = NightlyRunRow.__table__  # type: ignore[attr-defined]


def claim_dirty(s: Session, limit: int, now: datetime) -> list[str]:
    """Patients awaiting reassessment whose mark is not later than `now`, oldest first.

    Pass `now - debounce` to let a burst settle before it is picked up. On PostgreSQL the rows stay
    locked (FOR UPDATE SKIP LOCKED) until the caller's transaction ends, so concurrent sweepers split
    the work instead of both taking it. The flag itself is cleared by clear_dirty after the
    reassessment, never here: a crash in between leaves the patient dirty (nothing lost)."""
    return [pid for pid, _ in claim_dirty_marks(s, limit, now)]


def claim_dirty_marks(s: Session, limit: int, now: datetime) -> list[tuple[str, datetime]]:
    """claim_dirty with each patient's dirty_since, to hand to clear_dirty afterwards."""
    c = _patients.c
    rows = s.execute(
        select(c.patient_id, c.dirty_since)
        .where(c.dirty_since.is_not(None), c.dirty_since <= now)
        .order_by(c.dirty_since, c.patient_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(r.patient_id, r.dirty_since) for r in rows]


def dirty_since_of(s: Session, patient_ids: list[str]) -> dict[str, datetime | None]:
    """Each known patient's current dirty mark (None: nothing pending)."""
    out: dict[str, datetime | None] = {}
    for part in chunks(sorted(set(patient_ids))):
        rows = s.execute(select(_patients.c.patient_id, _patients.c.dirty_since)
                         .where(_patients.c.patient_id.in_(part)))
        out.update({r.patient_id: r.dirty_since for r in rows})
    return out


def patient_marks(s: Session, patient_ids: list[str]) -> dict[str, tuple[datetime | None, date | None]]:
    """(dirty_since, last_as_of) of each known patient: what a reassessment must do for it."""
    out: dict[str, tuple[datetime | None, date | None]] = {}
    c = _patients.c
    for part in chunks(sorted(set(patient_ids))):
        rows = s.execute(select(c.patient_id, c.dirty_since, c.last_as_of).where(c.patient_id.in_(part)))
        out.update({r.patient_id: (r.dirty_since, r.last_as_of) for r in rows})
    return out


def clear_dirty(s: Session, patient_id: str, seen_dirty_since: datetime) -> bool:
    """Clear the mark only if it is still the one the reassessment started from (compare-and-set):
    events stored meanwhile set a new mark, and the patient stays dirty for another pass."""
    res = s.execute(
        update(_patients)
        .where(_patients.c.patient_id == patient_id, _patients.c.dirty_since == seen_dirty_since)
        .values(dirty_since=None)
    )
    return bool(res.rowcount)


def stale_dirty_patients(s: Session, older_than: datetime, limit: int) -> list[str]:
    """Patients dirty since before `older_than`: their reassessment hint was probably lost (the
    sweeper re-drives them). Read only; no lock."""
    c = _patients.c
    q = (select(c.patient_id).where(c.dirty_since.is_not(None), c.dirty_since < older_than)
         .order_by(c.dirty_since, c.patient_id).limit(limit))
    return list(s.execute(q).scalars())


def patients_not_assessed_since(s: Session, as_of: date, limit: int) -> list[str]:
    """Active patients whose last assessment is for a date before `as_of` (or who were never
    assessed): what a nightly run for `as_of` has not reached yet."""
    c = _patients.c
    q = (select(c.patient_id).where(c.active.is_(True), (c.last_as_of.is_(None)) | (c.last_as_of < as_of))
         .order_by(c.patient_id).limit(limit))
    return list(s.execute(q).scalars())


def patients_owed(s: Session, as_of: date, mode: str | None, limit: int) -> list[str]:
    """The active patients a nightly run for `as_of` has not reached yet: for a full run (mode "full"
    or None, runs claimed before migration 0009) every patient not assessed for as_of; for a due run
    the patients still due (reassessing one moves its valid_until past as_of). Dirty patients are
    left to the sweeper's own re-drive."""
    if mode == "due":
        return due_patient_page(s, as_of, DUE_START, limit, include_dirty=False)[0]
    return patients_not_assessed_since(s, as_of, limit)


def mark_dirty(s: Session, patient_ids: list[str], now: datetime) -> None:
    """Ask for a reassessment of these patients (e.g. after a code-map change); keeps an older mark."""
    for part in chunks(sorted(set(patient_ids))):
        s.execute(update(_patients).where(_patients.c.patient_id.in_(part), _patients.c.dirty_since.is_(None))
                  .values(dirty_since=now))


def active_patient_ids(s: Session, after: str | None, limit: int) -> list[str]:
    """Active patient ids in id order after `after`: keyset pagination for the nightly fan-out."""
    q = select(_patients.c.patient_id).where(_patients.c.active.is_(True))
    if after is not None:
        q = q.where(_patients.c.patient_id > after)
    return list(s.execute(q.order_by(_patients.c.patient_id).limit(limit)).scalars())


# ------------------------------------------------------------------- due patients (nightly run)
# A patient is due on as_of when its last assessment may no longer hold: never assessed since
# migration 0009 (valid_until NULL), valid_until reached (<= as_of), or new events (dirty). Each of
# the three is read in index order by keyset pagination (ix_patients_valid_until, ix_patients_dirty_since):
# the cost follows the number of due patients, not the cohort.

DuePhase = str  # "new" | "expired" | "dirty"
DueCursor = tuple[DuePhase, date | None, str | None]  # phase, last valid_until read, last patient id
DUE_START: DueCursor = ("new", None, None)
_PHASES: tuple[DuePhase, ...] = ("new", "expired", "dirty")


def due_patient_page(s: Session, as_of: date, cursor: DueCursor, limit: int,
                     include_dirty: bool = True) -> tuple[list[str], DueCursor | None]:
    """The next page (up to `limit` ids) of the active patients due on `as_of`, and the cursor after it
    (None: done). Each patient comes once: the dirty phase skips those the other two already hold.

    Stable while reassessments run: a reassessed patient's valid_until moves past as_of (out of the
    expired range, never into it) and its dirty flag clears, so no page skips a due patient."""
    c = _patients.c
    phase, last_day, last_id = cursor
    out: list[str] = []
    while len(out) < limit:
        want = limit - len(out)
        if phase == "new":
            # the never-assessed: those a run for as_of has already reached are done
            q = select(c.patient_id).where(c.active.is_(True), c.valid_until.is_(None),
                                           (c.last_as_of.is_(None)) | (c.last_as_of < as_of))
            if last_id is not None:
                q = q.where(c.patient_id > last_id)
            ids = list(s.execute(q.order_by(c.valid_until, c.patient_id).limit(want)).scalars())
            out += ids
            if len(ids) == want:
                return out, (phase, None, ids[-1])
        elif phase == "expired":
            q = select(c.patient_id, c.valid_until).where(c.active.is_(True), c.valid_until <= as_of)
            if last_id is not None:
                q = q.where(tuple_(c.valid_until, c.patient_id) > tuple_(bindparam("d", last_day), bindparam("p", last_id)))
            rows = s.execute(q.order_by(c.valid_until, c.patient_id).limit(want)).all()
            out += [r.patient_id for r in rows]
            if len(rows) == want:
                return out, (phase, rows[-1].valid_until, rows[-1].patient_id)
        else:
            q = select(c.patient_id).where(c.active.is_(True), c.dirty_since.is_not(None), c.valid_until > as_of)
            if last_id is not None:
                q = q.where(c.patient_id > last_id)
            ids = list(s.execute(q.order_by(c.patient_id).limit(want)).scalars())
            out += ids
            if len(ids) == want:
                return out, (phase, None, ids[-1])
        i = _PHASES.index(phase) + 1
        if i >= len(_PHASES) or (_PHASES[i] == "dirty" and not include_dirty):
            return out, None
        phase, last_day, last_id = _PHASES[i], None, None
    return out, (phase, last_day, last_id)


def count_due(s: Session, as_of: date) -> dict[str, int]:
    """How many active patients are due on as_of, and how many are active (the bench's share)."""
    from sqlalchemy import func

    c = _patients.c
    active = c.active.is_(True)
    new = s.execute(select(func.count()).where(active, c.valid_until.is_(None))).scalar_one()
    expired = s.execute(select(func.count()).where(active, c.valid_until <= as_of)).scalar_one()
    dirty = s.execute(select(func.count()).where(active, c.dirty_since.is_not(None), c.valid_until > as_of)).scalar_one()
    total = s.execute(select(func.count()).where(active)).scalar_one()
    return {"new": new, "expired": expired, "dirty": dirty, "due": new + expired + dirty, "active": total}


def save_assessment(s: Session, assessment: Assessment, now: datetime) -> None:
    save_assessments(s, [assessment], now)


def save_assessments(s: Session, assessments: list[Assessment], now: datetime) -> None:
    """Store where each patient stands (one executemany for a chunk of patients)."""
    if not assessments:
        return
    c = _patients.c
    s.execute(
        update(_patients).where(c.patient_id == bindparam("pid")).values(
            remission_state=bindparam("state"), risk_category=bindparam("risk"), summary=bindparam("summary"),
            last_as_of=bindparam("as_of"), last_assessed_at=bindparam("now"), valid_until=bindparam("until"),
        ),
        [{"pid": a.patient_id, "state": a.remission.state, "risk": a.risk.category, "summary": a.summary(),
          "as_of": a.as_of, "now": now, "until": a.valid_until} for a in assessments],
    )


def set_active(s: Session, patient_id: str, active: bool) -> None:
    s.execute(update(_patients).where(_patients.c.patient_id == patient_id).values(active=active))


# -------------------------------------------------------------------------------- nightly run lock


NIGHTLY_MODES = ("due", "full")


def claim_nightly_run(s: Session, as_of: date, owner: str, now: datetime,
                      stale_after: timedelta | None = None, mode: str = "full") -> bool:
    """True only for the first claimer of `as_of` (a unique insert). A run that `failed`, or one still
    `running` after `stale_after` (its owner died), may be taken over by exactly one new claimer.
    `mode`: "due" (the patients due on as_of) or "full" (every active patient), kept with the run."""
    if mode not in NIGHTLY_MODES:
        raise ValueError(f"unknown nightly run mode {mode!r}")
    inserted = s.execute(
        upsert(s, _nightly).values(as_of=as_of, started_at=now, owner=owner, state="running", mode=mode)
        .on_conflict_do_nothing(index_elements=["as_of"]).returning(_nightly.c.as_of)
    ).scalar()
    if inserted is not None:
        return True
    c = _nightly.c
    takeover = c.state == "failed"
    if stale_after is not None:
        takeover = takeover | ((c.state == "running") & (c.started_at < now - stale_after))
    res = s.execute(
        update(_nightly).where(c.as_of == as_of, takeover)
        .values(owner=owner, started_at=now, state="running", finished_at=None, patients=None, mode=mode)
    )
    return bool(res.rowcount)


def finish_nightly_run(s: Session, as_of: date, now: datetime, state: str = "finished",
                       patients: int | None = None, owner: str | None = None) -> None:
    """Record the end of the run (state finished or failed); with `owner`, only that owner's run."""
    if state not in ("finished", "failed"):
        raise ValueError(f"unknown nightly run state {state!r}")
    q = update(_nightly).where(_nightly.c.as_of == as_of)
    if owner is not None:
        q = q.where(_nightly.c.owner == owner)
    s.execute(q.values(finished_at=now, state=state, patients=patients))


def unfinished_nightly_runs(s: Session, started_before: datetime) -> list[date]:
    """Nightly runs still `running` that started before the cutoff (their fan-out may need a re-drive)."""
    c = _nightly.c
    q = select(c.as_of).where(c.state == "running", c.started_at < started_before).order_by(c.as_of)
    return list(s.execute(q).scalars())


def nightly_run(s: Session, as_of: date) -> dict[str, Any] | None:
    row = s.execute(select(_nightly).where(_nightly.c.as_of == as_of)).one_or_none()
    return dict(row._mapping) if row is not None else None
