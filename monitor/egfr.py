"""The eGFR series the rules read: one equation's values, CKD-EPI 2021 computed from creatinine where
the lab reported none.

Inker LA et al. NEJM 2021;385:1737-49 (docs/clinical-rules.md, "CKD-EPI 2021"):
eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female],
Scr in mg/dL, k = 0.7 (female) / 0.9 (male), a = -0.241 (female) / -0.302 (male).
"""

from __future__ import annotations

from datetime import date

from monitor.analytes import ANALYTES, CREATININE_MG_DL_TO_UMOL_L, EGFR_ANALYTES
from monitor.events import LabResult, construct_trusted
from monitor.timeline import Timeline

CKD_EPI_2021 = {
    "female": {"kappa": 0.7, "alpha": -0.241, "factor": 1.012},
    "male": {"kappa": 0.9, "alpha": -0.302, "factor": 1.0},
}
CKD_EPI_CONSTANT = 142.0
CKD_EPI_MAX_EXPONENT = -1.200
CKD_EPI_AGE_BASE = 0.9938
DERIVED_SOURCE = "ckd-epi-2021"
EGFR_UNIT = ANALYTES["egfr"].canonical_unit


def ckd_epi_2021(creatinine_umol_l: float, age_years: float, sex: str) -> float:
    """eGFR in mL/min/1.73 m2 from serum creatinine (umol/L), age and sex ('male'/'female')."""
    c = CKD_EPI_2021[sex]
    return _ckd_epi(creatinine_umol_l, age_years, c["kappa"], c["alpha"], c["factor"])


def _ckd_epi(creatinine_umol_l: float, age_years: float, kappa: float, alpha: float, factor: float) -> float:
    """ckd_epi_2021 with the sex's coefficients given: egfr_series looks them up once per patient."""
    scr = creatinine_umol_l / CREATININE_MG_DL_TO_UMOL_L
    ratio = scr / kappa
    return (CKD_EPI_CONSTANT * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** CKD_EPI_MAX_EXPONENT
            * CKD_EPI_AGE_BASE ** age_years * factor)


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def egfr_series(timeline: Timeline) -> tuple[LabResult, ...]:
    """egfr_series, computed once per (immutable) timeline: nightly runs reuse cached timelines."""
    held = timeline._derived.get("egfr")
    if held is None:
        held = timeline._derived["egfr"] = _egfr_series(timeline)
    return held  # type: ignore[return-value]


def _egfr_series(timeline: Timeline) -> tuple[LabResult, ...]:
    """The eGFR values of one equation (docs/clinical-rules.md, "eGFR equations").

    Values of two equations are never compared (a baseline of MDRD values against a CKD-EPI value
    would show a decline or a rise that is only the change of equation), so the series holds one:
    - CKD-EPI 2021, the monitor's own: the reported 2021 values (98979-8), and the value computed from
      each creatinine on a day without one (_ckd_epi_2021_series); or
    - another equation the lab reported (CKD-EPI 2009, MDRD, with or without a race coefficient),
      when its latest value is later than the latest CKD-EPI 2021 one: a lab that reports only
      another equation and no creatinine (or a patient without birth date or sex) still has a series.
    The equation of the latest value wins; on the same day CKD-EPI 2021 first, then EGFR_ANALYTES'
    order. So where creatinine is present, its CKD-EPI 2021 value is used.
    """
    ckd_epi_2021 = _ckd_epi_2021_series(timeline)
    others = [s for key in EGFR_ANALYTES[1:] if (s := timeline.series(key))]
    if not others:
        return ckd_epi_2021  # the usual case: no other equation reported
    candidates = ([ckd_epi_2021] if ckd_epi_2021 else []) + others
    # the latest day wins; max() keeps the first of equal days, i.e. the preferred equation
    return max(candidates, key=lambda s: s[-1].effective_date)


def _ckd_epi_2021_series(timeline: Timeline) -> tuple[LabResult, ...]:
    """Reported CKD-EPI 2021 eGFR values, plus CKD-EPI 2021 from creatinine on days with none.

    Needs birth date and sex (male/female); without them only reported values are returned.
    A computed value carries source 'ckd-epi-2021' and the creatinine's identity as source_id.
    """
    reported = timeline.series("egfr")
    p = timeline.patient
    if p is None or p.birth_date is None or p.sex not in CKD_EPI_2021:
        return reported
    # days with a reported eGFR, as date ordinals (see timeline.SeriesArrays); most patients have none
    days = set(timeline.arrays(reported).days) if reported else set()
    low, high = ANALYTES["egfr"].plausible
    c = CKD_EPI_2021[p.sex]
    kappa, alpha, factor = c["kappa"], c["alpha"], c["factor"]
    birth = p.birth_date
    computed = []
    for cr in timeline.series("serum_creatinine"):
        if days and cr.effective_at.toordinal() in days:
            continue
        # the age on the creatinine's date: effective_at has that date's year, month and day
        value = round(_ckd_epi(cr.value, age_on(birth, cr.effective_at), kappa, alpha, factor), 1)
        if not low <= value <= high:
            # BUG FIX: a very low (but accepted) creatinine gave an eGFR above the plausible limit
            # (e.g. 5 umol/L, male, 19 y: 291), and validating it raised out of assess(). Such a
            # value says nothing about kidney function: it is left out, like any implausible result.
            continue
        # built without re-validation: every field is already canonical (the creatinine's aware
        # time, the egfr canonical unit, a value checked just above); validation was ~10% of assess(),
        # and its 200-character limit on source_id (meant for input) rejected long creatinine identities.
        # construct_trusted = model_construct without its per-field walk (a new event per creatinine).
        computed.append(construct_trusted(LabResult, {
            "patient_id": cr.patient_id, "analyte": "egfr", "value": value, "unit": EGFR_UNIT,
            "effective_at": cr.effective_at, "source": DERIVED_SOURCE, "source_id": cr.identity,
            "status": cr.status,
        }))
    if not computed:
        return reported
    if not reported:
        # already in order: creatinines are in clinical order, i.e. by (effective_at, identity)
        # within one analyte, and each computed identity is one common prefix + the creatinine's
        # identity, so (effective_at, identity) orders the computed values the same way
        return tuple(computed)
    return tuple(sorted((*reported, *computed), key=lambda r: (r.effective_at, r.identity)))
