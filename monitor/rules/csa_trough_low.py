"""Rule `csa_trough_low`: cyclosporine trough below the level that protects against relapse.

Fires when cyclosporine is active (monitor.therapy.active) on the date of the latest cyclosporine
trough (C0) and at `as_of`, and that trough is < 100 ng/mL (strictly: 100 does not fire).
Resolves with a later trough >= 100 ng/mL, or when cyclosporine is no longer active at `as_of`.

Source: Cattran DC et al. Kidney Int 2007 (cyclosporine in IMN: relapses were more frequent when the
trough was below 100 ng/mL); the seed review repeats it (docs/clinical-rules.md, "Alert rules").

Episode: the date of the first trough of the current run of low troughs taken on cyclosporine, so a
later, separate run of low troughs is a new alert.
"""

from __future__ import annotations

from datetime import date

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Finding
from monitor.rules._common import certainly_below, drug_run, run_history, shown
from monitor.rules.base import RuleContext
from monitor.validity import active_stops

RULE_ID = "csa_trough_low"
REFERENCE = ("Cattran DC et al. Kidney Int 2007 (relapses more frequent with a cyclosporine trough "
             "< 100 ng/mL); seed review (2023); KDIGO 2012 GN guideline ch.7")

ANALYTE = "csa_trough"
DRUG = "cyclosporine"
# Cattran07: relapses more frequent when C0 < 100 ng/mL; strictly below (100 itself does not fire)
CSA_TROUGH_LOW_NG_ML = 100.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {ANALYTE: (CSA_TROUGH_LOW_NG_ML,)}


def _low(r: LabResult) -> bool:
    return certainly_below(r, CSA_TROUGH_LOW_NG_ML)  # '>95' could be 120: never certainly low


def _message(run: list[LabResult], course: MedicationEvent) -> str:
    latest = run[-1]
    history = run_history(run, f"It has been below {CSA_TROUGH_LOW_NG_ML:g} ng/mL", "troughs")
    return (
        f"Cyclosporine trough {shown(latest)} on {latest.effective_date.isoformat()} is below "
        f"{CSA_TROUGH_LOW_NG_ML:g} ng/mL during the cyclosporine course started "
        f"{course.start.isoformat()}.{history} In membranous nephropathy, relapses were more frequent "
        f"when the trough stayed below {CSA_TROUGH_LOW_NG_ML:g} ng/mL (Cattran 2007). Consider "
        f"reviewing adherence, the timing of the sample (C0, before the morning dose) and "
        f"interacting drugs."
    )


def evaluate(ctx: RuleContext) -> list[Finding]:
    # resolves as soon as cyclosporine is no longer active at as_of
    found = drug_run(ctx, DRUG, ANALYTE, _low)
    if found is None:
        return []
    return [ctx.finding(RULE_ID, found.episode_date, "warning", _message(found.run, found.course),
                        found.evidence(ctx, "first low trough of this run"), REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the finding needs cyclosporine active at as_of: it may change
    the day an active record stops."""
    return active_stops(ctx.timeline, (DRUG,), ctx.as_of)
