"""Treatment courses: one line of treatment with one regimen, the unit of outcome analysis.

This is the one place that says what a "course" of each regimen is, when it starts (time zero) and
which course is the patient's *current* one. Two readers use it: the anti-PLA2R kinetics
(monitor.kinetics: the titers since the start of the current course) and the clinic outcome report
(monitor.outcomes: remission, relapse and immunological remission per course).

It is not monitor.therapy's anti-CD20 course, which the rules use: there, infusions within 30 days
form one *infusion series* (MENTOR's 1 g x2), and a repeat at 6 months is a series of its own (it
starts a new rtx_non_response episode). Here a treatment course is a line of treatment: MENTOR's
repeat at 6 months and an extra infusion for incomplete B-cell depletion belong to the course they
complete, so that one treatment decision is counted once.

Definitions (every course ends at its last day of exposure; an open-ended record runs to as_of):
- anti-CD20: consecutive infusion series (monitor.therapy.anti_cd20_courses) of one agent, each
  starting within 183 days (6 months) of the previous series' last dose, or by day 240 after the
  course's first dose (MENTOR re-dosed partial responders at 6 months; rtx_redose_due asks for that
  repeat until day 240). A different agent (e.g. obinutuzumab after rituximab failure, seed review) or a series
  more than 6 months after the last dose (re-treatment of a relapse) starts a new course.
- cyclosporine, tacrolimus, mycophenolate, ACTH, belimumab: a course of that drug as
  monitor.therapy.therapy_courses merges its records (the rules' definition: a dose change or a break
  of up to THERAPY_COURSE_GAP_DAYS = 60 days continues it).
- cyclophosphamide-based (alkylating agent +/- glucocorticoid): a cyclophosphamide or chlorambucil
  course, merged the same way; a glucocorticoid record starting in the 60 days before its first dose
  opens the course (the modified Ponticelli regimen begins with a steroid month).
- glucocorticoid alone: glucocorticoid records that are not part of another course (those starting
  within [start - 60 days, end + 30 days] of another immunosuppressive course are its adjunct,
  e.g. low-dose prednisone with cyclosporine, Cattran 2007), merged the same way.
- supportive care only: the time from the patient's first proteinuria result (else first result)
  to the start of the first immunosuppressive course, or to as_of. Not a TreatmentCourse (nothing
  is given), but a phase every patient may contribute; see supportive_phase().

Time zero of a course is its first day of exposure. The *current* course on a date is the latest
course started on or before that date (current_course()).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from monitor.events import ANTI_CD20, MedicationEvent
from monitor.rules.rtx_redose_due import WINDOW_TO_DAYS
from monitor.therapy import TherapyCourse, anti_cd20_courses, therapy_courses
from monitor.timeline import Timeline

# MENTOR (Fervenza NEJM 2019): rituximab was repeated at 6 months in partial responders: the same line
ANTI_CD20_SAME_COURSE_WITHIN_DAYS = 183
# ... and that repeat is looked for until day 240 after the first dose (rtx_redose_due's window)
MENTOR_REPEAT_BY_DAY = WINDOW_TO_DAYS
# modified Ponticelli (Ponticelli JASN 1998; KDIGO21): months 1/3/5 steroids, 2/4/6 cyclophosphamide
STEROID_LEAD_IN_DAYS = 60
# a glucocorticoid started this long after a course ends is still its taper, not a course of its own
ADJUNCT_AFTER_DAYS = 30

ALKYLATING = frozenset({"cyclophosphamide", "chlorambucil"})


@dataclass(frozen=True)
class Regimen:
    key: str
    label: str
    drugs: frozenset[str]
    definition: str  # in plain words, shown in the outcome report


SUPPORTIVE = "supportive"
# the report's order; one registry of regimens (a new one is added here and in _build)
REGIMENS: dict[str, Regimen] = {r.key: r for r in (
    Regimen("anti_cd20", "anti-CD20 (rituximab and others)", ANTI_CD20,
            "infusion series of one anti-CD20 agent, each within 6 months of the previous series' last "
            "dose or by day 240 of the course (MENTOR's repeat); another agent, or a later series, is a "
            "new course"),
    Regimen("cyclosporine", "cyclosporine", frozenset({"cyclosporine"}),
            "cyclosporine records, a dose change or a break of up to 60 days continuing the course"),
    Regimen("tacrolimus", "tacrolimus", frozenset({"tacrolimus"}),
            "tacrolimus records, a dose change or a break of up to 60 days continuing the course"),
    Regimen("cyclophosphamide", "cyclophosphamide-based (alkylating agent +/- steroid)", ALKYLATING,
            "cyclophosphamide or chlorambucil records (a break of up to 60 days continues), opened by a "
            "glucocorticoid started up to 60 days before the first dose (modified Ponticelli)"),
    Regimen("mycophenolate", "mycophenolate", frozenset({"mycophenolate"}),
            "mycophenolate records, a dose change or a break of up to 60 days continuing the course"),
    Regimen("acth", "ACTH", frozenset({"acth"}),
            "ACTH records, a dose change or a break of up to 60 days continuing the course"),
    Regimen("belimumab", "belimumab", frozenset({"belimumab"}),
            "belimumab records, a dose change or a break of up to 60 days continuing the course"),
    Regimen("glucocorticoid", "glucocorticoid alone", frozenset({"glucocorticoid"}),
            "glucocorticoid records not given with another immunosuppressive course"),
    Regimen(SUPPORTIVE, "supportive care only", frozenset(),
            "from the first proteinuria result to the first immunosuppressive course (or as_of)"),
)}


_REGIMEN_ORDER = {k: i for i, k in enumerate(REGIMENS)}
_COURSE_DRUGS = frozenset().union(*(r.drugs for r in REGIMENS.values()))


@dataclass(frozen=True)
class TreatmentCourse:
    regimen: str
    start: date  # time zero: the first day of exposure
    last_exposure: date  # the last day of exposure up to as_of (as_of for an open-ended record)
    ongoing: bool  # an open-ended record, or exposure reaching as_of
    agents: tuple[str, ...]  # the drugs given, in order of first use
    records: tuple[MedicationEvent, ...] = ()


def _from_therapy(regimen: str, c: TherapyCourse, as_of: date, start: date | None = None,
                  lead: tuple[str, ...] = ()) -> TreatmentCourse:
    """A course of one drug as monitor.therapy.therapy_courses merges its records (dose changes and
    breaks of up to THERAPY_COURSE_GAP_DAYS), as a treatment course of `regimen`."""
    last = min(c.end, as_of) if c.end is not None else as_of
    return TreatmentCourse(regimen, start or c.start, last, c.end is None or c.end >= as_of, lead + (c.drug,),
                           c.records)


def _course(regimen: str, records: list[MedicationEvent], end: date, as_of: date) -> TreatmentCourse:
    agents = tuple(dict.fromkeys(m.drug for m in records))
    return TreatmentCourse(regimen, records[0].start, end, end >= as_of, agents, tuple(records))


def _anti_cd20(timeline: Timeline, as_of: date) -> list[TreatmentCourse]:
    out: list[TreatmentCourse] = []
    doses: list[MedicationEvent] = []
    agent = ""
    for series in anti_cd20_courses(timeline, as_of):  # ordered by first dose
        repeat = (doses and (series.first_dose - doses[-1].start).days <= ANTI_CD20_SAME_COURSE_WITHIN_DAYS
                  or doses and (series.first_dose - doses[0].start).days <= MENTOR_REPEAT_BY_DAY)
        if doses and (series.agent != agent or not repeat):
            out.append(_course("anti_cd20", doses, doses[-1].start, as_of))
            doses = []
        agent = series.agent
        doses.extend(series.doses)
    if doses:
        out.append(_course("anti_cd20", doses, doses[-1].start, as_of))
    return out


def _alkylating(timeline: Timeline, as_of: date) -> list[TreatmentCourse]:
    steroids = timeline.drugs("glucocorticoid")
    out = []
    for drug in sorted(ALKYLATING):
        for c in therapy_courses(timeline, drug):
            lead = [g.start for g in steroids if c.start - timedelta(days=STEROID_LEAD_IN_DAYS) <= g.start < c.start]
            out.append(_from_therapy("cyclophosphamide", c, as_of, min(lead, default=c.start),
                                     ("glucocorticoid",) if lead else ()))
    return out


def treatment_courses(timeline: Timeline, as_of: date) -> tuple[TreatmentCourse, ...]:
    """Every immunosuppressive course started on or before as_of, ordered by start (then regimen
    order). Supportive care is not among them (see supportive_phase)."""
    given = {m.drug for m in timeline.medications}
    if given.isdisjoint(_COURSE_DRUGS):
        return ()  # most patients, every night (assess() stores course outcomes): no scan per regimen
    timeline = timeline.until(as_of)  # therapy_courses reads a cut timeline (a no-op when it is one)
    courses: list[TreatmentCourse] = []
    if not given.isdisjoint(ANTI_CD20):
        courses += _anti_cd20(timeline, as_of)
    for key in ("cyclosporine", "tacrolimus", "mycophenolate", "acth", "belimumab"):
        if key in given:
            courses += [_from_therapy(key, c, as_of) for c in therapy_courses(timeline, key)]
    if not given.isdisjoint(ALKYLATING):
        courses += _alkylating(timeline, as_of)
    if "glucocorticoid" not in given:
        return _ordered(courses)
    adjunct_windows = [(c.start - timedelta(days=STEROID_LEAD_IN_DAYS),
                        c.last_exposure + timedelta(days=ADJUNCT_AFTER_DAYS)) for c in courses]
    courses += [_from_therapy("glucocorticoid", g, as_of) for g in therapy_courses(timeline, "glucocorticoid")
                if not any(lo <= g.start <= hi for lo, hi in adjunct_windows)]
    return _ordered(courses)


def _ordered(courses: list[TreatmentCourse]) -> tuple[TreatmentCourse, ...]:
    return tuple(sorted(courses, key=lambda c: (c.start, _REGIMEN_ORDER[c.regimen])))


def current_course(timeline: Timeline, as_of: date) -> TreatmentCourse | None:
    """The latest immunosuppressive course started on or before as_of (None: supportive care only)."""
    courses = treatment_courses(timeline.until(as_of), as_of)
    return courses[-1] if courses else None


@dataclass(frozen=True)
class SupportivePhase:
    start: date  # the first proteinuria result (else the first result)
    end: date  # the first immunosuppressive course's start, or as_of
    ended_by_treatment: bool


def supportive_phase(timeline: Timeline, as_of: date,
                     courses: tuple[TreatmentCourse, ...] | None = None) -> SupportivePhase | None:
    """The patient's time on supportive care only, before any immunosuppression (None: treated from
    the first result on, or no result at all)."""
    proteinuria = timeline.proteinuria()
    first = proteinuria[0] if proteinuria else (timeline.labs[0] if timeline.labs else None)
    if first is None or first.effective_date > as_of:
        return None
    start = first.effective_date
    courses = treatment_courses(timeline, as_of) if courses is None else courses
    treated = courses[0].start if courses else None
    if treated is not None and treated <= start:
        return None
    return SupportivePhase(start, treated or as_of, treated is not None)
