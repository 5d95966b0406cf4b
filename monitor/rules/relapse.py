"""Rule `relapse`: proteinuria is back in the nephrotic range after a partial or complete remission.

Definition (docs/clinical-rules.md): the patient had reached CR or PR, and proteinuria is > 3.5 g/d again.
One value: warning ("possible relapse"). Confirmed (values > 3.5 g/d spanning >= 7 days), or one
value with anti-PLA2R >= 20 RU/mL within 30 days of it: critical. Resolves when a later confirmed
PR/CR follows.

Source: KDIGO 2021 GN guideline ch.3 (relapse after CR/PR: proteinuria > 3.5 g/d again; confirmation
by two values >= 1 week apart); KDIGO 2012 GN guideline ch.7.

The remission/relapse walk itself (thresholds 3.5 g/d, 0.3 g/d, 7 days) is monitor.remission; this
rule reads its open relapse (RemissionHistory.open_relapse). Interpretations:
- A single high value followed by a value <= 3.5 g/d closes the relapse as "not confirmed" in
  remission.py, so the possible-relapse alert resolves then, not only on a confirmed remission.
- "anti-PLA2R >= 20 within 30 days": within 30 days before or after any value of the relapse run,
  and only results known on as_of (the timeline is already cut there).
- Episode = date of the relapse's first value (Relapse.episode), so confirmation escalates the same
  alert rather than raising a second one.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date

from monitor.display import proteinuria_text
from monitor.events import LabResult
from monitor.findings import Evidence, Finding, Severity
from monitor.remission import CONFIRMATION_DAYS, NEPHROTIC_G_PER_DAY, Relapse
from monitor.rules._common import shown
from monitor.rules.base import RuleContext
from monitor.timeline import SeriesArrays
from monitor.trends import ANTI_PLA2R_POSITIVE_FROM_RU_ML

RULE_ID = "relapse"
REFERENCE = ("KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular Diseases, ch.3 "
             "(relapse: proteinuria > 3.5 g/d after CR or PR); KDIGO 2012 GN guideline ch.7")

# KDIGO21: relapse = proteinuria > 3.5 g/d again (the constant lives in monitor.remission)
RELAPSE_ABOVE_G_PER_DAY = NEPHROTIC_G_PER_DAY
# docs/clinical-rules.md (KDIGO21): a positive titer (>= 20 RU/mL) near a single high value makes it critical
SUPPORTING_TITER_MIN_RU_ML = ANTI_PLA2R_POSITIVE_FROM_RU_ML
# docs/clinical-rules.md: the supporting titer must be within 30 days of the high proteinuria
SUPPORTING_TITER_WITHIN_DAYS = 30


def _describe(r: LabResult) -> str:
    # "4.2 g/d (24-h urine)", "4.2 g/d (UPCR in g/g, taken as g/d)", "UPCR 372 mg/mmol (~3.72 g/d)"
    return f"{proteinuria_text(r, (RELAPSE_ABOVE_G_PER_DAY,))} on {r.effective_date}"


def _confirmed(relapse: Relapse) -> bool:
    """KDIGO21 confirmation (values > 3.5 g/d spanning >= 7 days), as monitor.remission found it."""
    return relapse.confirmed_at is not None


def _supporting_titer(relapse: Relapse, titers: tuple[LabResult, ...],
                      arrays: SeriesArrays | None = None) -> LabResult | None:
    """The latest positive anti-PLA2R within 30 days of any value of the relapse run."""
    if arrays is None:
        arrays = SeriesArrays.of(titers)
    # a titer is near the run when the first run day >= its day - 30 is <= its day + 30: a bisection
    # in the run's sorted date ordinals instead of a date difference per (titer, value) pair
    run_days = sorted([v.effective_at.toordinal() for v in relapse.values])
    for t, day, value in zip(reversed(titers), reversed(arrays.days), reversed(arrays.values)):
        if value >= SUPPORTING_TITER_MIN_RU_ML:
            k = bisect_left(run_days, day - SUPPORTING_TITER_WITHIN_DAYS)
            if k < len(run_days) and run_days[k] <= day + SUPPORTING_TITER_WITHIN_DAYS:
                return t  # scanned from the end: the latest one
    return None


def _message(relapse: Relapse, titer: LabResult | None) -> str:
    after = relapse.after
    remission = f"{after.kind} remission confirmed on {after.confirmed_at}"
    first, last = relapse.values[0], relapse.values[-1]
    if _confirmed(relapse):
        text = (f"Relapse confirmed: proteinuria above {RELAPSE_ABOVE_G_PER_DAY:g} g/d on "
                f"{len(relapse.values)} values from {first.effective_date} to {last.effective_date} "
                f"(first {_describe(first)}, latest {_describe(last)}), after {remission}.")
    else:
        text = (f"Possible relapse: proteinuria {_describe(last)}, above {RELAPSE_ABOVE_G_PER_DAY:g} g/d, "
                f"after {remission}. Not yet confirmed: a second value above {RELAPSE_ABOVE_G_PER_DAY:g} g/d "
                f"at least {CONFIRMATION_DAYS} days after the first would confirm it.")
    if titer is not None:
        text += (f" Anti-PLA2R {shown(titer)} on {titer.effective_date} (positive, within "
                 f"{SUPPORTING_TITER_WITHIN_DAYS} days) supports renewed immunological activity.")
    return text + " A relapse may call for a review of the treatment plan."


def evaluate(ctx: RuleContext) -> list[Finding]:
    relapse = ctx.remission.open_relapse
    if relapse is None:
        return []
    titers = ctx.timeline.series("anti_pla2r")
    titer = _supporting_titer(relapse, titers, ctx.timeline.arrays(titers))
    severity: Severity = "critical" if _confirmed(relapse) or titer is not None else "warning"
    evidence = [Evidence.of_lab(r, note=f"{relapse.after.kind} remission") for r in relapse.after.evidence]
    evidence += [Evidence.of_lab(r, note=f"> {RELAPSE_ABOVE_G_PER_DAY:g} g/d") for r in relapse.values]
    if titer is not None:
        evidence.append(Evidence.of_lab(titer, note=f"positive within {SUPPORTING_TITER_WITHIN_DAYS} days"))
    return [ctx.finding(RULE_ID, relapse.episode, severity, _message(relapse, titer), evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """No boundary (monitor.validity): the finding reads the remission walk and titers, never the date, so only a new
    result changes it."""
    return None
