"""Rule `immunological_relapse`: anti-PLA2R comes back after treatment had made it negative.

Definition (docs/clinical-rules.md): anti-PLA2R had reached < 14 RU/mL after treatment and is now
>= 20 RU/mL. Severity warning. Resolves when the titer is < 14 again.

Sources: KDIGO 2021 GN guideline ch.3 (immunological remission = anti-PLA2R < 14 RU/mL; the titer
tracks disease activity); seed review (the titer changes months before proteinuria, so its return
announces a clinical relapse).

Interpretations (docs/clinical-rules.md leaves them open):
- "After treatment" = a value dated strictly after the first administration of any
  immunosuppressant (monitor.therapy.IMMUNOSUPPRESSANTS) or anti-CD20 agent: a value drawn on the
  day of the first dose is the pre-treatment baseline, and a titer that was negative before any
  treatment says nothing about a treatment response.
- Hysteresis: the episode opens at the first value >= 20 after a negative value and stays open while
  the titer stays >= 14 (a borderline 14-19.9 value does not close it, since only "< 14 again"
  resolves it, per the table). A value < 14 closes it; a later value >= 20 opens a new episode.
- Episode = date of the first value >= 20 of the open episode, so later positive values update the
  same alert and a reappearance after a new negative value is a new alert.

The anti-PLA2R cut-offs (< 14 negative, >= 20 positive) are defined once, in monitor.trends beside
titer_class, and imported by every rule that reads the titer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from monitor.events import ANTI_CD20, LabResult, MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules._common import shown
from monitor.rules.base import RuleContext
from monitor.therapy import IMMUNOSUPPRESSANTS
from monitor.timeline import SeriesArrays, Timeline
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML, ANTI_PLA2R_POSITIVE_FROM_RU_ML

RULE_ID = "immunological_relapse"
REFERENCE = ("KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular Diseases, ch.3 "
             "(anti-PLA2R < 14 RU/mL = immunological remission); 2023 review of IMN treatment "
             "(titer changes precede proteinuria by months)")

# anti-PLA2R cut-offs (KDIGO21 / Euroimmun ELISA, Mayo PLA2M): ANTI_PLA2R_NEGATIVE_BELOW_RU_ML (< 14
# negative) and ANTI_PLA2R_POSITIVE_FROM_RU_ML (>= 20 positive), imported from monitor.trends above
# drugs whose start makes a later negative titer a treatment response (therapy.py's list + anti-CD20)
TREATMENT_DRUGS = IMMUNOSUPPRESSANTS | ANTI_CD20


@dataclass(frozen=True)
class _Reappearance:
    negative: LabResult  # the last value < 14 before the titer came back
    first_positive: LabResult  # the first value >= 20 after it: the episode
    latest: LabResult


def first_treatment(timeline: Timeline) -> MedicationEvent | None:
    """The first administration of an immunosuppressant or anti-CD20 agent (medications are by start)."""
    return next((m for m in timeline.medications if m.drug in TREATMENT_DRUGS), None)


def _open_reappearance(titers: tuple[LabResult, ...], treated_on: date,
                       arrays: SeriesArrays | None = None) -> _Reappearance | None:
    if arrays is None:
        arrays = SeriesArrays.of(titers)
    treated = treated_on.toordinal()
    negative: LabResult | None = None
    opened: tuple[LabResult, LabResult] | None = None
    # date ordinals and values from the series' arrays (read for every titer of every patient)
    for r, day, value in zip(titers, arrays.days, arrays.values):
        if day <= treated:
            continue  # baseline or earlier: not a response to treatment
        if value < ANTI_PLA2R_NEGATIVE_BELOW_RU_ML:
            negative, opened = r, None  # negative again: any open episode resolves
        elif value >= ANTI_PLA2R_POSITIVE_FROM_RU_ML and negative is not None and opened is None:
            opened = (negative, r)
    if opened is None:
        return None
    return _Reappearance(opened[0], opened[1], titers[-1])


def _message(found: _Reappearance, treatment: MedicationEvent) -> str:
    neg, pos, latest = found.negative, found.first_positive, found.latest
    text = (f"Anti-PLA2R has come back: {shown(pos)} on {pos.effective_date} "
            f"(positive, >= {ANTI_PLA2R_POSITIVE_FROM_RU_ML:g}), after it had fallen to {shown(neg)} "
            f"(negative, < {ANTI_PLA2R_NEGATIVE_BELOW_RU_ML:g}) on {neg.effective_date} following "
            f"{treatment.drug} started {treatment.start}.")
    if latest is not pos:
        text += f" Latest value {shown(latest)} on {latest.effective_date}."
    return (text + " A returning titer usually precedes a proteinuria relapse by months; closer "
            "monitoring of proteinuria and the titer may be worth considering.")


def evaluate(ctx: RuleContext) -> list[Finding]:
    treatment = first_treatment(ctx.timeline)
    titers = ctx.timeline.series("anti_pla2r")
    if treatment is None or not titers:
        return []
    found = _open_reappearance(titers, treatment.start, ctx.timeline.arrays(titers))
    if found is None:
        return []
    evidence = [
        Evidence.of_medication(treatment, note="first immunosuppressive/anti-CD20 treatment"),
        Evidence.of_lab(found.negative, note="negative after treatment"),
        Evidence.of_lab(found.first_positive, note="first positive value again"),
    ]
    if found.latest is not found.first_positive:
        evidence.append(Evidence.of_lab(found.latest, note="latest value"))
    return [ctx.finding(RULE_ID, found.first_positive.effective_date.isoformat(), "warning",
                        _message(found, treatment), evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """No boundary (monitor.validity): the finding reads the titers and the first treatment's start, never
    the date, so only a new event changes it."""
    return None
