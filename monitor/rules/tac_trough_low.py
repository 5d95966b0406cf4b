"""Rule `tac_trough_low`: tacrolimus trough below any regimen's target.

Fires when tacrolimus is active (monitor.therapy.active) on the date of the latest tacrolimus trough
(C0) and at `as_of`, and that trough is < 3 ng/mL (strictly: 3 does not fire).
Resolves with a later trough >= 3 ng/mL, or when tacrolimus is no longer active at `as_of`.

Source: KDIGO 2012 GN guideline ch.7 (CNI levels monitored during treatment; induction targets of
5-10 ng/mL in the tacrolimus trials, lower in maintenance); 3 ng/mL is below the lowest target used
in IMN regimens (docs/clinical-rules.md, "Alert rules").

Reading of "tacrolimus active" (docs/clinical-rules.md says only "tacrolimus active and latest trough"):
the same as csa_trough_low, active on the trough's date and at as_of, so a trough drawn after the
drug was stopped (or before it started) never fires.

Episode: the date of the first trough of the current run of low troughs taken on tacrolimus.
"""

from __future__ import annotations

from datetime import date

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Finding
from monitor.rules._common import certainly_below, drug_run, run_history, shown
from monitor.rules.base import RuleContext
from monitor.validity import active_stops

RULE_ID = "tac_trough_low"
REFERENCE = ("KDIGO 2012 GN guideline ch.7 (monitor CNI levels; tacrolimus induction target 5-10 ng/mL, "
             "lower in maintenance); KDIGO 2021 GN guideline ch.3")

ANALYTE = "tac_trough"
DRUG = "tacrolimus"
# docs/clinical-rules.md / KDIGO12: below any IMN regimen's target (induction 5-10, maintenance >= 3)
TAC_TROUGH_LOW_NG_ML = 3.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {ANALYTE: (TAC_TROUGH_LOW_NG_ML,)}


def _low(r: LabResult) -> bool:
    return certainly_below(r, TAC_TROUGH_LOW_NG_ML)  # '<2' is certainly low; '>2' is not


def _message(run: list[LabResult], course: MedicationEvent) -> str:
    latest = run[-1]
    history = run_history(run, f"It has been below {TAC_TROUGH_LOW_NG_ML:g} ng/mL", "troughs")
    return (
        f"Tacrolimus trough {shown(latest)} on {latest.effective_date.isoformat()} is below "
        f"{TAC_TROUGH_LOW_NG_ML:g} ng/mL during the tacrolimus course started "
        f"{course.start.isoformat()}.{history} This is below the target of any membranous "
        f"nephropathy regimen (KDIGO 2012: induction 5-10 ng/mL), so exposure may be too low to "
        f"induce or hold a remission. Consider reviewing adherence, the timing of the sample (C0) "
        f"and interacting drugs."
    )


def evaluate(ctx: RuleContext) -> list[Finding]:
    # resolves as soon as tacrolimus is no longer active at as_of
    found = drug_run(ctx, DRUG, ANALYTE, _low)
    if found is None:
        return []
    return [ctx.finding(RULE_ID, found.episode_date, "warning", _message(found.run, found.course),
                        found.evidence(ctx, "first low trough of this run"), REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the finding needs tacrolimus active at as_of: it may change the
    day an active record stops."""
    return active_stops(ctx.timeline, (DRUG,), ctx.as_of)
