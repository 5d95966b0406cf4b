"""Rule `cni_trough_high`: calcineurin-inhibitor trough above the range that avoids nephrotoxicity.

Fires, per drug, when the drug is active (monitor.therapy.active) on the date of its latest trough
(C0) and at `as_of`, and that trough is above the upper limit (strictly):
- cyclosporine > 190 ng/mL (seed review: Waldman kept CsA at 125-190 ug/L to avoid nephrotoxicity;
  docs/clinical-rules.md adds a KDIGO 2012 target of 125-175, which could not be checked against the
  guideline text here, so the message quotes only Waldman's range);
- tacrolimus > 10 ng/mL (KDIGO 2012: induction target 5-10 ng/mL).
Resolves with a later trough in range (<= the limit), or when the drug is no longer active.

Reading: docs/clinical-rules.md says "while on the drug"; as for the low-trough rules, the drug must be
active both when the trough was drawn and at as_of (a stopped drug cannot be adjusted).
Episode: "<drug>:<date of the first high trough of the current run>", e.g. "cyclosporine:2025-03-01";
each drug is its own alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Finding
from monitor.rules._common import certainly_above, drug_run, run_history, shown
from monitor.rules.base import RuleContext
from monitor.validity import active_stops

RULE_ID = "cni_trough_high"
REFERENCE = ("Seed review (2023): Waldman kept cyclosporine troughs at 125-190 ug/L to avoid "
             "nephrotoxicity; KDIGO 2012 GN guideline ch.7 (tacrolimus target 5-10 ng/mL, monitor CNI "
             "levels)")

# seed review (Waldman): CsA kept at 125-190 ug/L (= ng/mL) to avoid nephrotoxicity; > 190 fires
CSA_TROUGH_HIGH_NG_ML = 190.0
# KDIGO12: tacrolimus induction target 5-10 ng/mL; > 10 fires
TAC_TROUGH_HIGH_NG_ML = 10.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {"csa_trough": (CSA_TROUGH_HIGH_NG_ML,), "tac_trough": (TAC_TROUGH_HIGH_NG_ML,)}


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


def _message(limit: _Limit, run: list[LabResult], course: MedicationEvent) -> str:
    latest = run[-1]
    history = run_history(run, f"It has been above {limit.upper_ng_ml:g} ng/mL", "troughs")
    return (
        f"{limit.label} trough {shown(latest)} on {latest.effective_date.isoformat()} is above "
        f"{limit.upper_ng_ml:g} ng/mL during the {limit.drug} course started {course.start.isoformat()} "
        f"(target {limit.target}).{history} Troughs above the target range raise the risk of "
        f"calcineurin-inhibitor nephrotoxicity. Consider a repeat trough, a check of serum creatinine "
        f"and a review of the dose and interacting drugs."
    )


def _evaluate_drug(ctx: RuleContext, limit: _Limit) -> Finding | None:
    # '<250' could be 150: only a trough certainly above the limit counts
    found = drug_run(ctx, limit.drug, limit.analyte, lambda r: certainly_above(r, limit.upper_ng_ml))
    if found is None:
        return None
    episode = f"{limit.drug}:{found.episode_date}"
    return ctx.finding(RULE_ID, episode, "warning", _message(limit, found.run, found.course),
                       found.evidence(ctx, "first high trough of this run"), REFERENCE)


def evaluate(ctx: RuleContext) -> list[Finding]:
    return [f for limit in LIMITS if (f := _evaluate_drug(ctx, limit)) is not None]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): each drug's finding needs the drug active at as_of: it may
    change the day an active record stops."""
    return active_stops(ctx.timeline, tuple(limit.drug for limit in LIMITS), ctx.as_of)
