"""The analyte catalogue (monitor/analytes.py): every conversion factor of docs/clinical-rules.md,
checked against pint where pint can express it, lenient spellings, rejected units, LOINC codes and
their equation tags, refused codes, limits."""

from __future__ import annotations

import pint
import pytest

from monitor.analytes import (
    ANALYTES,
    EGFR_ANALYTES,
    REFUSED_LOINC,
    ImplausibleValueError,
    RefusedCodeError,
    UnitError,
    UnknownAnalyteError,
    analyte,
    normalise_unit,
)

UREG = pint.UnitRegistry()
Q = UREG.Quantity

CREATININE_G_PER_MOL = 113.12  # docs/clinical-rules.md, "Units"
CYCLOSPORINE_G_PER_MOL = 1202.6
TACROLIMUS_G_PER_MOL = 804.0


def factor(key: str, unit: str) -> float:
    return ANALYTES[key].to_canonical(1.0, unit)


# (analyte, unit, factor to canonical) exactly as docs/clinical-rules.md states them
STATED_FACTORS = [
    ("anti_pla2r", "RU/mL", 1.0), ("anti_pla2r", "U/mL", 1.0),
    ("proteinuria_24h", "g/d", 1.0), ("proteinuria_24h", "g/24h", 1.0),
    ("proteinuria_24h", "mg/d", 0.001), ("proteinuria_24h", "mg/24h", 0.001),
    ("upcr", "g/g", 1.0), ("upcr", "mg/mg", 1.0), ("upcr", "mg/g", 0.001),
    ("upcr", "mg/mmol", 0.00884), ("upcr", "g/mmol", 8.84),
    ("serum_albumin", "g/L", 1.0), ("serum_albumin", "g/dL", 10.0), ("serum_albumin", "mg/dL", 0.01),
    ("serum_creatinine", "umol/L", 1.0), ("serum_creatinine", "mg/dL", 88.42),
    *((key, "mL/min/1.73m2", 1.0) for key in EGFR_ANALYTES),  # every equation: no conversion
    ("csa_trough", "ng/mL", 1.0), ("csa_trough", "ug/L", 1.0), ("csa_trough", "nmol/L", 1.2026),
    ("tac_trough", "ng/mL", 1.0), ("tac_trough", "ug/L", 1.0), ("tac_trough", "nmol/L", 0.8040),
    ("cd19_count", "cells/uL", 1.0), ("cd19_count", "/mm3", 1.0), ("cd19_count", "10^6/L", 1.0),
    ("cd19_count", "10^9/L", 1000.0),
    # blood counts (issue 11): 10^9/L = 10^3/uL = K/uL = G/L; cells/uL / 1000
    *[(key, unit, f) for key in ("wbc", "neutrophils") for unit, f in (
        ("10^9/L", 1.0), ("10^3/uL", 1.0), ("10^3/mm3", 1.0), ("K/uL", 1.0), ("G/L", 1.0),
        ("x10E9/L", 1.0), ("x10E3/uL", 1.0), ("thou/uL", 1.0), ("cells/uL", 0.001), ("/mm3", 0.001))],
]


@pytest.mark.parametrize(("key", "unit", "expected"), STATED_FACTORS)
def test_stated_factor(key: str, unit: str, expected: float) -> None:
    assert factor(key, unit) == pytest.approx(expected, rel=1e-12)


def test_every_accepted_unit_has_a_stated_factor() -> None:
    stated = {(k, normalise_unit(u)) for k, u, _ in STATED_FACTORS}
    for a in ANALYTES.values():
        for unit in a.units:
            assert (a.key, normalise_unit(unit)) in stated, f"{a.key} {unit} has no checked factor"


# pint: the same conversions from first principles (molar masses where a mass <-> amount is needed)
PINT_CHECKS = [
    ("serum_albumin", "g/dL", Q(1, "g/dL").to("g/L").magnitude, 1e-12),
    ("serum_albumin", "mg/dL", Q(1, "mg/dL").to("g/L").magnitude, 1e-12),
    ("proteinuria_24h", "mg/d", Q(1, "mg/day").to("g/day").magnitude, 1e-12),
    ("upcr", "mg/g", Q(1, "mg/g").to("g/g").magnitude, 1e-12),
    # UPCR mg protein per mmol creatinine -> g/g via creatinine 113.12 g/mol; 0.00884 is rounded
    ("upcr", "mg/mmol",
     (Q(1, "mg/mmol") / Q(CREATININE_G_PER_MOL, "g/mol")).to("dimensionless").magnitude, 5e-5),
    # 88.42 is the conventional factor; 113.12 g/mol gives 88.40 (0.02% apart: clinically equal)
    ("serum_creatinine", "mg/dL",
     (Q(1, "mg/dL") / Q(CREATININE_G_PER_MOL, "g/mol")).to("umol/L").magnitude, 5e-4),
    ("csa_trough", "nmol/L", (Q(1, "nmol/L") * Q(CYCLOSPORINE_G_PER_MOL, "g/mol")).to("ng/mL").magnitude, 1e-12),
    ("tac_trough", "nmol/L", (Q(1, "nmol/L") * Q(TACROLIMUS_G_PER_MOL, "g/mol")).to("ng/mL").magnitude, 1e-12),
    ("csa_trough", "ug/L", Q(1, "ug/L").to("ng/mL").magnitude, 1e-12),
    ("cd19_count", "10^9/L", Q(1e9, "1/L").to("1/uL").magnitude, 1e-12),
    ("cd19_count", "10^6/L", Q(1e6, "1/L").to("1/uL").magnitude, 1e-12),
    ("cd19_count", "/mm3", Q(1, "1/mm**3").to("1/uL").magnitude, 1e-12),
    # a count per volume: every spelling of a blood count is the same quantity in 10^9/L
    *[(key, unit, Q(count, per).to("1/L").magnitude / 1e9, 1e-12)
      for key in ("wbc", "neutrophils")
      for unit, count, per in (("10^9/L", 1e9, "1/L"), ("10^3/uL", 1e3, "1/uL"), ("10^3/mm3", 1e3, "1/mm**3"),
                               ("K/uL", 1e3, "1/uL"), ("G/L", 1, "gigacount/L"), ("x10E3/uL", 1e3, "1/uL"),
                               ("thou/uL", 1e3, "1/uL"), ("cells/uL", 1, "1/uL"), ("/mm3", 1, "1/mm**3"))],
]


@pytest.mark.parametrize(("key", "unit", "expected", "rel"), PINT_CHECKS)
def test_factor_agrees_with_pint(key: str, unit: str, expected: float, rel: float) -> None:
    assert factor(key, unit) == pytest.approx(expected, rel=rel)


def test_creatinine_conventional_factor_is_not_the_pint_one_exactly() -> None:
    # documents the 0.02% difference, so a change of either number is a visible decision
    pint_factor = (Q(1, "mg/dL") / Q(CREATININE_G_PER_MOL, "g/mol")).to("umol/L").magnitude
    assert factor("serum_creatinine", "mg/dL") - pint_factor == pytest.approx(0.018, abs=0.001)


@pytest.mark.parametrize(("key", "spelling", "expected"), [
    ("serum_creatinine", "umol/L", 1.0), ("serum_creatinine", "\u00b5mol/L", 1.0),
    ("serum_creatinine", "\u03bcmol/L", 1.0), ("serum_creatinine", "umol/l", 1.0),
    ("serum_creatinine", "mcmol/L", 1.0), ("serum_creatinine", "MG/DL", 88.42),
    ("cd19_count", "cells/uL", 1.0), ("cd19_count", "cells/\u00b5L", 1.0), ("cd19_count", "/uL", 1.0),
    ("cd19_count", "10*9/L", 1000.0), ("cd19_count", "x10^9/L", 1000.0), ("cd19_count", "10*6/L", 1.0),
    ("cd19_count", "{cells}/uL", 1.0), ("cd19_count", "cells/mm3", 1.0),
    ("proteinuria_24h", "g/24 h", 1.0), ("proteinuria_24h", "mg/24h", 0.001),
    ("proteinuria_24h", "mg/24 hours", 0.001), ("proteinuria_24h", "g/day", 1.0),
    ("serum_albumin", "g/l", 1.0), ("serum_albumin", " g / dL ", 10.0),
    ("csa_trough", "\u00b5g/L", 1.0), ("csa_trough", "mcg/L", 1.0), ("csa_trough", "ng/ml", 1.0),
    # blood counts as laboratories spell them (UCUM, SI, US reference laboratories, per microlitre)
    ("wbc", "10*9/L", 1.0), ("wbc", "x10^9/L", 1.0), ("wbc", "\u00d710^9/L", 1.0), ("wbc", "10^9/l", 1.0),
    ("wbc", "10*3/uL", 1.0), ("wbc", "10^3/\u00b5L", 1.0), ("wbc", "x10^3/uL", 1.0), ("wbc", "K/\u00b5L", 1.0),
    ("wbc", "K/mcL", 1.0), ("wbc", "k/ul", 1.0), ("wbc", "G/l", 1.0), ("wbc", "x10E3/uL", 1.0),
    ("wbc", "Thou/uL", 1.0), ("wbc", "cells/uL", 0.001), ("wbc", "/uL", 0.001), ("wbc", "/\u00b5L", 0.001),
    ("wbc", "cells/\u00b5L", 0.001), ("wbc", "{cells}/uL", 0.001), ("wbc", "cells/mm3", 0.001),
    ("neutrophils", "10*9/L", 1.0), ("neutrophils", "10^3/uL", 1.0), ("neutrophils", "K/uL", 1.0),
    ("neutrophils", "G/L", 1.0), ("neutrophils", "cells/uL", 0.001), ("neutrophils", "/uL", 0.001),
])
def test_lenient_spellings(key: str, spelling: str, expected: float) -> None:
    assert factor(key, spelling) == pytest.approx(expected)


@pytest.mark.parametrize(("key", "unit"), [
    ("serum_albumin", "mg/mmol"),  # a UPCR unit
    ("serum_albumin", "umol/L"),  # a creatinine unit: albumin in umol/L needs a molar mass
    ("serum_creatinine", "g/L"),  # an albumin unit
    ("serum_creatinine", "mmol/L"),  # not listed: quarantined, never guessed
    ("anti_pla2r", "ng/mL"),
    ("proteinuria_24h", "g/g"),  # a ratio is not a 24-h amount
    ("upcr", "g/d"),
    ("csa_trough", "mg/dL"),
    ("cd19_count", "%"),  # a percentage of lymphocytes is not a count
    ("neutrophils", "%"),  # a differential percentage is not an absolute count
    ("wbc", "10^6/L"),  # not a white-cell unit any laboratory uses: never guessed
    ("wbc", "g/dL"),  # a mass concentration
    ("neutrophils", "/L"),
    ("egfr", "mL/min"),  # not normalised to 1.73 m2
    ("serum_albumin", "bananas"),
    ("serum_albumin", ""),
    ("serum_albumin", "g/dLL"),
])
def test_unit_of_another_analyte_or_nonsense_is_rejected(key: str, unit: str) -> None:
    with pytest.raises(UnitError) as exc:
        ANALYTES[key].to_canonical(1.0, unit)
    assert key in str(exc.value) and "not accepted" in str(exc.value)
    assert exc.value.field == "unit"


@pytest.mark.parametrize(("code", "key"), [
    ("73737-9", "anti_pla2r"), ("2889-4", "proteinuria_24h"),
    ("2890-2", "upcr"), ("34366-5", "upcr"), ("13801-6", "upcr"), ("40486-3", "upcr"),
    ("1751-7", "serum_albumin"),
    ("2160-0", "serum_creatinine"), ("14682-9", "serum_creatinine"),
    ("38483-4", "serum_creatinine"), ("59826-8", "serum_creatinine"),
    ("98979-8", "egfr"),
    ("62238-1", "egfr_ckd_epi_2009"), ("88293-6", "egfr_ckd_epi_2009_black"),
    ("88294-4", "egfr_ckd_epi_2009_non_black"),
    ("33914-3", "egfr_mdrd"), ("48642-3", "egfr_mdrd_non_black"), ("48643-1", "egfr_mdrd_black"),
    ("3520-4", "csa_trough"), ("53828-0", "csa_trough"),
    ("11253-2", "tac_trough"), ("77348-1", "tac_trough"),
    ("8116-6", "cd19_count"),
    ("6690-2", "wbc"), ("26464-8", "wbc"), ("751-8", "neutrophils"), ("26499-4", "neutrophils"),
])
def test_loinc_lookup(code: str, key: str) -> None:
    assert analyte(code).key == key
    assert analyte(f" {code} ").key == key


@pytest.mark.parametrize("typo", ["34366-2", "8116-2", "11253-5"])
def test_the_typos_of_an_earlier_rule_book_are_not_codes(typo: str) -> None:
    # these failed LOINC's check digit: results coded with the real codes were quarantined
    with pytest.raises(UnknownAnalyteError):
        analyte(typo)


def test_cd19_percentage_is_refused_with_its_reason_not_read_as_a_count() -> None:
    with pytest.raises(RefusedCodeError) as exc:
        analyte("8117-4")
    assert str(exc.value).startswith("CD19 % is not a count") and exc.value.field == "analyte"
    assert "8116-6" in str(exc.value)  # says what to send instead
    assert set(REFUSED_LOINC) == {"8117-4"}


@pytest.mark.parametrize(("key", "equation"), [
    ("egfr", "CKD-EPI 2021"), ("egfr_ckd_epi_2009", "CKD-EPI 2009"),
    ("egfr_ckd_epi_2009_black", "CKD-EPI 2009, Black"), ("egfr_ckd_epi_2009_non_black", "CKD-EPI 2009, non-Black"),
    ("egfr_mdrd", "MDRD"), ("egfr_mdrd_black", "MDRD, Black"), ("egfr_mdrd_non_black", "MDRD, non-Black"),
])
def test_every_reported_egfr_is_tagged_with_its_equation(key: str, equation: str) -> None:
    assert ANALYTES[key].equation == equation
    assert ANALYTES[key].canonical_unit == "mL/min/1.73m2"


def test_only_egfr_analytes_carry_an_equation_and_ckd_epi_2021_is_preferred() -> None:
    assert EGFR_ANALYTES[0] == "egfr"
    assert {k for k, a in ANALYTES.items() if a.equation} == set(EGFR_ANALYTES)
    assert all(a.equation is None for k, a in ANALYTES.items() if not k.startswith("egfr"))


def test_key_and_alias_lookup_and_unknown() -> None:
    assert analyte("ANTI_PLA2R").key == "anti_pla2r"
    assert analyte("PLA2R").key == "anti_pla2r"
    assert analyte("albumin").key == "serum_albumin"
    with pytest.raises(UnknownAnalyteError) as exc:
        analyte("12345-6")
    assert "12345-6" in str(exc.value) and exc.value.field == "analyte"
    with pytest.raises(UnknownAnalyteError):
        analyte("ferritin")


@pytest.mark.parametrize(("key", "ok", "bad"), [
    ("serum_albumin", [3.0, 80.0], [2.9, 80.1, -1.0]),
    ("proteinuria_24h", [0.0, 50.0], [50.01, -0.1]),
    ("upcr", [0.0, 50.0], [50.01, -0.1]),
    ("serum_creatinine", [5.0, 3000.0], [4.9, 3000.1]),
    ("egfr", [0.0, 250.0], [-1.0, 250.1]),
    ("anti_pla2r", [0.0, 100_000.0], [-0.1]),
    ("tac_trough", [0.0, 200.0], [200.1]),
    ("csa_trough", [0.0, 5000.0], [5000.1]),
    ("cd19_count", [0.0, 10_000.0], [-1.0, 10_000.1]),
    ("wbc", [0.0, 0.1, 1000.0], [-0.1, 1000.1, 6500.0]),  # 6500: cells/uL sent as 10^9/L
    ("neutrophils", [0.0, 1000.0], [-0.1, 1000.1]),
])
def test_plausibility_limits(key: str, ok: list[float], bad: list[float]) -> None:
    spec = ANALYTES[key]
    for v in ok:
        spec.check_plausible(v)
    for v in bad:
        with pytest.raises(ImplausibleValueError) as exc:
            spec.check_plausible(v)
        assert exc.value.field == "value" and key in str(exc.value)


def test_every_analyte_has_loinc_canonical_unit_and_limits() -> None:
    for a in ANALYTES.values():
        assert a.loinc, a.key
        assert a.to_canonical(1.0, a.canonical_unit) == 1.0
        low, high = a.plausible
        assert 0 <= low < high


def test_a_count_in_cells_per_microlitre_is_stored_in_10e9_per_litre_with_the_reported_value() -> None:
    from monitor.events import parse_event

    r = parse_event({"type": "lab", "patient_id": "P1", "analyte": "751-8", "value": 850, "unit": "cells/uL",
                     "effective_at": "2025-03-01"})
    assert (r.analyte, r.value, r.unit) == ("neutrophils", 0.85, "10^9/L")  # type: ignore[union-attr]
    assert (r.reported_value, r.reported_unit) == (850, "cells/uL")  # type: ignore[union-attr]


def test_the_neutrophil_percentage_code_is_not_read_as_a_count() -> None:
    with pytest.raises(UnknownAnalyteError):
        analyte("770-8")  # Neutrophils/100 leukocytes in Blood: a percentage
