"""One patient's history, in clinical order whatever the arrival order.

Each event has an identity (events.py). Among the versions of one identity the newest wins
(entered-in-error > corrected > final > preliminary, then recorded_at); an exact repeat counts once;
a retraction removes the fact from assessment. Only final/corrected results are visible to rules;
preliminary ones are kept but not used.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from operator import attrgetter
from typing import Literal, NamedTuple

from monitor.events import STATUS_RANK, USABLE_STATUSES, LabResult, MedicationEvent, Patient
from monitor.proteinuria import proteinuria_series

AnyEvent = Patient | LabResult | MedicationEvent
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_ARRAYS_MEMO_SIZE = 32  # Timeline.arrays memoises at most this many series per timeline


def version_key(status: str | None, recorded_at: datetime | None, content_hash: str) -> tuple[int, datetime, str]:
    """Which version of one identity wins: the highest key (the one definition; storage.event_store
    computes `is_current` with it from stored columns). Status first (entered-in-error > corrected >
    final > preliminary), then recorded_at (none = oldest), then the content hash, so the choice is
    deterministic whatever the arrival order. Storage keeps out a second final of a result that says something
    else (judge_final), so between finals a later recorded_at decides for patient and medication
    records; for results only in timelines built from events that were never stored."""
    return STATUS_RANK.get(status or "final", 1), recorded_at or _EPOCH, content_hash


def result_fact(result: LabResult) -> tuple[str, str, datetime, str | None, float]:
    """What a result says clinically (patient, analyte, time, comparator, canonical value), not how it
    was reported: 3.5 g/dL and 35 g/L of one result are the same fact."""
    return result.patient_id, result.analyte, result.effective_at, result.comparator, result.value


FinalVerdict = Literal["version", "repeat", "conflict"]


def judge_final(new: AnyEvent, earlier: Sequence[AnyEvent]) -> tuple[FinalVerdict, LabResult | None]:
    """How a new version of a result relates to the versions of its identity already held (`earlier`,
    in arrival order), before it is stored.

    A result changes value only by a correction (HL7 OBX-11 C, FHIR amended/corrected) or a
    retraction. So a *final* lab result that says something else than an earlier final of the same
    identity is a "conflict": it must not replace that final (it would by a later recorded_at) nor be
    taken for a correction; the caller quarantines it and keeps the earlier one (returned: the
    version in force). A final that says what an earlier final or correction already says (the same
    value in another unit, a re-delivery) is a "repeat". Anything else — a first version, a
    correction, a retraction, a final after a preliminary, a patient or medication record — is a new
    "version", ordered by version_key. (Issue 12, item 4.)"""
    if not isinstance(new, LabResult) or new.status != "final":
        return "version", None
    usable = [e for e in earlier if isinstance(e, LabResult) and e.status in USABLE_STATUSES]
    fact = result_fact(new)
    for e in usable:
        if result_fact(e) == fact:
            return "repeat", e
    if any(e.status == "final" for e in usable):
        return "conflict", max(usable, key=event_version_key)
    return "version", None


def event_version_key(event: AnyEvent) -> tuple[int, datetime, str]:
    return version_key(getattr(event, "status", None), getattr(event, "recorded_at", None), event.content_hash)


def current_versions(events: Iterable[AnyEvent]) -> dict[str, AnyEvent]:
    """The winning version of every identity (deterministic whatever the input order)."""
    best: dict[str, AnyEvent] = {}
    for event in events:
        held = best.get(event.identity)
        if held is None or event_version_key(event) > event_version_key(held):
            best[event.identity] = event
    return best


# clinical order: (effective_at, analyte, identity) for labs, (start, drug, identity) for medications.
# attrgetter builds the key tuple in C (a sort key runs for every event of every timeline built)
_lab_order: Callable[[LabResult], tuple[datetime, str, str]] = attrgetter("effective_at", "analyte", "identity")
_med_order: Callable[[MedicationEvent], tuple[date, str, str]] = attrgetter("start", "drug", "identity")


_effective_at = attrgetter("effective_at")
_value = attrgetter("value")


def _days(results: Iterable[LabResult]) -> Iterator[int]:
    """The effective dates of results as date ordinals (a datetime's ordinal is its own date's), in C:
    map, no Python frame per result. On a freshly loaded timeline this is cheaper than computing each
    event's effective_date memo."""
    return map(date.toordinal, map(_effective_at, results))


class SeriesArrays(NamedTuple):
    """A series of results as parallel arrays: effective dates as date ordinals, and values.

    The rules compare and subtract dates and read values hundreds of times per assess(): ints and
    floats in tuples are cheaper to read, compare and subtract than event attributes and dates, and
    a window look-up on ascending days is a bisection instead of a scan. Window look-ups return the
    index (in series order) of the first or last result dated within [lo, hi] (ordinals,
    inclusive), or -1, exactly as a scan of the series would find it. (A NamedTuple, cheaper to
    build than a frozen dataclass: a freshly loaded timeline builds one for each series read.)"""

    days: tuple[int, ...]
    values: tuple[float, ...]
    # clinical order is by instant, so dates ascend unless time-zone offsets put a later instant on
    # an earlier local date; then the look-ups scan instead of bisecting
    ascending: bool

    @classmethod
    def of(cls, results: Sequence[LabResult]) -> SeriesArrays:
        days = tuple(_days(results))
        return cls(days, tuple(map(_value, results)), list(days) == sorted(days))

    def last_in(self, lo: int, hi: int) -> int:
        """The last result dated within [lo, hi]."""
        days = self.days
        if self.ascending:
            i = bisect_right(days, hi) - 1
            return i if i >= 0 and days[i] >= lo else -1
        for i in range(len(days) - 1, -1, -1):
            if lo <= days[i] <= hi:
                return i
        return -1

    def last_from(self, lo: int) -> int:
        """The last result dated on or after `lo` (the latest one, when dates ascend)."""
        days = self.days
        if self.ascending:
            return len(days) - 1 if days and days[-1] >= lo else -1
        for i in range(len(days) - 1, -1, -1):
            if days[i] >= lo:
                return i
        return -1

    def first_in(self, lo: int, hi: int) -> int:
        """The first result dated within [lo, hi]."""
        days = self.days
        if self.ascending:
            i = bisect_left(days, lo)
            return i if i < len(days) and days[i] <= hi else -1
        for i, d in enumerate(days):
            if lo <= d <= hi:
                return i
        return -1


@dataclass(frozen=True)
class Timeline:
    patient_id: str
    patient: Patient | None = None
    labs: tuple[LabResult, ...] = ()  # usable results only (final/corrected), clinical order
    medications: tuple[MedicationEvent, ...] = ()  # usable, ordered by start
    preliminary: tuple[LabResult, ...] = ()  # stored but not used by rules until final
    _by_analyte: dict[str, tuple[LabResult, ...]] = field(default_factory=dict, repr=False, compare=False)
    # derived data computed once per timeline (it is immutable): egfr.egfr_series, proteinuria(),
    # drugs()' index. Never part of equality; a timeline from until()/_make starts with an empty one.
    _derived: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, patient_id: str, events: Iterable[AnyEvent]) -> Timeline:
        versions = current_versions(e for e in events if e.patient_id == patient_id)
        return cls.of_current(patient_id, versions.values())

    @classmethod
    def of_current(cls, patient_id: str, events: Iterable[AnyEvent]) -> Timeline:
        """The timeline of events already reduced to their current version (storage keeps that as
        `is_current`, so it skips current_versions): which of them the rules may read."""
        patient = None
        labs: list[LabResult] = []
        meds: list[MedicationEvent] = []
        preliminary: list[LabResult] = []
        for event in events:
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
              presorted: bool = False) -> Timeline:
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

    def until(self, as_of: date) -> Timeline:
        """What was knowable on `as_of`: events dated after it are dropped.

        A course that started by `as_of` is kept whole; whoever reads it counts only days <= as_of.
        """
        # fast path (the nightly case): every lab is timed before as_of's UTC midnight, so its date in
        # any offset (<= +14 h) is <= as_of, and no course starts later: nothing to drop
        midnight = datetime.combine(as_of, time(), UTC)
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

    def arrays(self, results: tuple[LabResult, ...]) -> SeriesArrays:
        """SeriesArrays of `results` (a series of this timeline: series(), proteinuria(), the eGFR
        series), memoised per series object, since the timeline is immutable."""
        memo: dict[int, tuple[tuple[LabResult, ...], SeriesArrays]]
        memo = self._derived.setdefault("arrays", {})  # type: ignore[assignment]
        held = memo.get(id(results))
        if held is not None and held[0] is results:  # the series is kept in the memo: its id stays its own
            return held[1]
        arrays = SeriesArrays.of(results)
        if len(memo) < _ARRAYS_MEMO_SIZE:  # a timeline has ~11 series; more: a caller's own tuples
            memo[id(results)] = (results, arrays)
        return arrays

    def proteinuria(self) -> tuple[LabResult, ...]:
        """One proteinuria series in g/d: 24-hour collections, and UPCR on days without one (a ratio
        in mg/mmol as its KDIGO estimate, mg/mmol / 100; see monitor.proteinuria).

        docs/clinical-rules.md: a 24-hour collection when present, otherwise UPCR; the evidence
        (analyte field) says which was used.
        """
        held = self._derived.get("proteinuria")
        if held is None:
            held = self._derived["proteinuria"] = proteinuria_series(
                self.series("proteinuria_24h"), self.series("upcr"))
        return held  # type: ignore[return-value]

    def drugs(self, *names: str) -> tuple[MedicationEvent, ...]:
        """The records of these drugs, in the order of self.medications (by start)."""
        by_drug: dict[str, tuple[MedicationEvent, ...]] | None
        by_drug = self._derived.get("by_drug")  # type: ignore[assignment]
        if by_drug is None:
            # indexed once per timeline: rules and therapy ask for one drug ~20 times per assess()
            index: dict[str, list[MedicationEvent]] = {}
            for m in self.medications:
                index.setdefault(m.drug, []).append(m)
            by_drug = self._derived["by_drug"] = {k: tuple(v) for k, v in index.items()}
        if len(names) == 1:
            return by_drug.get(names[0], ())
        recorded = [by_drug[n] for n in names if n in by_drug]
        if len(recorded) == 1:
            return recorded[0]  # the usual case (e.g. an ACEi but no ARB): already in medication order
        if not recorded:
            return ()
        wanted = set(names)
        return tuple(m for m in self.medications if m.drug in wanted)
