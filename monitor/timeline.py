"""One patient's history, in clinical order whatever the arrival order.

Each event has an identity (events.py). Among the versions of one identity the newest wins
(entered-in-error > corrected > final > preliminary, then recorded_at); an exact repeat counts once;
a retraction removes the fact from assessment. Only final/corrected results are visible to rules;
preliminary ones are kept but not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Iterable

from monitor.events import STATUS_RANK, USABLE_STATUSES, LabResult, MedicationEvent, Patient

AnyEvent = Patient | LabResult | MedicationEvent
_EPOCH = datetime(1, 1, 1, tzinfo=timezone.utc)


def _version_key(event: AnyEvent) -> tuple[int, datetime, str]:
    recorded = getattr(event, "recorded_at", None) or _EPOCH
    return STATUS_RANK.get(getattr(event, "status", "final"), 1), recorded, event.content_hash


def current_versions(events: Iterable[AnyEvent]) -> dict[str, AnyEvent]:
    """The winning version of every identity (deterministic whatever the input order)."""
    best: dict[str, AnyEvent] = {}
    for event in events:
        held = best.get(event.identity)
        if held is None or _version_key(event) > _version_key(held):
            best[event.identity] = event
    return best


def _lab_order(r: LabResult) -> tuple[datetime, str, str]:
    return r.effective_at, r.analyte, r.identity


def _med_order(m: MedicationEvent) -> tuple[date, str, str]:
    return m.start, m.drug, m.identity


@dataclass(frozen=True)
class Timeline:
    patient_id: str
    patient: Patient | None = None
    labs: tuple[LabResult, ...] = ()  # usable results only (final/corrected), clinical order
    medications: tuple[MedicationEvent, ...] = ()  # usable, ordered by start
    preliminary: tuple[LabResult, ...] = ()  # stored but not used by rules until final
    _by_analyte: dict[str, tuple[LabResult, ...]] = field(default_factory=dict, repr=False, compare=False)
    # derived series computed once per timeline (it is immutable); see egfr.egfr_series
    _derived: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, patient_id: str, events: Iterable[AnyEvent]) -> "Timeline":
        versions = current_versions(e for e in events if e.patient_id == patient_id)
        patient = None
        labs: list[LabResult] = []
        meds: list[MedicationEvent] = []
        preliminary: list[LabResult] = []
        for event in versions.values():
            if isinstance(event, Patient):
                patient = event
            elif event.status == "preliminary" and isinstance(event, LabResult):
                preliminary.append(event)
            elif event.status not in USABLE_STATUSES:
                continue  # retracted (entered-in-error), or a preliminary medication
            elif isinstance(event, LabResult):
                labs.append(event)
            else:
                meds.append(event)
        return cls._make(patient_id, patient, labs, meds, preliminary)

    @classmethod
    def _make(cls, patient_id: str, patient: Patient | None, labs: Iterable[LabResult],
              meds: Iterable[MedicationEvent], preliminary: Iterable[LabResult] = (),
              presorted: bool = False) -> "Timeline":
        # presorted: the caller filtered an already ordered timeline (until), so the order holds and
        # the sort keys (which compute identities, a hash for events without source_id) are skipped
        if presorted:
            ordered, med_order, prelim_order = tuple(labs), tuple(meds), tuple(preliminary)
        else:
            ordered = tuple(sorted(labs, key=_lab_order))
            med_order = tuple(sorted(meds, key=_med_order))
            prelim_order = tuple(sorted(preliminary, key=_lab_order))
        by_analyte: dict[str, list[LabResult]] = {}
        for r in ordered:
            by_analyte.setdefault(r.analyte, []).append(r)
        return cls(
            patient_id=patient_id,
            patient=patient,
            labs=ordered,
            medications=med_order,
            preliminary=prelim_order,
            _by_analyte={k: tuple(v) for k, v in by_analyte.items()},
        )

    def until(self, as_of: date) -> "Timeline":
        """What was knowable on `as_of`: events dated after it are dropped.

        A course that started by `as_of` is kept whole; whoever reads it counts only days <= as_of.
        """
        # fast path (the nightly case): every lab is timed before as_of's UTC midnight, so its date in
        # any offset (<= +14 h) is <= as_of, and no course starts later: nothing to drop
        midnight = datetime.combine(as_of, time(), timezone.utc)
        if (all(not s or s[-1].effective_at < midnight for s in (self.labs, self.preliminary))
                and (not self.medications or self.medications[-1].start <= as_of)):
            return self
        labs = [r for r in self.labs if r.effective_date <= as_of]
        meds = [m for m in self.medications if m.start <= as_of]
        prelim = [r for r in self.preliminary if r.effective_date <= as_of]
        if len(labs) == len(self.labs) and len(meds) == len(self.medications) and len(prelim) == len(self.preliminary):
            return self  # nothing dropped: the timeline is immutable, share it
        return Timeline._make(self.patient_id, self.patient, labs, meds, prelim, presorted=True)

    def series(self, analyte: str) -> tuple[LabResult, ...]:
        return self._by_analyte.get(analyte, ())

    def latest(self, analyte: str) -> LabResult | None:
        s = self.series(analyte)
        return s[-1] if s else None

    def proteinuria(self) -> tuple[LabResult, ...]:
        """One proteinuria series in g/d: 24-hour collections, and UPCR (g/g ~ g/d) on days without one.

        clinical-rules.md: a 24-hour collection when present, otherwise UPCR; the evidence (analyte
        field) says which was used.
        """
        days = {r.effective_date for r in self.series("proteinuria_24h")}
        # one pass over the ordered labs keeps clinical order without re-sorting
        return tuple(r for r in self.labs if r.analyte == "proteinuria_24h"
                     or (r.analyte == "upcr" and r.effective_date not in days))

    def drugs(self, *names: str) -> tuple[MedicationEvent, ...]:
        wanted = set(names)
        return tuple(m for m in self.medications if m.drug in wanted)

