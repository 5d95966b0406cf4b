"""Helpers the rules share: censored results, the current run of latest values, drug-level runs,
and how a value is shown in a message (through monitor.display). No thresholds live here: each rule
passes its own, and declares in DISPLAY_LIMITS the ones a shown value must stay beside.

Censored results: a lab may report a bound ("<2", ">250") instead of a value; `value` then holds the
bound and `comparator` says which way the true value lies. A bounded result only meets a limit when
every value it allows does ("<2" is certainly below 3; ">95" is not certainly below 100).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monitor.display import lab_text, number
from monitor.events import LabResult, MedicationEvent
from monitor.findings import Evidence
from monitor.rules.base import RuleContext
from monitor.therapy import active


def may_be_higher(r: LabResult) -> bool:
    """The true value may be above the reported one ('>60', '>=60')."""
    return r.comparator in (">", ">=")


def may_be_lower(r: LabResult) -> bool:
    """The true value may be below the reported one ('<50', '<=50')."""
    return r.comparator in ("<", "<=")


def certainly_below(r: LabResult, limit: float) -> bool:
    """True only when the true value is known to be below `limit` ('<2' is below 2; '>20' could be 30)."""
    if may_be_higher(r):
        return False
    return r.value <= limit if r.comparator == "<" else r.value < limit


def certainly_above(r: LabResult, limit: float) -> bool:
    """True only when the true value is known to be above `limit` ('>10' is above 10; '<250' could be 150)."""
    if may_be_lower(r):
        return False
    return r.value >= limit if r.comparator == ">" else r.value > limit


def current_run(series: Sequence[LabResult], meets: Callable[[LabResult], bool]) -> list[LabResult]:
    """The latest values back to the first of the unbroken run that meets the condition, oldest first
    (empty when the latest value does not). Rules use run[0] as the episode: a later, separate run is
    a new alert."""
    run: list[LabResult] = []
    for r in reversed(series):
        if not meets(r):
            break
        run.append(r)
    return run[::-1]


def run_history(run: Sequence[LabResult], state: str, noun: str) -> str:
    """' <state> in <n> consecutive <noun> since <date of run[0]>.' for a run of more than one value."""
    if len(run) < 2:
        return ""
    return f" {state} in {len(run)} consecutive {noun} since {run[0].effective_date.isoformat()}."


def run_evidence(run: Sequence[LabResult], first_note: str) -> list[Evidence]:
    """Every value of the run; the first one noted as such when the run holds more than one."""
    return [Evidence.of_lab(r, note=first_note if i == 0 and len(run) > 1 else None)
            for i, r in enumerate(run)]


@dataclass(frozen=True)
class DrugRun:
    """A current run of drug levels (troughs) meeting a condition, every one taken on the drug."""

    run: list[LabResult]
    course: MedicationEvent  # the course active when the latest level was drawn
    on_now: MedicationEvent  # the course active at as_of (the same one, unless re-started)

    @property
    def episode_date(self) -> str:
        return self.run[0].effective_date.isoformat()

    def evidence(self, ctx: RuleContext, first_note: str) -> list[Evidence]:
        evidence = run_evidence(self.run, first_note)
        evidence.append(Evidence.of_medication(self.course))
        if self.on_now.identity != self.course.identity:
            # "now", not "on <as_of>": evidence that stays the same from day to day (valid_until)
            evidence.append(Evidence.of_medication(self.on_now, note="course active now"))
        return evidence


def drug_run(ctx: RuleContext, drug: str, analyte: str, meets: Callable[[LabResult], bool]) -> DrugRun | None:
    """The current run of `analyte` values meeting the condition and drawn while `drug` was active
    (monitor.therapy.active), when the drug is still active at as_of; else None (so the alert resolves
    as soon as the drug is stopped)."""
    on_now = active(ctx.timeline, drug, ctx.as_of)
    if on_now is None:
        return None  # decided without the run (most patients are not on the drug at as_of)
    courses = ctx.timeline.drugs(drug)
    run = current_run(ctx.timeline.series(analyte),
                      lambda r: any(m.active_on(r.effective_date) for m in courses) and meets(r))
    if not run:
        return None
    course = active(ctx.timeline, drug, run[-1].effective_date)
    if course is None:  # cannot happen: the run holds only values taken on the drug
        return None
    return DrugRun(run, course, on_now)


def num(v: float, digits: int = 2, limits: Iterable[float] = ()) -> str:
    """A derived number (a percentage, a baseline, a dose) for a message: `digits` decimals, more when
    rounding would move it onto or across one of `limits` (monitor.display.number)."""
    return number(v, digits, limits)


def shown(r: LabResult, *limits: float) -> str:
    """A result for a message: comparator, value at the lab's precision, unit, and the value as
    reported when it was converted (monitor.display.lab_text). The value stays on its side of
    `limits` and of every decision limit of its analyte: a CsA trough of 99.95 ng/mL never reads
    "100 ng/mL" in an alert that says "below 100"."""
    return lab_text(r, limits)
