"""Rule `albumin_low_thrombosis`: serum albumin low enough for a high risk of thrombosis.

Membranous nephropathy carries the highest risk of venous thromboembolism of the nephrotic
syndromes, and the risk climbs as serum albumin falls. Fires on the latest serum albumin:
- < 20 g/L: critical (seed review: albumin < 20 g/L calls for anticoagulation/antiplatelet therapy);
- 20-24.9 g/L (< 25): warning (KDIGO 2021: consider prophylactic anticoagulation below 25 g/L by
  bromocresol purple, 20 g/L by bromocresol green, when other risk factors are present).
Not raised while thrombosis prophylaxis, an anticoagulant or an antiplatelet agent
(monitor.events.THROMBOPROPHYLAXIS), is active at `as_of`: the seed review accepts either below
20 g/L, and KDIGO 2021 suggests aspirin where the bleeding risk of anticoagulation is high.
Resolves with albumin >= 25 g/L, or when prophylaxis is started. Severity follows the latest value
within one episode (up or down).

Readings where docs/clinical-rules.md leaves room:
- The feed does not say which assay (BCG or BCP) measured the albumin, so the two KDIGO21 cut-offs
  are used as two tiers for every result; the message names the assay dependence.
- An antiplatelet agent suppresses the alert at every albumin, like an anticoagulant: whether
  aspirin is enough for this patient is the clinician's judgement, already made.
- Episode: the date of the first value of the current run of values < 25 g/L. Prophylaxis only
  gates the finding at `as_of`; it does not split the run, so a run that outlasts a stopped
  anticoagulant keeps its original episode date.
"""

from __future__ import annotations

from datetime import date

from monitor.events import THROMBOPROPHYLAXIS, LabResult
from monitor.findings import Finding, Severity
from monitor.rules._common import certainly_below, current_run, run_evidence, run_history, shown
from monitor.rules.base import RuleContext
from monitor.therapy import active
from monitor.validity import active_stops

RULE_ID = "albumin_low_thrombosis"
REFERENCE = ("KDIGO 2021 GN guideline ch.3 (prophylactic anticoagulation below 20-25 g/L by assay, with "
             "other risk factors; aspirin where the bleeding risk is high); seed review (2023): albumin < 20 g/L "
             "calls for anticoagulant or antiplatelet therapy")

ANALYTE = "serum_albumin"
# the drug classes whose activity suppresses the alert, in the order the evidence names them
PROPHYLAXIS = tuple(sorted(THROMBOPROPHYLAXIS))
# KDIGO21: consider prophylactic anticoagulation below 25 g/L (bromocresol purple assay)
ALBUMIN_WARNING_BELOW_G_L = 25.0
# seed review / KDIGO21 (bromocresol green assay): below 20 g/L anticoagulation is indicated
ALBUMIN_CRITICAL_BELOW_G_L = 20.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {ANALYTE: (ALBUMIN_CRITICAL_BELOW_G_L, ALBUMIN_WARNING_BELOW_G_L)}


def _low(r: LabResult) -> bool:
    return certainly_below(r, ALBUMIN_WARNING_BELOW_G_L)  # '>20' could be 30: never certainly low


def _severity(r: LabResult) -> Severity:
    return "critical" if certainly_below(r, ALBUMIN_CRITICAL_BELOW_G_L) else "warning"


def _message(run: list[LabResult], severity: Severity) -> str:
    latest = run[-1]
    history = run_history(run, f"Albumin has been below {ALBUMIN_WARNING_BELOW_G_L:g} g/L", "results")
    if severity == "critical":
        why = (f"Below {ALBUMIN_CRITICAL_BELOW_G_L:g} g/L the risk of venous thrombosis in membranous "
               f"nephropathy is high; the seed review and KDIGO 2021 regard anticoagulation (or "
               f"antiplatelet therapy) as indicated unless the bleeding risk outweighs it.")
    else:
        why = (f"Between {ALBUMIN_CRITICAL_BELOW_G_L:g} and {ALBUMIN_WARNING_BELOW_G_L:g} g/L KDIGO 2021 "
               f"suggests considering prophylactic anticoagulation when other risk factors are present "
               f"(cut-off 25 g/L by bromocresol purple, 20 g/L by bromocresol green).")
    return (
        f"Serum albumin {shown(latest)} on {latest.effective_date.isoformat()} and no anticoagulant or "
        f"antiplatelet agent is recorded as active.{history} {why} Consider assessing thrombotic and "
        f"bleeding risk."
    )


def evaluate(ctx: RuleContext) -> list[Finding]:
    if any(active(ctx.timeline, drug, ctx.as_of) is not None for drug in PROPHYLAXIS):
        return []  # prophylaxis already given: the alert has done its job
    run = current_run(ctx.timeline.series(ANALYTE), _low)
    if not run:
        return []
    severity = _severity(run[-1])
    evidence = run_evidence(run, "first low albumin of this run")
    episode = run[0].effective_date.isoformat()
    return [ctx.finding(RULE_ID, episode, severity, _message(run, severity), evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): active prophylaxis at as_of silences the finding: it may change
    the day an active record stops (a start is a new event)."""
    return active_stops(ctx.timeline, PROPHYLAXIS, ctx.as_of)
