"""monitor.egfr: the race-free CKD-EPI 2021 creatinine equation (Inker LA et al. NEJM 2021;385:1737-49),
and the eGFR series the rules read (reported values; computed ones only where none was reported).

Reference values:
- whole-number results as the NKF CKD-EPI 2021 calculator (kidney.org) reports them, quoted in
  public calculator test suites: male 55 y, Scr 1.2 mg/dL -> 71; male 50 y, Scr 1.1 mg/dL -> 82;
- one-decimal values worked by hand from the published coefficients (142; kappa 0.7 F / 0.9 M;
  alpha -0.241 F / -0.302 M; -1.200 above kappa; 0.9938^age; x1.012 female), e.g. female 60 y,
  Scr 1.0 mg/dL: 142 x (1.0/0.7)^-1.2 x 0.9938^60 x 1.012 = 142 x 0.65180 x 0.68855 x 1.012 = 64.5.
"""

from __future__ import annotations

import pytest

from monitor.analytes import CREATININE_MG_DL_TO_UMOL_L
from monitor.egfr import DERIVED_SOURCE, age_on, ckd_epi_2021, egfr_series
from tests.unit.rules.builders import PID, day, lab, patient, timeline

MG_DL = CREATININE_MG_DL_TO_UMOL_L  # 88.42 umol/L per mg/dL


@pytest.mark.parametrize(("scr_mg_dl", "age", "sex", "calculator"), [
    (1.2, 55, "male", 71),
    (1.1, 50, "male", 82),
])
def test_matches_the_nkf_calculator(scr_mg_dl: float, age: int, sex: str, calculator: int) -> None:
    assert round(ckd_epi_2021(scr_mg_dl * MG_DL, age, sex)) == calculator


@pytest.mark.parametrize(("scr_mg_dl", "age", "sex", "worked"), [
    (1.2, 55, "male", 71.4),      # above kappa: exponent -1.200
    (1.0, 60, "female", 64.5),    # above kappa, female factor 1.012
    (0.5, 30, "female", 129.3),   # below kappa: 142 x (0.5/0.7)^-0.241 x 0.9938^30 x 1.012
    (0.6, 40, "male", 125.1),     # below kappa: 142 x (0.6/0.9)^-0.302 x 0.9938^40 = 142 x 1.13026 x 0.77974
    (2.0, 70, "male", 35.2),
])
def test_matches_worked_values(scr_mg_dl: float, age: int, sex: str, worked: float) -> None:
    assert ckd_epi_2021(scr_mg_dl * MG_DL, age, sex) == pytest.approx(worked, abs=0.05)


@pytest.mark.parametrize(("sex", "kappa", "at_kappa"), [("female", 0.7, 142 * 1.012), ("male", 0.9, 142.0)])
def test_both_branches_meet_at_kappa(sex: str, kappa: float, at_kappa: float) -> None:
    # at Scr = kappa both power terms are 1: eGFR = 142 x 0.9938^age (x 1.012 female)
    assert ckd_epi_2021(kappa * MG_DL, 0, sex) == pytest.approx(at_kappa)
    assert ckd_epi_2021(kappa * MG_DL, 50, sex) == pytest.approx(at_kappa * 0.9938 ** 50)


def test_age_in_whole_years_on_the_sample_date() -> None:
    assert age_on(day("1970-06-15"), day("2025-06-14")) == 54
    assert age_on(day("1970-06-15"), day("2025-06-15")) == 55


def test_computed_only_where_no_egfr_was_reported() -> None:
    p = patient(PID, birth_date="1970-06-15", sex="female")
    cr1 = lab(PID, "serum_creatinine", 1.0, "mg/dL", "2025-06-14")
    cr2 = lab(PID, "serum_creatinine", 1.0, "mg/dL", "2025-07-01")
    reported = lab(PID, "egfr", 70, "mL/min/1.73m2", "2025-07-01")
    series = egfr_series(timeline([p, cr1, cr2, reported]))
    assert [(r.effective_date.isoformat(), r.value, r.source) for r in series] == [
        ("2025-06-14", round(ckd_epi_2021(MG_DL, 54, "female"), 1), DERIVED_SOURCE),  # age 54 that day
        ("2025-07-01", 70.0, None),  # the lab's own eGFR wins over a computed one
    ]
    computed = series[0]
    assert (computed.analyte, computed.unit, computed.source_id, computed.status) == (
        "egfr", "mL/min/1.73m2", cr1.identity, "final")
    assert computed.value == 66.9  # 142 x 0.65180 x 0.9938^54 (0.71476) x 1.012 = 66.947 -> 66.9


@pytest.mark.parametrize("fields", [{}, {"sex": "female"}, {"birth_date": "1970-01-01"},
                                    {"birth_date": "1970-01-01", "sex": "unknown"}])
def test_without_age_and_sex_only_reported_values(fields: dict[str, str]) -> None:
    events = [patient(PID, **fields), lab(PID, "serum_creatinine", 90, "umol/L", 10),
              lab(PID, "egfr", 80, "mL/min/1.73m2", 20)]
    assert [r.value for r in egfr_series(timeline(events))] == [80.0]


def test_no_patient_record_only_reported_values() -> None:
    events = [lab(PID, "serum_creatinine", 90, "umol/L", 10)]
    assert egfr_series(timeline(events)) == ()


def test_very_low_creatinine_of_a_young_man_does_not_crash() -> None:
    # 6 umol/L is accepted by the creatinine plausibility range (5-3000) but computes to 273.7:
    # an implausible eGFR is left out (egfr.py fix), not raised out of assess()
    events = [patient(PID, birth_date="2005-01-01", sex="male"), lab(PID, "serum_creatinine", 6, "umol/L", 0)]
    assert egfr_series(timeline(events)) == ()


def test_long_source_identity_does_not_crash() -> None:
    # a derived value is built without input validation (egfr.py), so the creatinine's long identity
    # as its source_id no longer meets the 200-character limit meant for input events
    cr = lab(PID, "serum_creatinine", 90, "umol/L", 0, source="s" * 120, source_id="i" * 100)
    (computed,) = egfr_series(timeline([patient(PID, birth_date="1970-01-01", sex="male"), cr]))
    assert computed.source_id == cr.identity


# ------------------------------------------------------------------ one equation per series


def egfr_of(key: str, value: float, on: int) -> object:
    return lab(PID, key, value, "mL/min/1.73m2", on)


def test_another_equation_alone_is_the_series() -> None:
    # no creatinine, a lab that reports MDRD: the series is MDRD, every value tagged with it
    t = timeline([patient(birth_date="1960-01-01", sex="male"), egfr_of("egfr_mdrd", 70, 0),
                  egfr_of("egfr_mdrd", 66, 30)])
    assert [(r.analyte, r.value) for r in egfr_series(t)] == [("egfr_mdrd", 70.0), ("egfr_mdrd", 66.0)]


def test_where_creatinine_is_present_the_monitors_own_ckd_epi_2021_is_used() -> None:
    # the lab reports MDRD beside each creatinine: the series is CKD-EPI 2021 computed from the creatinine
    t = timeline([patient(birth_date="1970-01-01", sex="male"),
                  lab(PID, "serum_creatinine", 1.2, "mg/dL", 0), egfr_of("egfr_mdrd", 63, 0),
                  lab(PID, "serum_creatinine", 1.3, "mg/dL", 30), egfr_of("egfr_mdrd", 58, 30)])
    series = egfr_series(t)
    assert [r.analyte for r in series] == ["egfr", "egfr"] and all(r.source == DERIVED_SOURCE for r in series)


def test_values_of_two_equations_are_never_mixed_the_latest_equation_wins() -> None:
    t = timeline([egfr_of("egfr", 80, 0), egfr_of("egfr", 82, 30), egfr_of("egfr_ckd_epi_2009", 60, 60)])
    assert [(r.analyte, r.value) for r in egfr_series(t)] == [("egfr_ckd_epi_2009", 60.0)]
    t = timeline([egfr_of("egfr_ckd_epi_2009", 60, 0), egfr_of("egfr", 80, 30)])
    assert [(r.analyte, r.value) for r in egfr_series(t)] == [("egfr", 80.0)]


def test_both_race_variants_of_one_draw_give_the_one_without_the_race_coefficient() -> None:
    t = timeline([egfr_of("egfr_ckd_epi_2009_black", 70, 0), egfr_of("egfr_ckd_epi_2009_non_black", 58, 0),
                  egfr_of("egfr_mdrd", 55, 0)])
    assert [(r.analyte, r.value) for r in egfr_series(t)] == [("egfr_ckd_epi_2009_non_black", 58.0)]


def test_a_change_of_equation_is_not_a_decline() -> None:
    from tests.unit.rules.builders import findings_of

    # CKD-EPI 2021 80, 80, then the lab switches to MDRD, which reads 58 for the same kidney: no decline
    switched = [egfr_of("egfr", 80, 0), egfr_of("egfr", 80, 60), egfr_of("egfr_mdrd", 58, 120)]
    assert findings_of("egfr_decline", switched, day(120)) == []
    # a fall within one equation still fires, and the message names the equation
    mdrd = [egfr_of("egfr_mdrd", 80, 0), egfr_of("egfr_mdrd", 80, 60), egfr_of("egfr_mdrd", 58, 120)]
    [f] = findings_of("egfr_decline", mdrd, day(120))
    assert "eGFR 58 mL/min/1.73 m\u00b2 (MDRD) on" in f.message and "28% below" in f.message
    assert {e.name for e in f.evidence if e.kind == "lab"} == {"egfr_mdrd"}


def test_the_summary_names_the_equation_of_the_latest_egfr() -> None:
    from tests.unit.rules.builders import assess_on

    latest = assess_on([egfr_of("egfr_mdrd_non_black", 48.6, 0)], day(1)).summary()["latest"]["egfr"]
    assert (latest["analyte"], latest["equation"], latest["value"]) == ("egfr_mdrd_non_black", "MDRD, non-Black", 48.6)
    assert latest["display"] == "49 mL/min/1.73 m\u00b2 (MDRD, non-Black)"
    own = assess_on([egfr_of("egfr", 61.2, 0)], day(1)).summary()["latest"]["egfr"]
    assert own["equation"] == "CKD-EPI 2021" and "analyte" not in own and own["display"] == "61 mL/min/1.73 m\u00b2"
