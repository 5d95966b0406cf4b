"""KDIGO 2021 risk category of progressive loss of kidney function in membranous nephropathy.

KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular Diseases, chapter 3, figure
"Clinical criteria for assessing risk of progressive loss of kidney function" (docs/clinical-rules.md,
"Risk category"):
- low: normal eGFR, proteinuria < 3.5 g/d and serum albumin > 30 g/L; or normal eGFR, proteinuria
  < 3.5 g/d or a decrease > 50% after 6 months of conservative therapy with ACEi/ARB;
- moderate: normal eGFR, proteinuria > 3.5 g/d and no decrease > 50% after 6 months of ACEi/ARB,
  not meeting the high-risk criteria;
- high: eGFR < 60 and/or proteinuria > 8 g/d for > 6 months; or normal eGFR, proteinuria > 3.5 g/d
  and no decrease > 50% after 6 months of ACEi/ARB and at least one of: serum albumin < 25 g/L,
  anti-PLA2R > 50 RU/mL (the figure's urinary alpha1-/beta2-microglobulin, IgG and selectivity index
  markers are not in our analyte catalogue);
- very high: life-threatening nephrotic syndrome, or rapid deterioration of kidney function not
  otherwise explained.
Anti-PLA2R > 150 RU/mL is reported beside the category as a marker of very high activity.

Interpretations (where the figure leaves room; see also each helper):
- "Decrease > 50%" is strict, as KDIGO writes it for every line (docs/clinical-rules.md says ">= 50%" in
  the high line; the source wins). It compares the latest proteinuria measured >= 6 months into the
  current ACEi/ARB exposure with the value at its start.
- Before 6 months of ACEi/ARB (or with none recorded) the response cannot be judged: nephrotic
  proteinuria is then taken as "not decreased" (the category a clinician would use at diagnosis) and
  the reasons say so. The same for sub-nephrotic proteinuria: low, with the caveat when albumin is
  not > 30 g/L and the 6 months are not complete.
- Proteinuria exactly 3.5 g/d counts as nephrotic (>= 3.5, as in remission.py), so it is never low.
- "Normal eGFR" = latest eGFR >= 60. Without any eGFR only the categories that do not depend on it
  (high through proteinuria > 8 g/d for > 6 months or a high-risk marker, since either eGFR < 60 or
  normal eGFR + marker gives high) are given; otherwise the category is unknown and the reasons say
  which number is missing.
- Life-threatening nephrotic syndrome is NOT assessed: KDIGO 2021 gives no laboratory definition of
  it (it is a clinical judgement: e.g. refractory anasarca, thrombosis, acute kidney injury), and we
  found no source that defines it with numbers. Rapid deterioration is assessed as the brief defines
  it: an eGFR fall >= 25% within 3 months (see rapid_egfr_fall).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal, Sequence

from monitor.display import lab_text, number, proteinuria_text, value_text
from monitor.events import LabResult, MedicationEvent
from monitor.remission import NEPHROTIC_G_PER_DAY
from monitor.timeline import SeriesArrays

if TYPE_CHECKING:
    from monitor.rules.base import RuleContext

Category = Literal["unknown", "low", "moderate", "high", "very_high"]

# KDIGO21 risk figure: "normal eGFR" is read as >= 60 mL/min/1.73 m2 (CKD G1-G2), high risk < 60
NORMAL_EGFR_MIN = 60.0
# KDIGO21: low risk needs serum albumin > 30 g/L (with proteinuria < 3.5 g/d)
LOW_RISK_ALBUMIN_ABOVE_G_L = 30.0
# KDIGO21: high risk markers: serum albumin < 25 g/L, anti-PLA2R > 50 RU/mL
HIGH_RISK_ALBUMIN_BELOW_G_L = 25.0
HIGH_RISK_PLA2R_ABOVE_RU_ML = 50.0
# KDIGO21: high risk with proteinuria > 8 g/d for > 6 months
HIGH_RISK_PROTEINURIA_ABOVE_G_PER_DAY = 8.0
SIX_MONTHS_DAYS = 183  # "6 months" in days, as in rtx_non_response (docs/clinical-rules.md)
# KDIGO21: low risk after a decrease > 50% after 6 months of conservative therapy with ACEi/ARB
ACEI_ARB_RESPONSE_FRACTION = 0.5
# the value "at ACEi/ARB start": the last one before the start within this many days, else the
# first one within a short grace after it (the antiproteinuric effect takes weeks to appear)
ACEI_ARB_BASELINE_LOOKBACK_DAYS = 90
ACEI_ARB_BASELINE_GRACE_DAYS = 14
# an ACEi -> ARB switch recorded with a few days' gap is one exposure to RAS blockade
ACEI_ARB_GAP_DAYS = 7
RAS_BLOCKERS = ("ace_inhibitor", "arb")
# very high risk, "rapid deterioration of kidney function" read as an eGFR fall >= 25% within
# 3 months (docs/clinical-rules.md); 92 days covers any 3 calendar months
RAPID_EGFR_FALL_FRACTION = 0.25
RAPID_EGFR_FALL_WINDOW_DAYS = 92
# reported beside the category: anti-PLA2R > 150 RU/mL marks very high activity (KDIGO21)
VERY_HIGH_ACTIVITY_PLA2R_ABOVE_RU_ML = 150.0


@dataclass(frozen=True)
class RiskAssessment:
    category: Category
    reasons: tuple[str, ...] = ()
    very_high_activity: bool = False  # anti-PLA2R > 150 RU/mL, reported beside the category

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "reasons": list(self.reasons),
                "very_high_activity": self.very_high_activity}


def _fmt(r: LabResult, *limits: float) -> str:
    return f"{lab_text(r, limits)} on {r.effective_date.isoformat()}"


def _proteinuria_text(r: LabResult) -> str:
    return f"proteinuria {proteinuria_text(r)} on {r.effective_date.isoformat()}"


def _g_per_day(value: float) -> str:
    return value_text(value, "proteinuria_24h")


@dataclass(frozen=True)
class AceiArbResponse:
    """Proteinuria on ACEi/ARB against the value at the start of the current exposure."""

    start: date
    days_on: int  # from start to min(end, as_of)
    baseline: LabResult | None
    after: LabResult | None  # the latest value >= 6 months into the exposure

    @property
    def evaluable(self) -> bool:
        return self.baseline is not None and self.after is not None and self.baseline.value > 0

    @property
    def decrease(self) -> float | None:
        if not self.evaluable:
            return None
        assert self.baseline is not None and self.after is not None
        return (self.baseline.value - self.after.value) / self.baseline.value

    @property
    def decreased(self) -> bool:
        d = self.decrease
        return d is not None and d > ACEI_ARB_RESPONSE_FRACTION

    def describe(self) -> str:
        if self.evaluable:
            assert self.baseline is not None and self.after is not None and self.decrease is not None
            pct = number(self.decrease * 100, 0, (ACEI_ARB_RESPONSE_FRACTION * 100,))
            return (f"on ACEi/ARB since {self.start.isoformat()}: proteinuria "
                    f"{_g_per_day(self.baseline.value)} -> {_g_per_day(self.after.value)} g/d ({self.after.effective_date.isoformat()}), "
                    f"a {pct}% decrease (> {ACEI_ARB_RESPONSE_FRACTION * 100:.0f}% needed)")
        if self.days_on < SIX_MONTHS_DAYS:
            # the date it can be judged, not "for N days": the text stays true from day to day, so an
            # assessment stays valid until that date (Assessment.valid_until)
            judged = self.start + timedelta(days=SIX_MONTHS_DAYS)
            return (f"on ACEi/ARB since {self.start.isoformat()}: the 6-month response cannot be judged "
                    f"before {judged.isoformat()}")
        missing = "at its start" if self.baseline is None else "6 months or more into it"
        return (f"on ACEi/ARB since {self.start.isoformat()} but no proteinuria {missing}: the 6-month "
                "response cannot be judged")


def _ras_exposure(meds: Sequence[MedicationEvent], as_of: date) -> tuple[date, date] | None:
    """The latest continuous ACEi/ARB exposure started by as_of, as (start, min(end, as_of))."""
    spans = sorted((m.start, min(m.end or (m.start if m.frequency == "once" else as_of), as_of))
                   for m in meds if m.drug in RAS_BLOCKERS and m.start <= as_of)
    current: tuple[date, date] | None = None
    for start, end in spans:
        if current is not None and start <= current[1] + timedelta(days=ACEI_ARB_GAP_DAYS):
            current = (current[0], max(current[1], end))
        else:
            current = (start, end)
    return current


def acei_arb_response(proteinuria: Sequence[LabResult], meds: Sequence[MedicationEvent],
                      as_of: date, days: SeriesArrays | None = None) -> AceiArbResponse | None:
    """The 6-month ACEi/ARB response of KDIGO21's risk figure, or None without ACEi/ARB.

    `days`: the proteinuria series' SeriesArrays (Timeline.arrays), when the caller has them."""
    exposure = _ras_exposure(meds, as_of)
    if exposure is None:
        return None
    start, end = exposure
    if days is None:
        days = SeriesArrays.of(proteinuria)
    # three window look-ups on date ordinals (this runs for every patient every night): the last
    # value in the lookback before the start, else the first in the grace after it; the last value
    # >= 6 months into the exposure
    on = start.toordinal()
    before = days.last_in(on - ACEI_ARB_BASELINE_LOOKBACK_DAYS, on)
    if before < 0:
        before = days.first_in(on + 1, on + ACEI_ARB_BASELINE_GRACE_DAYS)
    after = days.last_in(on + SIX_MONTHS_DAYS, end.toordinal())
    return AceiArbResponse(start, (end - start).days, proteinuria[before] if before >= 0 else None,
                           proteinuria[after] if after >= 0 else None)


def persistent_heavy_proteinuria(proteinuria: Sequence[LabResult]) -> tuple[LabResult, LabResult] | None:
    """KDIGO21 "proteinuria > 8 g/d for > 6 months": the trailing run of values all > 8 g/d (ending
    with the latest value) spanning more than 6 months; returns its first and last value.

    Trailing, because the category describes the patient now: a heavy run that has since ended
    (values fell to <= 8) no longer places the patient at high risk by this line.
    """
    run: list[LabResult] = []
    for r in reversed(proteinuria):
        if r.value <= HIGH_RISK_PROTEINURIA_ABOVE_G_PER_DAY:
            break
        run.append(r)
    if len(run) < 2:
        return None
    first, last = run[-1], run[0]
    return (first, last) if (last.effective_date - first.effective_date).days > SIX_MONTHS_DAYS else None


def rapid_egfr_fall(egfr: Sequence[LabResult],
                    days: Sequence[int] | None = None) -> tuple[LabResult, LabResult] | None:
    """An eGFR fall >= 25% within 3 months that is recent and not recovered, as (before, after).

    A pair (a, b) with b <= 0.75 a and b at most 3 months after a, where b lies within the 3 months
    ending at the latest eGFR and the latest value is still <= 0.75 a: a fall long past, or one that
    recovered, is not a current rapid deterioration (a lasting one shows as eGFR < 60 instead).
    `days`: the series' effective dates as ordinals (timeline.SeriesArrays), when the caller has them.
    """
    if len(egfr) < 2:
        return None
    if days is None:
        days = [r.effective_at.toordinal() for r in egfr]
    latest = egfr[-1]
    window = RAPID_EGFR_FALL_WINDOW_DAYS
    recent_start = days[-1] - window
    # date ordinals: whole days, compared without building a timedelta per pair
    candidates = [(r, d) for r, d in zip(egfr, days) if d >= recent_start - window]
    worst: tuple[LabResult, LabResult] | None = None
    for i, (b, b_day) in enumerate(candidates):
        if b_day < recent_start:
            continue
        for a, a_day in candidates[:i]:
            if b_day - a_day > window or a.value <= 0:
                continue
            limit = (1 - RAPID_EGFR_FALL_FRACTION) * a.value
            if b.value > limit or latest.value > limit:
                continue
            if worst is None or b.value / a.value < worst[1].value / worst[0].value:
                worst = (a, b)  # the steepest fall names the numbers in the reason
    return worst


def risk_category(ctx: "RuleContext") -> RiskAssessment:
    """The KDIGO 2021 risk category of the patient on ctx.as_of, with reasons naming the numbers."""
    proteinuria = ctx.proteinuria
    pla2r = ctx.timeline.latest("anti_pla2r")
    activity = pla2r is not None and pla2r.value > VERY_HIGH_ACTIVITY_PLA2R_ABOVE_RU_ML
    activity_reason = ((f"anti-PLA2R {_fmt(pla2r)} > {VERY_HIGH_ACTIVITY_PLA2R_ABOVE_RU_ML:g}: very high "
                        "immunological activity",) if activity and pla2r else ())

    def result(category: Category, *reasons: str) -> RiskAssessment:
        return RiskAssessment(category, tuple(reasons) + activity_reason, activity)

    if not proteinuria:
        return result("unknown", "no proteinuria result (24-h urine or UPCR): risk cannot be assessed")

    latest_p = proteinuria[-1]
    egfr = ctx.egfr[-1] if ctx.egfr else None
    fall = rapid_egfr_fall(ctx.egfr, ctx.timeline.arrays(ctx.egfr).days)
    if fall is not None:
        a, b = fall
        return result("very_high", (
            f"eGFR fell {number((a.value - b.value) / a.value * 100, 0, (RAPID_EGFR_FALL_FRACTION * 100,))}% "
            f"from {_fmt(a)} to {_fmt(b, (1 - RAPID_EGFR_FALL_FRACTION) * a.value)} "
            f"(>= {RAPID_EGFR_FALL_FRACTION * 100:.0f}% within 3 months): rapid deterioration of kidney "
            "function, if not otherwise explained"))

    high: list[str] = []
    if egfr is not None and egfr.value < NORMAL_EGFR_MIN:
        high.append(f"eGFR {_fmt(egfr)} < {NORMAL_EGFR_MIN:g}")
    heavy = persistent_heavy_proteinuria(proteinuria)
    if heavy is not None:
        first, last = heavy
        high.append(f"proteinuria > {HIGH_RISK_PROTEINURIA_ABOVE_G_PER_DAY:g} g/d in every value from "
                    f"{first.effective_date.isoformat()} to {last.effective_date.isoformat()} "
                    f"({(last.effective_date - first.effective_date).days} days, > 6 months)")

    nephrotic = latest_p.value >= NEPHROTIC_G_PER_DAY
    response = acei_arb_response(proteinuria, ctx.timeline.drugs(*RAS_BLOCKERS), ctx.as_of,
                                 ctx.timeline.arrays(proteinuria))
    response_text = response.describe() if response else "no ACEi/ARB recorded: the 6-month response cannot be judged"
    decreased = response is not None and response.decreased
    albumin = ctx.timeline.latest("serum_albumin")

    if nephrotic and not decreased:
        markers = []
        if albumin is not None and albumin.value < HIGH_RISK_ALBUMIN_BELOW_G_L:
            markers.append(f"serum albumin {_fmt(albumin)} < {HIGH_RISK_ALBUMIN_BELOW_G_L:g}")
        if pla2r is not None and pla2r.value > HIGH_RISK_PLA2R_ABOVE_RU_ML:
            markers.append(f"anti-PLA2R {_fmt(pla2r)} > {HIGH_RISK_PLA2R_ABOVE_RU_ML:g}")
        if markers:
            # with eGFR < 60 it is high anyway; with normal eGFR the marker line makes it high
            high.append(f"{_proteinuria_text(latest_p)} not decreased > {ACEI_ARB_RESPONSE_FRACTION * 100:.0f}% on "
                        f"ACEi/ARB ({response_text}) "
                        f"with {' and '.join(markers)}")
    if high:
        return result("high", *high)

    if egfr is None:
        return result("unknown", f"{_proteinuria_text(latest_p)}; no eGFR (no creatinine, or birth date/sex "
                      "missing to compute it): the category depends on whether eGFR is >= 60")

    normal = f"eGFR {_fmt(egfr)} >= {NORMAL_EGFR_MIN:g}"
    if nephrotic and not decreased:
        return result("moderate", normal, f"{_proteinuria_text(latest_p)} >= {NEPHROTIC_G_PER_DAY:g}",
                      response_text, f"no high-risk marker (albumin < {HIGH_RISK_ALBUMIN_BELOW_G_L:g} g/L, "
                      f"anti-PLA2R > {HIGH_RISK_PLA2R_ABOVE_RU_ML:g} RU/mL)")
    if nephrotic:
        assert response is not None
        return result("low", normal, f"{_proteinuria_text(latest_p)}; {response.describe()}")
    reasons = [normal, f"{_proteinuria_text(latest_p)} < {NEPHROTIC_G_PER_DAY:g}"]
    if albumin is not None and albumin.value > LOW_RISK_ALBUMIN_ABOVE_G_L:
        reasons.append(f"serum albumin {_fmt(albumin)} > {LOW_RISK_ALBUMIN_ABOVE_G_L:g}")
    elif response is not None and response.days_on >= SIX_MONTHS_DAYS:
        reasons.append(response_text)  # KDIGO's second low line: < 3.5 g/d after 6 months of ACEi/ARB
    else:
        # neither low line is fully met (albumin > 30, or 6 months of ACEi/ARB): say what is missing
        albumin_text = f"serum albumin {_fmt(albumin)}" if albumin else "no serum albumin"
        reasons.append(f"{albumin_text} (not > {LOW_RISK_ALBUMIN_ABOVE_G_L:g}) and {response_text}: "
                       "low risk to be confirmed")
    return result("low", *reasons)


def risk_next_change(ctx: RuleContext) -> date | None:
    """The first day after ctx.as_of on which risk_category could differ without a new event, or None.

    Only the ACEi/ARB exposure reads as_of: an exposure still under 6 months reaches them on its start
    + 183 days (the reasons, and the low-risk line, change then). Every other input is a result."""
    exposure = _ras_exposure(ctx.timeline.drugs(*RAS_BLOCKERS), ctx.as_of)
    if exposure is None:
        return None
    judged = exposure[0] + timedelta(days=SIX_MONTHS_DAYS)
    return judged if judged > ctx.as_of else None
