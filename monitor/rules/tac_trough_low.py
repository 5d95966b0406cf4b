"""Rule `tac_trough_low`: tacrolimus trough below any regimen's target.

Fires when tacrolimus is active (monitor.therapy.active) on the date of the latest tacrolimus trough
(C0) and at `as_of`, and that trough is < 3 ng/mL (strictly: 3 does not fire).
Resolves with a later trough >= 3 ng/mL, or when tacrolimus is no longer active at `as_of`.

Source: KDIGO 2012 GN guideline ch.7 (CNI levels monitored during treatment; induction targets of
5-10 ng/mL in the tacrolimus trials, lower in maintenance); 3 ng/mL is below the lowest target used
in IMN regimens (clinical-rules.md, "Alert rules").

Reading of "tacrolimus active" (clinical-rules.md says only "tacrolimus active and latest trough"):
the same as csa_trough_low, active on the trough's date and at as_of, so a trough drawn after the
drug was stopped (or before it started) never fires.

Episode: the date of the first trough of the current run of low troughs taken on tacrolimus.
"""

from __future__ import annotations

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules.base import RuleContext
from monitor.therapy import active

RULE_ID = "tac_trough_low"
REFERENCE = ("KDIGO 2012 GN guideline ch.7 (monitor CNI levels; tacrolimus induction target 5-10 ng/mL, "
             "lower in maintenance); KDIGO 2021 GN guideline ch.3")

ANALYTE = "tac_trough"
DRUG = "tacrolimus"
# clinical-rules.md / KDIGO12: below any IMN regimen's target (induction 5-10, maintenance >= 3)
TAC_TROUGH_LOW_NG_ML = 3.0


def _certainly_below(r: LabResult, threshold: float) -> bool:
    """True only when the true value is known to be below `threshold` ('<2' is; '>2' is not)."""
    if r.comparator in (">", ">="):
        return False
    return r.value <= threshold if r.comparator == "<" else r.value < threshold


def _current_run(series: tuple[LabResult, ...], courses: tuple[MedicationEvent, ...]) -> list[LabResult]:
    """The latest troughs back to the first of the unbroken run that is low and taken on the drug."""
    run: list[LabResult] = []
    for r in reversed(series):
        on_drug = any(m.active_on(r.effective_date) for m in courses)
        if not (on_drug and _certainly_below(r, TAC_TROUGH_LOW_NG_ML)):
            break
        run.append(r)
    return run[::-1]


def _num(v: float) -> str:
    return f"{round(v, 2):g}"


def _shown(r: LabResult) -> str:
    text = f"{r.comparator or ''}{_num(r.value)} {r.unit}"
    if r.reported_value is not None and r.reported_unit is not None:
        text += f" ({r.reported_value:g} {r.reported_unit})"
    return text


def _message(run: list[LabResult], course: MedicationEvent) -> str:
    latest = run[-1]
    history = ""
    if len(run) > 1:
        history = (f" It has been below {TAC_TROUGH_LOW_NG_ML:g} ng/mL in {len(run)} consecutive "
                   f"troughs since {run[0].effective_date.isoformat()}.")
    return (
        f"Tacrolimus trough {_shown(latest)} on {latest.effective_date.isoformat()} is below "
        f"{TAC_TROUGH_LOW_NG_ML:g} ng/mL during the tacrolimus course started "
        f"{course.start.isoformat()}.{history} This is below the target of any membranous "
        f"nephropathy regimen (KDIGO 2012: induction 5-10 ng/mL), so exposure may be too low to "
        f"induce or hold a remission. Consider reviewing adherence, the timing of the sample (C0) "
        f"and interacting drugs."
    )


def evaluate(ctx: RuleContext) -> list[Finding]:
    on_now = active(ctx.timeline, DRUG, ctx.as_of)
    run = _current_run(ctx.timeline.series(ANALYTE), ctx.timeline.drugs(DRUG))
    if on_now is None or not run:
        return []
    latest = run[-1]
    course = active(ctx.timeline, DRUG, latest.effective_date)
    if course is None:  # cannot happen: the run holds only troughs taken on the drug
        return []
    evidence = [Evidence.of_lab(r, note="first low trough of this run" if i == 0 and len(run) > 1 else None)
                for i, r in enumerate(run)]
    evidence.append(Evidence.of_medication(course))
    if on_now.identity != course.identity:
        evidence.append(Evidence.of_medication(on_now, note=f"course active on {ctx.as_of.isoformat()}"))
    episode = run[0].effective_date.isoformat()
    return [ctx.finding(RULE_ID, episode, "warning", _message(run, course), evidence, REFERENCE)]
