"""Archetypes: the disease and treatment courses a synthetic IMN cohort is drawn from.

Each archetype is a course seen in the literature, with the alert rules it should raise at some
point of a three-year follow-up (`expected_rules`; rule ids of docs/clinical-rules.md) and those whose
severity should reach critical (`critical_rules`). Sources:
- KDIGO 2021 Clinical Practice Guideline for Glomerular Diseases, ch. 3 (Kidney Int 2021;100:S1):
  risk-based treatment, supportive care with ACEi/ARB, rituximab / CNI / cyclophosphamide, remission
  definitions, anti-PLA2R at 3 and 6 months, anticoagulation below albumin 20-25 g/L.
- MENTOR, Fervenza NEJM 2019;381:36: rituximab 1 g on days 1 and 15, repeated at 6 months when
  proteinuria fell but did not remit; < 25% reduction at 6 months = treatment failure; anti-PLA2R
  falls before proteinuria; remission 60% at 12-24 months.
- GEMRITUX, Dahan JASN 2017;28:348: rituximab 375 mg/m2 on days 1 and 8 (lower exposure; more
  incomplete depletion); remission 64.9% at a median 17 months; immunological response at 3 months.
- Cattran Kidney Int 2007;72:1429 (and Cattran KI 2001;59:1484): cyclosporine 3.5 mg/kg/d with low-dose
  prednisone; relapses more frequent when the trough was below 100 ng/mL.
- Ponticelli, JASN 1998;9:444 (the cyclophosphamide variant; KDIGO21 "modified Ponticelli"): alternating months of
  methylprednisolone 1 g x3 + prednisone 0.5 mg/kg/d and oral cyclophosphamide 2 mg/kg/d, 6 months.
- du Buf-Vereijken NDT 2004;19:1142: 12 months of oral cyclophosphamide 1.5-2 mg/kg/d (cumulative
  > 36 g; Faurschou 2008 bladder-cancer threshold, van den Brand JASN 2014 malignancy risk).
- Polanco JASN 2010;21:697 and the seed review: about one third remit spontaneously on supportive
  care, over a median ~15 months; 25% of PLA2R-associated MN relapse after remission; anti-PLA2R
  reappears months before proteinuria.

Course curves are placed so that measurement noise (synthetic/course.py: truncated at 2 SD) cannot
cross a rule's threshold by accident: e.g. troughs meant "in range" are drawn so that mean x 1.27 <
upper limit and mean x 0.79 > lower limit, and proteinuria falls through 2.8-4.4 g/d by at least a
quarter per month, so one high draw after a confirmed partial remission cannot fake a relapse.
The expected rules assume the default three-year period; a shorter one may end before they fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from synthetic.course import Curve, PatientSim, creatinine_for_egfr, curve

Builder = Callable[[PatientSim], None]

# trough means that stay on one side of a rule's limit under +/-2 SD (CV 12%) noise
CSA_LOW = (55.0, 75.0)  # < 100 / 1.27 (Cattran07: < 100 ng/mL)
CSA_IN_RANGE = (128.0, 148.0)  # > 100 / 0.79 and < 190 / 1.27 (Waldman 125-190 ug/L)
CSA_HIGH = (250.0, 320.0)  # > 190 / 0.79
TAC_LOW = (1.3, 2.2)  # < 3 / 1.27 (KDIGO12 induction 5-10)
TAC_IN_RANGE = (4.2, 7.5)  # > 3 / 0.79 and < 10 / 1.27
TAC_HIGH = (13.5, 19.0)  # > 10 / 0.79
MONITORING_WINDOW_DAYS = 380  # sampling stays tight for 12 months after an anti-CD20 course


@dataclass(frozen=True)
class Archetype:
    name: str
    code: str  # short code, the last part of the patient id
    description: str
    weight: float  # share of the cohort
    expected_rules: frozenset[str]
    critical_rules: frozenset[str] = frozenset()
    build: Builder = field(default=lambda sim: None, repr=False, compare=False)


# ---- shared pieces of courses -------------------------------------------------------------------
def _u(sim: PatientSim, lo: float, hi: float) -> float:
    return sim.rng.uniform(lo, hi)


def _supportive(sim: PatientSim, t: int = 0) -> None:
    """ACE inhibitor or ARB, maximally tolerated (KDIGO21 supportive care for every patient)."""
    if sim.rng.random() < 0.55:
        sim.med("ace_inhibitor", t, sim.rng.choice((5.0, 10.0)), "mg", frequency="qd")  # ramipril
    else:
        sim.med("arb", t, sim.rng.choice((50.0, 100.0)), "mg", frequency="qd")  # losartan


def _rituximab(sim: PatientSim, t: int, protocol: str) -> int:
    """Two infusions (MENTOR 1 g days 1+15, GEMRITUX 375 mg/m2 days 1+8); returns the last dose day."""
    gap, dose, unit = (14, 1000.0, "mg") if protocol == "mentor" else (7, 375.0, "mg/m2")
    sim.med("rituximab", t, dose, unit, route="iv")
    sim.med("rituximab", t + gap, dose, unit, route="iv")
    return t + gap


def _obinutuzumab(sim: PatientSim, t: int) -> int:
    """Obinutuzumab 1 g days 1+15: the seed review's alternative anti-CD20 after rituximab failure."""
    sim.med("obinutuzumab", t, 1000.0, "mg", route="iv")
    sim.med("obinutuzumab", t + 14, 1000.0, "mg", route="iv")
    return t + 14


def _protocol(sim: PatientSim, gemritux_share: float = 0.3) -> str:
    return "gemritux" if sim.rng.random() < gemritux_share else "mentor"


def _responding_titer(sim: PatientSim, t: int, t0: float, pre: float | None = None) -> list[tuple[float, float]]:
    """Knots of an immunological response from treatment day t: < 14 RU/mL by ~3 months (GEMRITUX)."""
    knots: list[tuple[float, float]] = [(0, pre if pre is not None else t0), (t, t0)]
    return knots + [(t + 30, t0 * 0.45), (t + 80, _u(sim, 4, 10)), (t + 170, _u(sim, 0.8, 4))]


def _responding_proteinuria(sim: PatientSim, t: int, p0: float, lag: int = 45) -> list[tuple[float, float]]:
    """Knots of a clinical response from day t: PR (< 2 g/d) about 4 months after the lag, then lower."""
    return [(t, p0), (t + lag, p0 * 0.92), (t + lag + 120, _u(sim, 1.3, 1.8)),
            (t + lag + 300, _u(sim, 0.6, 1.1))]


def _cr_tail(sim: PatientSim, knots: list[tuple[float, float]], share: float) -> None:
    """Extend a response to complete remission (< 0.3 g/d) for `share` of patients."""
    if sim.rng.random() < share:
        knots.append((knots[-1][0] + sim.rng.randint(120, 300), _u(sim, 0.1, 0.2)))


def _positive_titer(sim: PatientSim, lo: float = 40.0, hi: float = 200.0) -> float:
    return _u(sim, lo, hi)


def _standard_follow_up(sim: PatientSim, treat: int, window_end: int, stop: int | None = None) -> None:
    """Quarterly before treatment, monthly for 7 months, every 6-9 weeks to window end, then quarterly.

    Proteinuria every <= 90 days and anti-PLA2R every <= 80 days while on immunosuppression or
    within 12 months of anti-CD20 (KDIGO21 practice points; the monitoring_overdue limits).
    """
    panels = sim.schedule([(0, 60, 90), (treat, 25, 35), (treat + 210, 42, 63), (window_end, 60, 100)], stop)
    titers = sim.schedule([(0, 80, 120), (treat, 55, 80), (window_end, 80, 150)], stop)
    sim.panels(panels)
    sim.titers(titers)


# ---- the archetypes' courses ---------------------------------------------------------------------
def quiet(sim: PatientSim) -> None:
    """Low risk on ACEi/ARB: sub-nephrotic, stable, albumin > 30 g/L, titer negative or low (KDIGO21)."""
    rng = sim.rng
    _supportive(sim)
    p = _u(sim, 0.5, 2.4)
    sim.proteinuria = curve((0, p), (sim.horizon, p * _u(sim, 1.0, 1.1)))
    kind = rng.random()
    titer = _u(sim, 0.5, 1.9) if kind < 0.4 else (_u(sim, 3, 10) if kind < 0.8 else _u(sim, 20, 45))
    sim.titer = curve((0, titer))
    sim.panels(sim.schedule([(0, 60, 120)]))
    sim.titers(sim.schedule([(0, 90, 180)] if titer >= 14 else [(0, 300, 420)]))


def spontaneous_remission(sim: PatientSim) -> None:
    """Nephrotic at onset, remits on ACEi/ARB alone (Polanco 2010: ~1/3, median ~15 months)."""
    rng = sim.rng
    _supportive(sim)
    p0 = _u(sim, 4.0, 6.5)
    ta = rng.randint(60, 150)
    tb = ta + rng.randint(180, 270)
    knots = [(0, p0), (ta, p0 * _u(sim, 0.9, 1.0)), (tb, _u(sim, 0.9, 1.6))]
    _cr_tail(sim, knots, 0.5)
    sim.proteinuria = curve(*knots)
    sim.titer = curve((0, _u(sim, 20, 90)), (ta + 30, _u(sim, 3, 8)))  # titer falls first
    sim.panels(sim.schedule([(0, 45, 75), (365, 60, 100)]))
    sim.titers(sim.schedule([(0, 80, 150)]))


def rituximab_responder(sim: PatientSim) -> None:
    """Rituximab after >= 3 months of supportive care; titer negative by ~3 months, PR then CR (MENTOR)."""
    rng = sim.rng
    _supportive(sim)
    r0 = rng.randint(90, 180)
    p0, t0 = _u(sim, 5.0, 9.0), _positive_titer(sim, 60, 250)
    protocol = _protocol(sim)
    last = _rituximab(sim, r0, protocol)
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    if protocol == "mentor" and rng.random() < 0.3:  # MENTOR: repeat at 6 months if not in CR
        if rng.random() < 0.5:
            sim.cd19(r0 + 180, depleted=False)  # B-cell return before the repeat (outside 7-60 d)
        last = _rituximab(sim, r0 + 183, protocol)
    knots = [(0, p0 * _u(sim, 0.9, 1.1)), *_responding_proteinuria(sim, r0, p0)]
    _cr_tail(sim, knots, 0.6)
    sim.proteinuria = curve(*knots)
    sim.titer = curve(*_responding_titer(sim, r0, t0))
    _standard_follow_up(sim, r0, last + MONITORING_WINDOW_DAYS)


def rituximab_non_responder(sim: PatientSim) -> None:
    """No response 6 months after rituximab (titer >= 14, proteinuria < 25% lower: MENTOR failure),
    then obinutuzumab (seed review: alternative anti-CD20), which works."""
    rng = sim.rng
    _supportive(sim)
    r0 = rng.randint(90, 180)
    p0, t0 = _u(sim, 6.0, 9.0), _positive_titer(sim, 80, 300)
    last = _rituximab(sim, r0, _protocol(sim))
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    o = r0 + rng.randint(200, 230)
    last = _obinutuzumab(sim, o)
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    plateau = t0 * _u(sim, 0.5, 0.75)
    sim.titer = curve((0, t0), (r0, t0), (r0 + 60, plateau), *_responding_titer(sim, o, plateau)[1:])
    stuck = p0 * _u(sim, 0.95, 1.05)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.85, 1.0)), (r0, p0), (o, stuck),
                            *_responding_proteinuria(sim, o, stuck, lag=30))
    _standard_follow_up(sim, r0, last + MONITORING_WINDOW_DAYS)


def b_cell_not_depleted(sim: PatientSim) -> None:
    """CD19 >= 5/uL 2-4 weeks after rituximab (urinary loss in nephrotic patients; more frequent with
    the GEMRITUX dose); an extra 1 g infusion (KDIGO21 practice point) depletes and the patient responds."""
    rng = sim.rng
    _supportive(sim)
    r0 = rng.randint(90, 180)
    p0, t0 = _u(sim, 5.0, 8.0), _positive_titer(sim, 60, 250)
    last = _rituximab(sim, r0, _protocol(sim, gemritux_share=0.7))
    sim.cd19(last + rng.randint(14, 28), depleted=False)
    extra = last + rng.randint(35, 50)  # > 30 days: a course of its own
    sim.med("rituximab", extra, 1000.0, "mg", route="iv")
    sim.cd19(extra + rng.randint(14, 28), depleted=True)
    sim.titer = curve((0, t0), (r0, t0), *_responding_titer(sim, extra, t0 * 0.7)[1:])
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), (r0, p0), *_responding_proteinuria(sim, extra, p0, lag=30))
    _standard_follow_up(sim, r0, extra + MONITORING_WINDOW_DAYS)


def relapse_after_remission(sim: PatientSim) -> None:
    """Rituximab -> CR; ~1.5 years later anti-PLA2R reappears, then nephrotic relapse, re-treated.

    Seed review: 25% of PLA2R-associated MN relapse; titer reappearance precedes proteinuria by months.
    """
    rng = sim.rng
    _supportive(sim)
    r0 = rng.randint(60, 120)
    p0, t0 = _u(sim, 5.0, 8.0), _positive_titer(sim, 50, 200)
    protocol = _protocol(sim)
    last = _rituximab(sim, r0, protocol)
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    reappear = r0 + rng.randint(500, 580)
    detect = reappear + rng.randint(30, 75)  # the first visit that sees it (>= 20 RU/mL)
    rise = reappear + 60
    relapse_peak = _u(sim, 5.5, 7.0)
    retreat = reappear + rng.randint(170, 190)
    last2 = _rituximab(sim, retreat, protocol)
    sim.cd19(last2 + rng.randint(14, 28), depleted=True)
    cr = _u(sim, 0.12, 0.2)
    sim.proteinuria = curve(
        (0, p0 * _u(sim, 0.9, 1.0)), *_responding_proteinuria(sim, r0, p0)[:3], (r0 + 360, cr),
        (rise, cr), (reappear + 150, relapse_peak), *_responding_proteinuria(sim, retreat + 15, relapse_peak, lag=15))
    negative = _u(sim, 0.8, 2.5)
    high = _u(sim, 80, 150)
    sim.titer = curve(*_responding_titer(sim, r0, t0)[:4], (r0 + 170, negative), (reappear, negative),
                      (reappear + 30, _u(sim, 28, 45)), (reappear + 90, high),
                      *_responding_titer(sim, retreat, high)[1:])
    window = last + MONITORING_WINDOW_DAYS
    sim.panels(sim.schedule([(0, 60, 90), (r0, 25, 35), (r0 + 210, 42, 63), (window, 60, 90),
                             (detect, 25, 35)]))
    sim.titers(sim.schedule([(0, 80, 120), (r0, 55, 80), (window, 70, 85), (detect, 30, 45),
                             (retreat + 60, 55, 80)]))


def cyclosporine_low_trough(sim: PatientSim) -> None:
    """Cyclosporine 3.5 mg/kg/d + low-dose prednisone with troughs < 100 ng/mL; PR, then relapse on
    treatment (Cattran 2007); the dose is raised after the relapse. Half are PLA2R-negative."""
    rng = sim.rng
    _supportive(sim)
    c = rng.randint(90, 180)
    p0 = _u(sim, 5.0, 8.0)
    relapse_at = c + rng.randint(300, 420)
    dose_up = relapse_at + rng.randint(75, 90)
    dose = max(50.0, round(sim.weight * 3.5 / 2 / 25) * 25)
    sim.med("cyclosporine", c, dose, "mg", frequency="bid", end=dose_up - 1)
    sim.med("cyclosporine", dose_up, dose + 50, "mg", frequency="bid")
    sim.med("glucocorticoid", c, 10.0, "mg", frequency="qd", end=c + 180)
    low, ok = _u(sim, *CSA_LOW), _u(sim, *CSA_IN_RANGE)
    level = curve((c, low), (dose_up + 7, low), (dose_up + 14, ok))
    sim.troughs("csa_trough", level, sim.schedule([(c + 14, 25, 35)]))
    remitted = _u(sim, 1.4, 1.9)
    peak = _u(sim, 5.2, 6.5)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), (c, p0), (c + 30, p0 * 0.95), (c + 150, remitted),
                            (relapse_at, remitted * _u(sim, 1.0, 1.15)), (relapse_at + 60, peak),
                            (dose_up + 45, peak), (dose_up + 165, _u(sim, 1.4, 1.9)))
    if rng.random() < 0.5:
        sim.titer = curve((0, _u(sim, 0.5, 8.0)))  # PLA2R-negative: tested at diagnosis, then yearly
        titer_days = sim.schedule([(0, 330, 400)])
    else:
        t0 = _positive_titer(sim)
        sim.titer = curve((0, t0), (c, t0), (c + 150, _u(sim, 18, 30)))  # partial, flat: >= 14
        titer_days = sim.schedule([(0, 80, 120), (c, 55, 80)])
    sim.panels(sim.schedule([(0, 60, 90), (c, 25, 35)]))
    sim.titers(titer_days)


def _cni_dose(sim: PatientSim, drug: str, mg_per_kg_day: float) -> float:
    """Per-administration (bid) dose: CsA in 25 mg steps, tacrolimus in 0.5 mg steps."""
    per_dose = sim.weight * mg_per_kg_day / 2
    if drug == "cyclosporine":
        return max(50.0, round(per_dose / 25) * 25)
    return max(0.5, round(per_dose * 2) / 2)


def cni_over_exposure(sim: PatientSim) -> None:
    """CsA (> 190 ng/mL) or tacrolimus (> 10 ng/mL) over-exposure with a > 40% creatinine rise (acute
    CNI nephrotoxicity, KDIGO12), corrected by a dose reduction; the disease itself responds."""
    rng = sim.rng
    _supportive(sim)
    # Scr above kappa: eGFR tracks creatinine; 67 x 0.898 (creatinine +2 SD) > 60, so cyclosporine is
    # never started at an eGFR that reads below 60 (csa_renal_impairment)
    sim.creatinine_baseline = _egfr_baseline(sim, 67, 85)
    c = rng.randint(90, 180)
    # the dose is reduced 2-3 months in, and kidney function recovers within weeks (haemodynamic CNI
    # nephrotoxicity is reversible), so the partial remission is confirmed on a stable eGFR before the
    # 6-month evaluation point (no course_non_response)
    reduce_at = c + rng.randint(60, 80)
    stop = c + 365
    drug = "cyclosporine" if rng.random() < 0.5 else "tacrolimus"
    kind, high, ok = (("csa_trough", CSA_HIGH, CSA_IN_RANGE) if drug == "cyclosporine"
                      else ("tac_trough", TAC_HIGH, TAC_IN_RANGE))
    dose = _cni_dose(sim, drug, 5.0 if drug == "cyclosporine" else 0.1)
    sim.med(drug, c, dose, "mg", frequency="bid", end=reduce_at - 1)
    sim.med(drug, reduce_at, _cni_dose(sim, drug, 3.0 if drug == "cyclosporine" else 0.05), "mg",
            frequency="bid", end=stop)
    hi, lo = _u(sim, *high), _u(sim, *ok)
    sim.troughs(kind, curve((c, hi), (reduce_at + 6, hi), (reduce_at + 20, lo)),
                sim.schedule([(c + 14, 25, 35)], stop=stop))
    rise = _u(sim, 1.5, 1.65)
    sim.creatinine = curve((c + 20, 1.0), (reduce_at, rise), (reduce_at + 14, rise),
                           (reduce_at + 50, _u(sim, 1.04, 1.1)))
    p0 = _u(sim, 5.0, 8.0)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), *_responding_proteinuria(sim, c, p0, lag=30))
    sim.titer = _maybe_positive_titer(sim, c)
    # after the CNI stops: every 2-3 months for a year (relapse watch), then less often
    sim.panels(sim.schedule([(0, 60, 90), (c, 25, 35), (stop, 60, 85), (stop + 365, 60, 100)]))
    sim.titers(sim.schedule([(0, 80, 120), (c, 55, 80), (stop, 80, 150)]))


def _egfr_baseline(sim: PatientSim, lo: float, hi: float) -> float:
    """A creatinine baseline (umol/L) giving an eGFR drawn from [lo, hi]."""
    return creatinine_for_egfr(_u(sim, lo, hi), sim.age, sim.sex)


def _maybe_positive_titer(sim: PatientSim, treat: int) -> Curve:
    """70% PLA2R-positive, falling to negative after treatment; 30% negative throughout."""
    if sim.rng.random() < 0.3:
        return curve((0, _u(sim, 0.5, 6.0)))
    t0 = _positive_titer(sim, 30, 150)
    return curve((0, t0), (treat, t0), (treat + 120, _u(sim, 4, 10)), (treat + 240, _u(sim, 0.8, 4)))


def tacrolimus_under_exposure(sim: PatientSim) -> None:
    """Tacrolimus 0.05 mg/kg/d with troughs < 3 ng/mL (poor adherence / fast metabolism, KDIGO12 target
    5-10), the dose doubled after ~3 months; 12 months of treatment. The response comes late, 2.5
    months after the troughs are in range: at 6 months there is no remission yet, the point at which
    KDIGO12 would stop a calcineurin inhibitor (course_non_response, whose message asks about
    adherence and levels); a partial remission follows."""
    rng = sim.rng
    _supportive(sim)
    c = rng.randint(90, 180)
    up = c + rng.randint(75, 110)
    stop = c + 365
    dose = _cni_dose(sim, "tacrolimus", 0.05)
    sim.med("tacrolimus", c, dose, "mg", frequency="bid", end=up - 1)
    sim.med("tacrolimus", up, dose * 2, "mg", frequency="bid", end=stop)
    low, ok = _u(sim, *TAC_LOW), _u(sim, *TAC_IN_RANGE)
    sim.troughs("tac_trough", curve((c, low), (up + 6, low), (up + 14, ok)),
                sim.schedule([(c + 14, 25, 35)], stop=stop))
    p0 = _u(sim, 5.0, 8.0)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), (c, p0), *_responding_proteinuria(sim, up, p0, lag=75))
    sim.titer = _maybe_positive_titer(sim, up)
    # after the CNI stops: every 2-3 months for a year (relapse watch), then less often
    sim.panels(sim.schedule([(0, 60, 90), (c, 25, 35), (stop, 60, 85), (stop + 365, 60, 100)]))
    sim.titers(sim.schedule([(0, 80, 120), (c, 55, 80), (stop, 80, 150)]))


def _anticoagulant_until_albumin_recovers(sim: PatientSim, start: int, days: list[int]) -> None:
    """Apixaban from `start` until 30 days after albumin has reached 31 g/L (KDIGO21 prophylaxis)."""
    recovered = next((t for t in days if t > start and sim.albumin_at(t) >= 31.0), None)
    end = recovered + 30 if recovered is not None else None
    sim.med("anticoagulant", start, 5.0, "mg", frequency="bid", end=end)


def _nephrotic_rituximab(sim: PatientSim, nadir: tuple[float, float], anticoag_from: int | None,
                         p_range: tuple[float, float]) -> None:
    """Heavy proteinuria with low albumin, rituximab after 1-2 months (high risk, KDIGO21), responding."""
    rng = sim.rng
    _supportive(sim)
    p0 = _u(sim, *p_range)
    sim.set_albumin_nadir(_u(sim, *nadir), p0)
    r0 = rng.randint(30, 60)
    last = _rituximab(sim, r0, _protocol(sim))
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    knots = [(0, p0), *_responding_proteinuria(sim, r0, p0)]
    _cr_tail(sim, knots, 0.5)
    sim.proteinuria = curve(*knots)
    sim.titer = curve(*_responding_titer(sim, r0, _positive_titer(sim, 80, 300)))
    window = last + MONITORING_WINDOW_DAYS
    panels = sim.schedule([(0, 25, 35), (window, 60, 100)])
    sim.panels(panels)
    sim.titers(sim.schedule([(0, 55, 80), (window, 80, 150)]))
    if anticoag_from is not None:
        _anticoagulant_until_albumin_recovers(sim, anticoag_from, panels)


def severe_hypoalbuminaemia(sim: PatientSim) -> None:
    """Albumin < 20 g/L at diagnosis: anticoagulation started after 1-3 weeks (seed review, KDIGO21)."""
    _nephrotic_rituximab(sim, (14.5, 17.5), sim.rng.randint(7, 21), (9.0, 13.0))


def anticoagulated_hypoalbuminaemia(sim: PatientSim) -> None:
    """Albumin 15-23 g/L but already anticoagulated from the first visit: nothing to raise."""
    _nephrotic_rituximab(sim, (15.0, 23.0), 0, (8.0, 12.0))


def moderate_hypoalbuminaemia(sim: PatientSim) -> None:
    """Albumin 20-25 g/L on supportive care (KDIGO21: consider anticoagulation), slow spontaneous PR."""
    rng = sim.rng
    _supportive(sim)
    p0 = _u(sim, 5.0, 7.5)
    sim.set_albumin_nadir(_u(sim, 22.0, 23.2), p0)
    ta = rng.randint(180, 300)
    tb = ta + rng.randint(180, 270)
    sim.proteinuria = curve((0, p0), (ta, p0 * _u(sim, 0.92, 1.0)), (tb, _u(sim, 1.4, 2.2)))
    sim.titer = curve((0, _u(sim, 20, 80)), (ta + 60, _u(sim, 3, 8)))
    sim.panels(sim.schedule([(0, 45, 75)]))
    sim.titers(sim.schedule([(0, 80, 150)]))


def _ponticelli_month_starts(p: int) -> list[int]:
    return [p + 30 * m for m in range(6)]


def _cyclophosphamide_blood_counts(sim: PatientSim, first: int, last: int) -> None:
    """Blood counts on cyclophosphamide (CJASN review table: WBC weekly for 8 weeks, then every 2
    months): weekly from its first day for 8 weeks, then every 7-8 weeks until 30 days after its last
    day (the monitoring_overdue limits: 14 days, then 60)."""
    weekly = [first + 7 * k for k in range(8)]
    sim.blood_counts(weekly + sim.schedule([(weekly[-1] + 50, 49, 56)], stop=last + 30))


def _ponticelli(sim: PatientSim) -> int:
    """Modified Ponticelli (KDIGO21): months 1/3/5 methylprednisolone 1 g x3 then prednisone
    0.5 mg/kg/d; months 2/4/6 oral cyclophosphamide 2 mg/kg/d -> ~11-17 g cumulative. Returns its
    first day; the course responds (PR, CR for 60%)."""
    rng = sim.rng
    _supportive(sim)
    p = rng.randint(90, 180)
    per_kg = rng.random() < 0.5 and sim.weight >= 62
    ctx = (2.0, "mg/kg") if per_kg else (max(125.0, round(sim.weight * 2 / 25) * 25), "mg")
    pred = (0.5, "mg/kg") if per_kg else (max(25.0, round(sim.weight * 0.5 / 5) * 5), "mg")
    for m, start in enumerate(_ponticelli_month_starts(p)):
        if m % 2 == 0:
            sim.med("glucocorticoid", start, 1000.0, "mg", route="iv", frequency="qd", end=start + 2)
            sim.med("glucocorticoid", start + 3, pred[0], pred[1], frequency="qd", end=start + 29)
        else:
            sim.med("cyclophosphamide", start, ctx[0], ctx[1], frequency="qd", end=start + 29)
    p0 = _u(sim, 5.0, 9.0)
    knots = [(0, p0 * _u(sim, 0.9, 1.0)), *_responding_proteinuria(sim, p, p0, lag=60)]
    _cr_tail(sim, knots, 0.6)
    sim.proteinuria = curve(*knots)
    sim.titer = curve(*_responding_titer(sim, p + 30, _positive_titer(sim), pre=None))
    end = p + 200
    sim.panels(sim.schedule([(0, 60, 90), (p, 25, 35), (end, 42, 63), (p + 365, 60, 100)]))
    sim.titers(sim.schedule([(0, 80, 120), (p, 55, 80), (end, 80, 150)]))
    return p


def modified_ponticelli(sim: PatientSim) -> None:
    """Modified Ponticelli (KDIGO21): months 1/3/5 methylprednisolone 1 g x3 then prednisone
    0.5 mg/kg/d; months 2/4/6 oral cyclophosphamide 2 mg/kg/d -> ~11-17 g cumulative; blood counts
    stay normal (CJASN review table: WBC weekly for 8 weeks, then every 2 months)."""
    p = _ponticelli(sim)
    _cyclophosphamide_blood_counts(sim, p + 30, p + 179)


def cyclophosphamide_leukopenia(sim: PatientSim) -> None:
    """Modified Ponticelli with leukopenia in the first cyclophosphamide month: white cells fall to
    1.8-2.3 x10^9/L and neutrophils to 0.45-0.7 x10^9/L by its fourth week (CTCAE grade 3
    neutropenia), found on the weekly count, and recover within three weeks; the course goes on and
    the disease responds. Seed review: leukopenia in 18% and infection in 17% of cyclophosphamide
    courses; Ponticelli C et al. JASN 1998;9:444 and Jha V et al. JASN 2007;18:1899 (the regimen);
    CJASN review table of IMN protocols (WBC weekly for 8 weeks, then every 2 months)."""
    p = _ponticelli(sim)
    first = p + 30
    sim.normal_blood_counts()
    base = sim.wbc(0) if sim.wbc is not None else 6.5
    share = sim.neutrophil_share(0)
    nadir = _u(sim, 1.8, 2.3)  # x 1.22 (+2 SD) < 3.0: every count at the nadir is leukopenic
    nadir_share = _u(sim, 0.25, 0.3)  # neutrophils 0.45-0.69; x 1.32 (+2 SD) < 1.0
    sim.wbc = curve((first, base), (first + 14, base * 0.75), (first + 24, nadir), (first + 30, nadir),
                    (first + 50, base * 0.9), (first + 80, base))
    sim.neutrophil_share = curve((first, share), (first + 20, share), (first + 24, nadir_share),
                                 (first + 30, nadir_share), (first + 50, share), log=False)
    _cyclophosphamide_blood_counts(sim, first, p + 179)


def heavy_cyclophosphamide(sim: PatientSim) -> None:
    """12 months of oral cyclophosphamide 1.5-2 mg/kg/d with steroids in reduced eGFR (du Buf-Vereijken
    2004): cumulative > 36 g (Faurschou 2008; van den Brand 2014)."""
    rng = sim.rng
    _supportive(sim)
    sim.creatinine_baseline = _egfr_baseline(sim, 35, 55)
    c = rng.randint(60, 120)
    dose = max(125.0, round(sim.weight * 1.75 / 25) * 25)
    sim.med("cyclophosphamide", c, dose, "mg", frequency="qd", end=c + 181)
    sim.med("cyclophosphamide", c + 182, dose, "mg", frequency="qd", end=c + 364)
    for m in (0, 60, 120):
        sim.med("glucocorticoid", c + m, 1000.0, "mg", route="iv", frequency="qd", end=c + m + 2)
    sim.med("glucocorticoid", c + 3, 20.0, "mg", frequency="qd", end=c + 182)
    sim.med("glucocorticoid", c + 183, 10.0, "mg", frequency="qd", end=c + 364)
    p0 = _u(sim, 6.0, 10.0)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), *_responding_proteinuria(sim, c, p0, lag=60))
    t0 = _positive_titer(sim)
    sim.titer = curve((0, t0), (c, t0), (c + 90, t0 * 0.3), (c + 180, _u(sim, 4, 10)), (c + 300, _u(sim, 0.8, 4)))
    sim.panels(sim.schedule([(0, 60, 90), (c, 25, 35), (c + 380, 60, 100)]))
    sim.titers(sim.schedule([(0, 80, 120), (c, 55, 80), (c + 380, 80, 150)]))
    _cyclophosphamide_blood_counts(sim, c, c + 364)


def lost_to_follow_up(sim: PatientSim) -> None:
    """A calcineurin inhibitor started (open-ended), results for 2-5 months, then none (KDIGO21:
    proteinuria, anti-PLA2R and troughs must keep coming while on immunosuppression). Six months after
    the start no remission has been seen, so the course's non-response is flagged too (KDIGO12)."""
    rng = sim.rng
    _supportive(sim)
    c = rng.randint(60, 150)
    lost = c + rng.randint(60, 150)
    drug = "cyclosporine" if rng.random() < 0.5 else "tacrolimus"
    kind, ok = ("csa_trough", CSA_IN_RANGE) if drug == "cyclosporine" else ("tac_trough", TAC_IN_RANGE)
    sim.med(drug, c, _cni_dose(sim, drug, 3.5 if drug == "cyclosporine" else 0.05), "mg", frequency="bid")
    sim.troughs(kind, curve((0, _u(sim, *ok))), sim.schedule([(c + 14, 25, 35)], stop=lost))
    p0 = _u(sim, 4.0, 7.0)
    sim.proteinuria = curve((0, p0), (c, p0), (c + 120, p0 * _u(sim, 0.75, 0.9)))
    t0 = _positive_titer(sim, 30, 150)
    sim.titer = curve((0, t0), (c, t0), (c + 120, t0 * _u(sim, 0.5, 0.8)))
    sim.panels(sim.schedule([(0, 60, 90), (c, 25, 35)], stop=lost))
    sim.titers(sim.schedule([(0, 80, 120), (c, 55, 80)], stop=lost))


def titer_rising_on_supportive_care(sim: PatientSim) -> None:
    """Anti-PLA2R rising x3-4 over 9 months on ACEi/ARB as proteinuria becomes nephrotic (titer tracks
    activity, KDIGO21); rituximab a year later, responding."""
    rng = sim.rng
    _supportive(sim)
    t1 = rng.randint(60, 180)
    base = _u(sim, 22, 32)
    x = t1 + rng.randint(330, 400)
    high = base * _u(sim, 2.8, 4.0)
    last = _rituximab(sim, x, _protocol(sim))
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    sim.titer = curve((0, base), (t1, base), (t1 + 270, high), *_responding_titer(sim, x, high)[1:])
    p_start, p_peak = _u(sim, 2.0, 2.8), _u(sim, 4.5, 6.0)
    sim.proteinuria = curve((0, p_start), (t1 + 90, p_start), (t1 + 300, p_peak),
                            *_responding_proteinuria(sim, x, p_peak))
    window = last + MONITORING_WINDOW_DAYS
    sim.panels(sim.schedule([(0, 60, 90), (x, 25, 35), (x + 210, 42, 63), (window, 60, 100)]))
    sim.titers(sim.schedule([(0, 60, 90), (x, 55, 80), (window, 80, 150)]))


def cni_non_responder(sim: PatientSim) -> None:
    """Tacrolimus (Praga M et al. Kidney Int 2007;71:924: 0.05 mg/kg/d, troughs 5-10 ng/mL) or
    cyclosporine (Cattran DC et al. Kidney Int 2001;59:1484: 3.5 mg/kg/d) with troughs in range and
    no response: nephrotic at 6 months, when KDIGO 2012 and the CJASN review table advise stopping a
    calcineurin inhibitor; it is tapered off a few weeks later and rituximab (seed review: rituximab
    after CNI failure) brings a response."""
    rng = sim.rng
    _supportive(sim)
    sim.creatinine_baseline = _egfr_baseline(sim, 70, 105)  # normal kidney function at the start
    c = rng.randint(90, 180)
    stop = c + rng.randint(200, 215)
    drug = "cyclosporine" if rng.random() < 0.5 else "tacrolimus"
    kind, ok = ("csa_trough", CSA_IN_RANGE) if drug == "cyclosporine" else ("tac_trough", TAC_IN_RANGE)
    sim.med(drug, c, _cni_dose(sim, drug, 3.5 if drug == "cyclosporine" else 0.05), "mg", frequency="bid",
            end=stop)
    sim.troughs(kind, curve((0, _u(sim, *ok))), sim.schedule([(c + 14, 25, 35)], stop=stop))
    r0 = stop + rng.randint(7, 20)
    last = _rituximab(sim, r0, _protocol(sim))
    sim.cd19(last + rng.randint(14, 28), depleted=True)
    p0, t0 = _u(sim, 5.5, 8.5), _positive_titer(sim, 40, 150)
    stuck = p0 * _u(sim, 0.9, 1.0)  # never below 50% of the peak: no partial remission on the CNI
    sim.proteinuria = curve((0, p0), (c, p0), (r0, stuck), *_responding_proteinuria(sim, r0, stuck, lag=30)[1:])
    sim.titer = curve((0, t0), (c, t0), *_responding_titer(sim, r0, t0)[1:])
    _standard_follow_up(sim, c, last + MONITORING_WINDOW_DAYS)


def rituximab_partial_responder(sim: PatientSim) -> None:
    """MENTOR partial responder (Fervenza FC et al. NEJM 2019;381:36): rituximab 1 g on days 1 and 15;
    at 6 months the titer is negative and proteinuria about 60% lower, without complete remission,
    the situation in which MENTOR repeated the course. The second course is given 7-8 months after
    the first (after the reminder has been raised), and the patient reaches complete remission."""
    rng = sim.rng
    _supportive(sim)
    r0 = rng.randint(90, 180)
    p0, t0 = _u(sim, 6.0, 9.0), _positive_titer(sim, 60, 200)
    _rituximab(sim, r0, "mentor")
    sim.cd19(r0 + 14 + rng.randint(14, 28), depleted=True)
    again = r0 + rng.randint(200, 230)  # after day 183: the reminder has been up for 2-7 weeks
    last = _rituximab(sim, again, "mentor")
    # >= 54% below the baseline: 0.46 x 1.27 (+2 SD) < 0.75 / 1.27 (-2 SD), so the fall reads >= 25%
    # whatever the noise; >= 0.3 x 1.27: no complete remission before the second course
    six_months = p0 * _u(sim, 0.33, 0.42)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), (r0, p0), (r0 + 45, p0 * 0.9), (r0 + 150, six_months),
                            (again, six_months * _u(sim, 0.9, 1.0)), (again + 150, _u(sim, 0.6, 1.0)),
                            (again + 330, _u(sim, 0.1, 0.2)))
    sim.titer = curve(*_responding_titer(sim, r0, t0))
    _standard_follow_up(sim, r0, last + MONITORING_WINDOW_DAYS)


def cyclosporine_in_impaired_kidney_function(sim: PatientSim) -> None:
    """Cyclosporine 3.5 mg/kg/d with low-dose prednisone started at an eGFR of 38-52 mL/min/1.73 m2,
    as in Cattran DC et al. Kidney Int 2001;59:1484 (progressive IMN), although the seed review
    (section 2.4.1) advises avoiding it in impaired renal function; troughs in range, kidney function
    stable, a partial remission, the drug stopped after 12 months."""
    rng = sim.rng
    _supportive(sim)
    # 52 / 0.898 (creatinine +2 SD) < 60: every eGFR before the start reads below 60
    sim.creatinine_baseline = _egfr_baseline(sim, 38, 52)
    c = rng.randint(90, 180)
    stop = c + 365
    sim.med("cyclosporine", c, _cni_dose(sim, "cyclosporine", 3.5), "mg", frequency="bid", end=stop)
    sim.med("glucocorticoid", c, 10.0, "mg", frequency="qd", end=c + 180)
    sim.troughs("csa_trough", curve((0, _u(sim, *CSA_IN_RANGE))), sim.schedule([(c + 14, 25, 35)], stop=stop))
    p0 = _u(sim, 5.0, 8.0)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), *_responding_proteinuria(sim, c, p0, lag=30))
    sim.titer = _maybe_positive_titer(sim, c)
    # monthly on the drug, then every 2-3 months for the year after it (post-CNI relapse watch)
    sim.panels(sim.schedule([(0, 60, 90), (c, 25, 35), (stop, 60, 85), (stop + 380, 60, 100)]))
    sim.titers(sim.schedule([(0, 80, 120), (c, 55, 80), (stop, 80, 150)]))


def titer_falling_on_supportive_care(sim: PatientSim) -> None:
    """Moderate-risk nephrotic syndrome on ACEi/ARB with an anti-PLA2R of 45-95 RU/mL (<= 97.5, as in
    the Rodriguez-Spanish cohort, CKJ/NDT 2021, PMC8690096) that falls by 40-50% every 3 months;
    proteinuria halves by 6 months and reaches partial remission, so immunosuppression is never
    started (seed review section 2.1: extend non-immunosuppressive therapy 3-6 months)."""
    rng = sim.rng
    _supportive(sim)
    p0, t0 = _u(sim, 4.5, 7.0), _u(sim, 45, 95)
    fall = _u(sim, 0.5, 0.6)  # x 1.377 (noise, both ways) <= 0.85: each 3-monthly pair falls >= 15%
    t1 = rng.randint(30, 90)  # the first titer after the diagnosis, then every 11-13 weeks
    sim.titer = curve((0, t0), (t1, t0), (t1 + 90, t0 * fall), (t1 + 180, t0 * fall ** 2),
                      (t1 + 270, t0 * fall ** 3), (t1 + 360, _u(sim, 1.0, 4.0)))
    sim.proteinuria = curve((0, p0), (t1, p0 * _u(sim, 0.9, 1.0)), (t1 + 180, p0 * _u(sim, 0.35, 0.45)),
                            (t1 + 400, _u(sim, 0.8, 1.5)))
    sim.panels(sim.schedule([(0, 45, 75)]))
    sim.titers([0, *sim.schedule([(t1, 77, 91)])])


def mycophenolate_slow_response(sim: PatientSim) -> None:
    """Mycophenolate mofetil 1 g twice daily for 12 months with steroids, as in Branten AJ et al. Am J
    Kidney Dis 2007;50:248 (there with methylprednisolone pulses and alternate-day prednisone; here
    prednisone 0.5 mg/kg/d for 2 months, then 10 mg/d to month 6). Slow: proteinuria is still above
    half its peak at 6 months, the seed review's evaluation point (course_non_response), and a
    partial remission follows at 9-11 months (Branten: 66% remission by 12 months); the titer falls
    to negative over 8-10 months."""
    rng = sim.rng
    _supportive(sim)
    m = rng.randint(90, 180)
    stop = m + 365
    sim.med("mycophenolate", m, 1000.0, "mg", frequency="bid", end=stop)
    sim.med("glucocorticoid", m, max(25.0, round(sim.weight * 0.5 / 5) * 5), "mg", frequency="qd", end=m + 59)
    sim.med("glucocorticoid", m + 60, 10.0, "mg", frequency="qd", end=m + 182)
    p0 = _u(sim, 5.0, 8.0)
    # >= 0.85 x the start at 6 months: 0.85 x 0.76 (-2 SD) > 0.5 x 1.24 (a peak read +2 SD), so no
    # partial remission can be confirmed by noise before the evaluation point
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), (m, p0), (m + 90, p0 * _u(sim, 0.9, 1.0)),
                            (m + 190, p0 * _u(sim, 0.85, 0.95)), (m + 300, _u(sim, 1.4, 2.0)),
                            (m + 480, _u(sim, 0.7, 1.2)))
    t0 = _positive_titer(sim, 30, 150)
    sim.titer = curve((0, t0), (m, t0), (m + 150, t0 * 0.35), (m + 270, _u(sim, 4, 10)), (m + 400, _u(sim, 0.8, 4)))
    _standard_follow_up(sim, m, stop)


def acth_responder(sim: PatientSim) -> None:
    """ACTH gel 80 IU subcutaneously twice weekly for 6 months (Hladunewich MA et al. NDT
    2014;29:1570, 40 or 80 IU twice weekly in IMN); the seed review gives 55% remission at 9 months.
    This patient responds: partial remission within 5 months, before the 6-month evaluation point;
    the titer, when positive, falls to negative. Nothing to raise."""
    rng = sim.rng
    _supportive(sim)
    a = rng.randint(90, 180)
    stop = a + 182
    for first in (a, a + 3):  # twice weekly: two weekly records, three days apart
        sim.med("acth", first, 80.0, "iu", route="sc", frequency="qw", end=stop)
    p0 = _u(sim, 5.0, 8.0)
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), *_responding_proteinuria(sim, a, p0, lag=30))
    sim.titer = _maybe_positive_titer(sim, a)
    _standard_follow_up(sim, a, stop)


def belimumab_falling_titer(sim: PatientSim) -> None:
    """Belimumab 10 mg/kg IV every 4 weeks for two years, as in Barrett C et al. NDT 2020;35:599
    (belimumab alone in primary MN: proteinuria 724 mg/mmol at baseline, 498 at week 28, 130 at
    week 104): anti-PLA2R falls from the first months and is negative by 6 months, while proteinuria
    falls slowly; at 28 weeks, the point at which the seed review's case was judged, there is no
    remission yet (course_non_response), and a partial remission follows at 10-12 months."""
    rng = sim.rng
    _supportive(sim)
    b = rng.randint(90, 150)
    stop = b + 728
    sim.med("belimumab", b, 10.0, "mg/kg", route="iv", frequency="q4w", end=stop)
    p0 = _u(sim, 5.0, 8.0)
    # as for mycophenolate: >= 0.85 x the start at the evaluation point (day 196), whatever the noise
    sim.proteinuria = curve((0, p0 * _u(sim, 0.9, 1.0)), (b, p0), (b + 100, p0 * _u(sim, 0.9, 1.0)),
                            (b + 205, p0 * _u(sim, 0.85, 0.95)), (b + 330, _u(sim, 1.5, 2.2)),
                            (b + 540, _u(sim, 0.7, 1.3)))
    t0 = _positive_titer(sim, 40, 150)
    sim.titer = curve((0, t0), (b, t0), (b + 90, t0 * 0.4), (b + 180, _u(sim, 5, 11)), (b + 360, _u(sim, 0.8, 4)))
    _standard_follow_up(sim, b, stop)


def _rules(*ids: str) -> frozenset[str]:
    return frozenset(ids)


ARCHETYPES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype("quiet", "quiet", quiet.__doc__ or "", 0.41, _rules(), build=quiet),
        Archetype("spontaneous_remission", "sprem", spontaneous_remission.__doc__ or "", 0.06, _rules(),
                  build=spontaneous_remission),
        Archetype("rtx_responder", "rtxok", rituximab_responder.__doc__ or "", 0.04, _rules(),
                  build=rituximab_responder),
        Archetype("rtx_non_responder", "rtxnr", rituximab_non_responder.__doc__ or "", 0.035,
                  _rules("rtx_non_response"), build=rituximab_non_responder),
        Archetype("rtx_b_cell_not_depleted", "bcell", b_cell_not_depleted.__doc__ or "", 0.04,
                  _rules("rtx_b_cell_not_depleted"), build=b_cell_not_depleted),
        Archetype("relapse_after_remission", "relap", relapse_after_remission.__doc__ or "", 0.04,
                  _rules("relapse", "immunological_relapse", "titer_rising"), _rules("relapse"),
                  build=relapse_after_remission),
        Archetype("csa_low_trough_relapse", "csalo", cyclosporine_low_trough.__doc__ or "", 0.04,
                  _rules("csa_trough_low", "relapse"), build=cyclosporine_low_trough),
        Archetype("cni_over_exposure", "cnihi", cni_over_exposure.__doc__ or "", 0.035,
                  _rules("cni_trough_high", "egfr_decline"), build=cni_over_exposure),
        Archetype("tac_under_exposure", "taclo", tacrolimus_under_exposure.__doc__ or "", 0.03,
                  _rules("tac_trough_low", "course_non_response"), build=tacrolimus_under_exposure),
        Archetype("severe_hypoalbuminaemia", "albsv", severe_hypoalbuminaemia.__doc__ or "", 0.025,
                  _rules("albumin_low_thrombosis"), _rules("albumin_low_thrombosis"),
                  build=severe_hypoalbuminaemia),
        Archetype("moderate_hypoalbuminaemia", "albmd", moderate_hypoalbuminaemia.__doc__ or "", 0.025,
                  _rules("albumin_low_thrombosis"), build=moderate_hypoalbuminaemia),
        Archetype("anticoagulated_hypoalbuminaemia", "albac", anticoagulated_hypoalbuminaemia.__doc__ or "",
                  0.02, _rules(), build=anticoagulated_hypoalbuminaemia),
        Archetype("modified_ponticelli", "ponti", modified_ponticelli.__doc__ or "", 0.025,
                  _rules("ctx_cumulative_dose"), build=modified_ponticelli),
        Archetype("heavy_cyclophosphamide", "ctxhi", heavy_cyclophosphamide.__doc__ or "", 0.01,
                  _rules("ctx_cumulative_dose"), _rules("ctx_cumulative_dose"), build=heavy_cyclophosphamide),
        Archetype("lost_to_follow_up", "lost", lost_to_follow_up.__doc__ or "", 0.015,
                  _rules("monitoring_overdue", "course_non_response"), build=lost_to_follow_up),
        Archetype("titer_rising", "titup", titer_rising_on_supportive_care.__doc__ or "", 0.025,
                  _rules("titer_rising"), build=titer_rising_on_supportive_care),
        # every therapy of the seed review (issue 11)
        Archetype("cyclophosphamide_leukopenia", "leuko", cyclophosphamide_leukopenia.__doc__ or "", 0.02,
                  _rules("cytopenia", "ctx_cumulative_dose"), _rules("cytopenia"),
                  build=cyclophosphamide_leukopenia),
        Archetype("cni_non_responder", "cninr", cni_non_responder.__doc__ or "", 0.02,
                  _rules("course_non_response"), build=cni_non_responder),
        Archetype("rtx_partial_responder", "rtxpr", rituximab_partial_responder.__doc__ or "", 0.02,
                  _rules("rtx_redose_due"), build=rituximab_partial_responder),
        Archetype("csa_impaired_kidney_function", "csagf", cyclosporine_in_impaired_kidney_function.__doc__ or "",
                  0.015, _rules("csa_renal_impairment"), build=cyclosporine_in_impaired_kidney_function),
        Archetype("titer_falling_supportive", "tifal", titer_falling_on_supportive_care.__doc__ or "", 0.015,
                  _rules("titer_falling_supportive"), build=titer_falling_on_supportive_care),
        # the regimens of the seed review the outcome report had no course of
        Archetype("mycophenolate_slow_response", "mmfsl", mycophenolate_slow_response.__doc__ or "", 0.015,
                  _rules("course_non_response"), build=mycophenolate_slow_response),
        Archetype("acth_responder", "acth", acth_responder.__doc__ or "", 0.01, _rules(), build=acth_responder),
        Archetype("belimumab_falling_titer", "belim", belimumab_falling_titer.__doc__ or "", 0.01,
                  _rules("course_non_response"), build=belimumab_falling_titer),
    )
}
BY_CODE: dict[str, Archetype] = {a.code: a for a in ARCHETYPES.values()}
