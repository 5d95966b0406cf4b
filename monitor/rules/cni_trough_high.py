"""Rule `cni_trough_high`: calcineurin-inhibitor trough above the range that avoids nephrotoxicity.

Fires, per drug, when the drug is active (monitor.therapy.active) on the date of its latest trough
(C0) and at `as_of`, and that trough is above the upper limit (strictly):
- cyclosporine > 190 ng/mL (seed review: Waldman kept CsA at 125-190 ug/L to avoid nephrotoxicity;
  clinical-rules.md adds a KDIGO 2012 target of 125-175, which could not be checked against the
  guideline text here, so the message quotes only Waldman's range);
- tacrolimus > 10 ng/mL (KDIGO 2012: induction target 5-10 ng/mL).
Resolves with a later trough in range (<= the limit), or when the drug is no longer active.

Reading: clinical-rules.md says "while on the drug"; as for the low-trough rules, the drug must be
active both when the trough was drawn and at as_of (a stopped drug cannot be adjusted).
Episode: "<drug>:<date of the first high trough of the current run>", e.g. "cyclosporine:2025-03-01";
each drug is its own alert.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules.base import RuleContext
from monitor.therapy import active

RULE_ID = "cni_trough_high"
REFERENCE = ("Seed review (2023): Waldman kept cyclosporine troughs at 125-190 ug/L to avoid "
             "nephrotoxicity; KDIGO 2012 GN guideline ch.7 (tacrolimus target 5-10 ng/mL, monitor CNI "
             "levels)")

# seed review (Waldman): CsA kept at 125-190 ug/L (= ng/mL) to avoid nephrotoxicity; > 190 fires
CSA_TROUGH_HIGH_NG_ML = 190.0
# KDIGO12: tacrolimus induction target 5-10 ng/mL; > 10 fires
TAC_TROUGH_HIGH_NG_ML = 10.0


@dataclass(frozen=True)
class _Limit:
    drug: str
    analyte: str
    label: str
    upper_ng_ml: float
    target: str  # the target range quoted in the message


LIMITS: tuple[_Limit, ...] = (
    _Limit("cyclosporine", "csa_trough", "Cyclosporine", CSA_TROUGH_HIGH_NG_ML,
           "125-190 ng/mL, as kept by Waldman to avoid nephrotoxicity"),
    _Limit("tacrolimus", "tac_trough", "Tacrolimus", TAC_TROUGH_HIGH_NG_ML,
           "5-10 ng/mL during induction (KDIGO 2012)"),
)


def _certainly_above(r: LabResult, threshold: float) -> bool:
    """True only when the true value is known to be above `threshold` ('<250' could be 150)."""
    if r.comparator in ("<", "<="):
        return False
    return r.value >= threshold if r.comparator == ">" else r.value > threshold


def _current_run(series: tuple[LabResult, ...], courses: tuple[MedicationEvent, ...],
                 limit: float) -> list[LabResult]:
    """The latest troughs back to the first of the unbroken run that is high and taken on the drug."""
    run: list[LabResult] = []
    for r in reversed(series):
        on_drug = any(m.active_on(r.effective_date) for m in courses)
        if not (on_drug and _certainly_above(r, limit)):
            break
        run.append(r)
    return run[::-1]


def _num(v: float) -> str:
    # two decimals keep 190.004 from being shown as "190" beside a limit of 190
    return f"{round(v, 2):g}"


def _shown(r: LabResult) -> str:
    text = f"{r.comparator or ''}{_num(r.value)} {r.unit}"
    if r.reported_value is not None and r.reported_unit is not None:
        text += f" ({r.reported_value:g} {r.reported_unit})"
    return text


def _message(limit: _Limit, run: list[LabResult], course: MedicationEvent) -> str:
    latest = run[-1]
    history = ""
    if len(run) > 1:
        history = (f" It has been above {limit.upper_ng_ml:g} ng/mL in {len(run)} consecutive troughs "
                   f"since {run[0].effective_date.isoformat()}.")
    return (
        f"{limit.label} trough {_shown(latest)} on {latest.effective_date.isoformat()} is above "
        f"{limit.upper_ng_ml:g} ng/mL during the {limit.drug} course started {course.start.isoformat()} "
        f"(target {limit.target}).{history} Troughs above the target range raise the risk of "
        f"calcineurin-inhibitor nephrotoxicity. Consider a repeat trough, a check of serum creatinine "
        f"and a review of the dose and interacting drugs."
    )


def _evaluate_drug(ctx: RuleContext, limit: _Limit) -> Finding | None:
    on_now = active(ctx.timeline, limit.drug, ctx.as_of)
    run = _current_run(ctx.timeline.series(limit.analyte), ctx.timeline.drugs(limit.drug), limit.upper_ng_ml)
    if on_now is None or not run:
        return None
    course = active(ctx.timeline, limit.drug, run[-1].effective_date)
    if course is None:  # cannot happen: the run holds only troughs taken on the drug
        return None
    evidence = [Evidence.of_lab(r, note="first high trough of this run" if i == 0 and len(run) > 1 else None)
                for i, r in enumerate(run)]
    evidence.append(Evidence.of_medication(course))
    if on_now.identity != course.identity:
        evidence.append(Evidence.of_medication(on_now, note=f"course active on {ctx.as_of.isoformat()}"))
    episode = f"{limit.drug}:{run[0].effective_date.isoformat()}"
    return ctx.finding(RULE_ID, episode, "warning", _message(limit, run, course), evidence, REFERENCE)


def evaluate(ctx: RuleContext) -> list[Finding]:
    return [f for limit in LIMITS if (f := _evaluate_drug(ctx, limit)) is not None]
