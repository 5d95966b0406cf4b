"""Therapy courses: anti-CD20 courses and their baseline, calcineurin-inhibitor windows, cumulative
cyclophosphamide.

docs/clinical-rules.md, "Therapy courses": doses of one anti-CD20 agent within 30 days of each other
form one course, fingerprinted by its first dose date; a course's baseline proteinuria is the latest
value in the 90 days up to its first dose; CNIs are active between start and end (open end =
active); cumulative cyclophosphamide = oral days x daily dose + IV pulses, using body weight (and
height, for mg/m2) only when the dose is relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from operator import attrgetter

from monitor.events import ADMINISTRATIONS_PER_DAY, ANTI_CD20, LabResult, MedicationEvent, Patient
from monitor.timeline import SeriesArrays, Timeline

ANTI_CD20_COURSE_GAP_DAYS = 30  # docs/clinical-rules.md: doses within 30 days form one course
# docs/clinical-rules.md: a course's baseline is the latest proteinuria in the 90 days up to and
# including its first dose. MENTOR measured the response against the value at randomisation, which
# preceded the first infusion by weeks; 90 days (KDIGO21's 3-month measuring interval) finds a
# baseline 6 weeks before the infusion, as clinics schedule it (30 days missed it).
COURSE_BASELINE_LOOKBACK_DAYS = 90
# Records of one drug that start at most 60 days after the previous record ended are one course: the
# modified Ponticelli regimen gives cyclophosphamide in alternate months (31-day gaps), IV pulses
# are monthly, and a dose change is a new record starting the next day. A restart after more than
# two months off is a new course (this project's reading; the rule book does not define it).
THERAPY_COURSE_GAP_DAYS = 60
IMMUNOSUPPRESSANTS = frozenset(
    {"cyclosporine", "tacrolimus", "cyclophosphamide", "chlorambucil", "glucocorticoid",
     "mycophenolate", "acth", "belimumab"}
)


@dataclass(frozen=True)
class AntiCD20Course:
    agent: str
    doses: tuple[MedicationEvent, ...]

    @property
    def first_dose(self) -> date:
        return self.doses[0].start

    @property
    def last_dose(self) -> date:
        return self.doses[-1].start

    @property
    def episode(self) -> str:
        return f"{self.agent}:{self.first_dose.isoformat()}"


def course_baseline_proteinuria(proteinuria: tuple[LabResult, ...], course: AntiCD20Course,
                                arrays: SeriesArrays | None = None) -> LabResult | None:
    """The course's baseline: the latest proteinuria (the rules' g/d series, RuleContext.proteinuria)
    dated in the 90 days up to and including the course's first dose; None when there is none.

    `arrays`: the series' SeriesArrays (Timeline.arrays), when the caller has them. A baseline of 0
    is returned as it is: a caller measuring a relative fall from it must treat it as no baseline."""
    if arrays is None:
        arrays = SeriesArrays.of(proteinuria)
    first_dose = course.first_dose.toordinal()
    i = arrays.last_in(first_dose - COURSE_BASELINE_LOOKBACK_DAYS, first_dose)  # a bisection
    return proteinuria[i] if i >= 0 else None


@dataclass(frozen=True)
class TherapyCourse:
    """One continuous course of one drug: its records, merged (THERAPY_COURSE_GAP_DAYS)."""

    drug: str
    records: tuple[MedicationEvent, ...]  # by start
    start: date
    end: date | None  # the last day of the last record; None = open-ended (still going on)

    @property
    def episode(self) -> str:
        return f"{self.drug}:{self.start.isoformat()}"

    def ended_before(self, day: date) -> bool:
        """The course's last day is before `day` (an open-ended course never is)."""
        return self.end is not None and self.end < day

    def covers(self, day: date) -> bool:
        """`day` lies between the course's start and its end, inclusive (gaps within it included)."""
        return self.start <= day and not self.ended_before(day)


def record_end(m: MedicationEvent) -> date | None:
    """The last day of a record: its start for one administration, None for an open-ended course."""
    if m.frequency == "once":
        return m.end or m.start
    return m.end


def therapy_courses(timeline: Timeline, drug: str) -> tuple[TherapyCourse, ...]:
    """The courses of `drug` in the timeline (records started by as_of, already cut by until()),
    ordered by start. A record's planned end may lie after as_of: readers compare it with as_of.
    Memoised per timeline (immutable): several rules read the same drug's courses."""
    key = f"courses:{drug}"
    held = timeline._derived.get(key)
    if held is None:
        held = timeline._derived[key] = _therapy_courses(timeline, drug)
    return held  # type: ignore[return-value]


def _therapy_courses(timeline: Timeline, drug: str) -> tuple[TherapyCourse, ...]:
    courses: list[TherapyCourse] = []
    records: list[MedicationEvent] = []
    start = end = None
    open_ended = False
    for m in timeline.drugs(drug):  # ordered by start
        m_end = record_end(m)
        if records and (open_ended or (end is not None and (m.start - end).days <= THERAPY_COURSE_GAP_DAYS)):
            records.append(m)
            open_ended = open_ended or m_end is None
            if m_end is not None and end is not None and m_end > end:
                end = m_end
            continue
        if records:
            courses.append(TherapyCourse(drug, tuple(records), start, None if open_ended else end))  # type: ignore[arg-type]
        records, start, end, open_ended = [m], m.start, m_end, m_end is None
    if records:
        courses.append(TherapyCourse(drug, tuple(records), start, None if open_ended else end))  # type: ignore[arg-type]
    return tuple(courses)


# agents in name order, and the sort keys, built once (this runs for every patient every night)
_ANTI_CD20_AGENTS = tuple(sorted(ANTI_CD20))
_dose_order = attrgetter("start", "identity")
_course_order = attrgetter("first_dose", "agent")


def anti_cd20_courses(timeline: Timeline, as_of: date) -> tuple[AntiCD20Course, ...]:
    """Courses of each anti-CD20 agent (administrations up to as_of), ordered by first dose."""
    courses: list[AntiCD20Course] = []
    for agent in _ANTI_CD20_AGENTS:
        records = timeline.drugs(agent)
        if not records:
            continue
        doses = [d for m in records for d in _administrations(m, as_of)]
        doses.sort(key=_dose_order)
        group: list[MedicationEvent] = []
        for dose in doses:
            if group and (dose.start - group[-1].start).days > ANTI_CD20_COURSE_GAP_DAYS:
                courses.append(AntiCD20Course(agent, tuple(group)))
                group = []
            group.append(dose)
        if group:
            courses.append(AntiCD20Course(agent, tuple(group)))
    return tuple(sorted(courses, key=_course_order))


def _administrations(m: MedicationEvent, as_of: date) -> list[MedicationEvent]:
    """Single administrations of an infusion record (a 'qw x4' record is four doses)."""
    if m.frequency == "once" or m.frequency not in ("qw", "q2w", "q4w"):
        return [m]
    step = {"qw": 7, "q2w": 14, "q4w": 28}[m.frequency]
    last = min(m.end or as_of, as_of)
    out = []
    day = m.start
    while day <= last:
        out.append(m.model_copy(update={"start": day, "end": None, "frequency": "once"}))
        day += timedelta(days=step)
    return out


def active(timeline: Timeline, drug: str, on: date) -> MedicationEvent | None:
    """The course of `drug` active on `on` (latest started), or None."""
    found = None
    for m in timeline.drugs(drug):
        if m.active_on(on):
            found = m
    return found


def active_therapies(timeline: Timeline, on: date) -> tuple[str, ...]:
    return tuple(sorted({m.drug for m in timeline.medications if m.active_on(on)}))


def on_immunosuppression(timeline: Timeline, on: date) -> bool:
    return any(m.drug in IMMUNOSUPPRESSANTS and m.active_on(on) for m in timeline.medications)


@dataclass(frozen=True)
class CumulativeDose:
    grams: float
    contributions: tuple[tuple[MedicationEvent, float], ...]  # (record, mg counted up to as_of)
    uncounted: tuple[tuple[MedicationEvent, str], ...]  # records that could not be converted, and why


def body_surface_area_m2(weight_kg: float, height_cm: float) -> float:
    """Mosteller: sqrt(height_cm x weight_kg / 3600)."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def administrations_until(m: MedicationEvent, as_of: date) -> float:
    """How many administrations of `m` happened from start to min(end, as_of), inclusive."""
    if m.frequency == "once":
        return 1.0 if m.start <= as_of else 0.0
    last = min(m.end or as_of, as_of)
    if last < m.start:
        return 0.0
    days = (last - m.start).days + 1
    per_day = ADMINISTRATIONS_PER_DAY[m.frequency]
    if per_day >= 1:
        return days * per_day
    # weekly-type schedules: the first dose on start, then one every 1/per_day days
    return float(math.floor((days - 1) * per_day) + 1)


def _dose_mg(m: MedicationEvent, patient: Patient | None) -> tuple[float | None, str | None]:
    if m.dose is None:
        return None, "no dose recorded"
    if m.dose_mg is not None:
        return m.dose_mg, None
    if m.unit == "mg/kg":
        if patient is None or patient.weight_kg is None:
            return None, "dose in mg/kg but no body weight recorded"
        return m.dose * patient.weight_kg, None
    if m.unit == "mg/m2":
        if patient is None or patient.weight_kg is None or patient.height_cm is None:
            return None, "dose in mg/m2 but no weight and height recorded"
        return m.dose * body_surface_area_m2(patient.weight_kg, patient.height_cm), None
    return None, f"dose unit {m.unit} cannot be converted to mg"


def cumulative_dose(timeline: Timeline, drug: str, as_of: date) -> CumulativeDose:
    """Total amount of `drug` given up to as_of (oral days x daily dose + pulses), in grams."""
    total_mg = 0.0
    counted: list[tuple[MedicationEvent, float]] = []
    uncounted: list[tuple[MedicationEvent, str]] = []
    for m in timeline.drugs(drug):
        n = administrations_until(m, as_of)
        if n == 0:
            continue
        mg, why = _dose_mg(m, timeline.patient)
        if mg is None:
            uncounted.append((m, why or "unknown"))
            continue
        counted.append((m, mg * n))
        total_mg += mg * n
    return CumulativeDose(total_mg / 1000.0, tuple(counted), tuple(uncounted))
