"""Rule `csa_trough_low`: cyclosporine trough below the level that protects against relapse.

Fires when cyclosporine is active (monitor.therapy.active) on the date of the latest cyclosporine
trough (C0) and at `as_of`, and that trough is < 100 ng/mL (strictly: 100 does not fire).
Resolves with a later trough >= 100 ng/mL, or when cyclosporine is no longer active at `as_of`.

Source: Cattran DC et al. Kidney Int 2007 (cyclosporine in IMN: relapses were more frequent when the
trough was below 100 ng/mL); the seed review repeats it (clinical-rules.md, "Alert rules").

Episode: the date of the first trough of the current run of low troughs taken on cyclosporine, so a
later, separate run of low troughs is a new alert.
"""

from __future__ import annotations

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules.base import RuleContext
from monitor.therapy import active

RULE_ID = "csa_trough_low"
REFERENCE = ("Cattran DC et al. Kidney Int 2007 (relapses more frequent with a cyclosporine trough "
             "< 100 ng/mL); seed review (2023); KDIGO 2012 GN guideline ch.7")

ANALYTE = "csa_trough"
DRUG = "cyclosporine"
# Cattran07: relapses more frequent when C0 < 100 ng/mL; strictly below (100 itself does not fire)
CSA_TROUGH_LOW_NG_ML = 100.0


def _certainly_below(r: LabResult, threshold: float) -> bool:
    """True only when the true value is known to be below `threshold` ('>95' could be 120)."""
    if r.comparator in (">", ">="):
        return False
    return r.value <= threshold if r.comparator == "<" else r.value < threshold


def _current_run(series: tuple[LabResult, ...], courses: tuple[MedicationEvent, ...]) -> list[LabResult]:
    """The latest troughs back to the first of the unbroken run that is low and taken on the drug."""
    run: list[LabResult] = []
    for r in reversed(series):
        on_drug = any(m.active_on(r.effective_date) for m in courses)
        if not (on_drug and _certainly_below(r, CSA_TROUGH_LOW_NG_ML)):
            break
        run.append(r)
    return run[::-1]


def _num(v: float) -> str:
    # two decimals keep 99.95 from being shown as "100" beside a threshold of 100
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
        history = (f" It has been below {CSA_TROUGH_LOW_NG_ML:g} ng/mL in {len(run)} consecutive "
                   f"troughs since {run[0].effective_date.isoformat()}.")
    return (
        f"Cyclosporine trough {_shown(latest)} on {latest.effective_date.isoformat()} is below "
        f"{CSA_TROUGH_LOW_NG_ML:g} ng/mL during the cyclosporine course started "
        f"{course.start.isoformat()}.{history} In membranous nephropathy, relapses were more frequent "
        f"when the trough stayed below {CSA_TROUGH_LOW_NG_ML:g} ng/mL (Cattran 2007). Consider "
        f"reviewing adherence, the timing of the sample (C0, before the morning dose) and "
        f"interacting drugs."
    )


def evaluate(ctx: RuleContext) -> list[Finding]:
    # resolves as soon as cyclosporine is no longer active at as_of
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
