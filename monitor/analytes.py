"""The analyte catalogue: keys, canonical units, accepted units with their factors, LOINC codes,
plausibility limits and display precision. The single place where unit conversions, physiological
limits and the precision values are shown at live (docs/clinical-rules.md, "Units", "LOINC codes",
"Display precision").

Conversion factors (docs/clinical-rules.md, "Units"):
- UPCR: mg/mmol x 0.00884 = g/g (creatinine 113.12 g/mol: 1 mmol = 113.12 mg, 1/113.12 = 0.00884).
  This exact factor gives the stored g/g value; the proteinuria the rules judge a mg/mmol result by
  follows KDIGO's own pairing of the units (mg/mmol / 100 ~ g/d), see monitor/proteinuria.py.
- Serum creatinine: mg/dL x 88.42 = umol/L.
- Serum albumin: g/dL x 10 = g/L; mg/dL x 0.01 = g/L.
- Cyclosporine: nmol/L x 1.2026 = ng/mL (MW 1202.6). Tacrolimus: nmol/L x 0.8040 = ng/mL (MW 804.0).
- CD19: 10^6/L = cells/uL; 10^9/L x 1000 = cells/uL.
- White cells and neutrophils (canonical 10^9/L): 10^9/L = 10^3/uL = K/uL = G/L (giga per litre);
  cells/uL (= /mm3) / 1000 = 10^9/L.
A unit that is not listed for its analyte raises UnitError: it is never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


class FieldError(ValueError):
    """A validation failure that belongs to one input field (named in error reports)."""

    field = "(event)"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        if field is not None:
            self.field = field


class UnitError(FieldError):
    """A unit that is not accepted for the analyte (the value is quarantined, never guessed)."""

    field = "unit"


class ImplausibleValueError(FieldError):
    """A value outside what is physiologically possible for the analyte."""

    field = "value"


class UnknownAnalyteError(FieldError):
    """An analyte key or LOINC code that the catalogue does not know."""

    field = "analyte"


@dataclass(frozen=True)
class Analyte:
    key: str
    label: str
    canonical_unit: str
    # unit as labs spell it -> factor that multiplies a value into the canonical unit
    units: Mapping[str, float]
    loinc: tuple[str, ...]
    # values outside [low, high] (canonical unit) are physiologically impossible: quarantined
    plausible: tuple[float, float]
    aliases: tuple[str, ...] = field(default=())
    # decimals a laboratory reports in the canonical unit: what people are shown (monitor.display);
    # the stored value keeps full precision
    decimals: int = 2
    # a reported eGFR: the equation it was computed with. A baseline or a decline compares the values
    # of one equation only (monitor.egfr.egfr_series); None for every other analyte
    equation: str | None = None

    def __post_init__(self) -> None:
        normalised = MappingProxyType({normalise_unit(k): v for k, v in self.units.items()})
        object.__setattr__(self, "_normalised", normalised)

    def to_canonical(self, value: float, unit: str) -> float:
        """Convert `value` in `unit` to the canonical unit, or raise UnitError naming the unit."""
        factor = self._normalised.get(normalise_unit(unit))  # type: ignore[attr-defined]
        if factor is None:
            accepted = ", ".join(self.units)
            raise UnitError(f"unit {unit!r} is not accepted for {self.key} (accepted: {accepted})")
        return value * factor

    def check_plausible(self, canonical_value: float) -> None:
        low, high = self.plausible
        if not (low <= canonical_value <= high):
            raise ImplausibleValueError(
                f"{canonical_value:g} {self.canonical_unit} is outside the plausible range for "
                f"{self.key} ({low:g}-{high:g} {self.canonical_unit})"
            )


_SPACES = re.compile(r"\s+")


def normalise_unit(unit: str) -> str:
    """Normalise a lab's unit spelling to one key, leniently but exactly in meaning.

    micro sign / Greek mu / 'u' / 'mc' are the same prefix; litre case does not matter; '24h',
    '24 h', 'd' and 'day' are one day; UCUM '10*9/L' equals '10^9/L'; 'cells/' is optional.
    """
    u = _SPACES.sub("", unit.strip())
    u = u.replace("\u00b5", "u").replace("\u03bc", "u")
    u = u.lower()
    u = u.replace("mcg", "ug").replace("mcmol", "umol").replace("mcl", "ul")
    u = u.replace("10*", "10^").replace("x10^", "10^").replace("\u00d710^", "10^")
    u = re.sub(r"/(24hours?|24hrs?|24h|day|d)$", "/d", u)
    u = u.replace("cells/", "/").replace("{cells}/", "/")
    u = u.replace("m^2", "m2").replace("m\u00b2", "m2")
    return u


def _factors(pairs: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(pairs))


UPCR_MG_PER_MMOL_TO_G_PER_G = 0.00884  # creatinine 113.12 g/mol (docs/clinical-rules.md, "Units")
CREATININE_MG_DL_TO_UMOL_L = 88.42
CSA_NMOL_L_TO_NG_ML = 1.2026  # cyclosporine MW 1202.6
TAC_NMOL_L_TO_NG_ML = 0.8040  # tacrolimus MW 804.0 (anhydrous)
# blood counts: 1 x 10^9/L = 10^9 cells per 10^6 uL = 1000 cells/uL
CELLS_PER_UL_TO_10E9_PER_L = 0.001
# the spellings laboratories use for a blood count, with their factor to 10^9/L: the UCUM forms
# (10*9/L, 10*3/uL), the SI 'G/L' (giga per litre, French and Swiss labs), the US K/uL and x10E3/uL
# (LabCorp) and 'thou/uL', and counts per microlitre (= per mm3). normalise_unit folds case, so
# 'G/L' and 'g/L' are one key: grams per litre is never a unit of a count, so nothing is confused.
BLOOD_COUNT_UNITS: Mapping[str, float] = MappingProxyType({
    "10^9/L": 1.0, "10^3/uL": 1.0, "10^3/mm3": 1.0, "K/uL": 1.0, "G/L": 1.0, "x10E9/L": 1.0,
    "x10E3/uL": 1.0, "thou/uL": 1.0,
    "cells/uL": CELLS_PER_UL_TO_10E9_PER_L, "/mm3": CELLS_PER_UL_TO_10E9_PER_L,
})
# A leukaemic count can exceed 500 x 10^9/L; above 1000 it is no human count but a unit error
# (e.g. 6500 cells/uL sent as 10^9/L): quarantined.
BLOOD_COUNT_PLAUSIBLE_10E9_L = (0.0, 1000.0)
EGFR_UNITS = _factors({"mL/min/1.73m2": 1.0})
# eGFR as labs report it: plausible range and display precision (whole mL/min/1.73 m2)
_EGFR_PLAUSIBLE = (0.0, 250.0)


def _egfr(key: str, equation: str, codes: tuple[str, ...], *aliases: str) -> Analyte:
    """A reported eGFR of one equation. Each equation is its own analyte (and series): values of two
    equations differ for the same creatinine (MDRD runs below CKD-EPI above 60; a race coefficient
    adds 16-21%), so a baseline or a decline must never mix them."""
    return Analyte(key, f"eGFR ({equation})", "mL/min/1.73m2", EGFR_UNITS, codes, _EGFR_PLAUSIBLE,
                   aliases, decimals=0, equation=equation)


# LOINC codes (docs/clinical-rules.md, "LOINC codes"): every code passes LOINC's mod-10 check digit
# (tests/unit/test_loinc_codes.py). Codes of the same analyte in different specimens or property
# types are one series when their unit says what they are:
# - UPCR: 2890-2 (mass ratio, g/g or mg/g) and 34366-5 (ratio, how labs code mg/mmol) on a spot urine;
#   13801-6 (mass ratio) and 40486-3 (ratio) are the same ratio measured on a 24-h collection. They
#   feed `upcr`, not `proteinuria_24h`: their unit is a ratio (g/g, mg/mmol), not an amount per day,
#   and a ratio estimates g/d whatever urine it was measured in. The protein amount of a collection
#   is 2889-4 (proteinuria_24h), which the proteinuria series prefers on its day.
# - Creatinine: 2160-0 / 14682-9 in serum or plasma, 38483-4 / 59826-8 in (whole) blood, as
#   point-of-care analysers report it; the unit (mg/dL or umol/L) says mass or moles.
# - Cyclosporine 3520-4 and tacrolimus 11253-2 carry no timing; 53828-0 and 77348-1 are the coded
#   troughs. Untimed levels are read as troughs (C0), the level monitoring in MN is done by.
ANALYTES: Mapping[str, Analyte] = MappingProxyType(
    {
        a.key: a
        for a in (
            Analyte(
                "anti_pla2r", "anti-PLA2R antibody", "RU/mL",
                # Euroimmun ELISA reports RU/mL; some labs spell it U/mL on the same scale.
                _factors({"RU/mL": 1.0, "U/mL": 1.0}),
                ("73737-9",), (0.0, 100_000.0), ("pla2r",), decimals=1,
            ),
            Analyte(
                "proteinuria_24h", "24-hour urine protein", "g/d",
                _factors({"g/d": 1.0, "g/24h": 1.0, "mg/d": 0.001, "mg/24h": 0.001}),
                ("2889-4",), (0.0, 50.0), ("proteinuria",), decimals=2,
            ),
            Analyte(
                "upcr", "urine protein/creatinine ratio", "g/g",
                _factors({"g/g": 1.0, "mg/mg": 1.0, "mg/g": 0.001,
                          "mg/mmol": UPCR_MG_PER_MMOL_TO_G_PER_G,
                          "g/mmol": UPCR_MG_PER_MMOL_TO_G_PER_G * 1000}),
                ("2890-2", "34366-5", "13801-6", "40486-3"), (0.0, 50.0), decimals=2,
            ),
            Analyte(
                "serum_albumin", "serum albumin", "g/L",
                _factors({"g/L": 1.0, "g/dL": 10.0, "mg/dL": 0.01}),
                ("1751-7",), (3.0, 80.0), ("albumin",), decimals=0,
            ),
            Analyte(
                "serum_creatinine", "serum creatinine", "umol/L",
                _factors({"umol/L": 1.0, "mg/dL": CREATININE_MG_DL_TO_UMOL_L}),
                ("2160-0", "14682-9", "38483-4", "59826-8"), (5.0, 3_000.0), ("creatinine",), decimals=0,
            ),
            _egfr("egfr", "CKD-EPI 2021", ("98979-8",)),
            _egfr("egfr_ckd_epi_2009", "CKD-EPI 2009", ("62238-1",)),
            # a lab that reports both race variants of a draw: the one without the race coefficient
            # is preferred (EGFR_ANALYTES order), the nearest to the race-free CKD-EPI 2021
            _egfr("egfr_ckd_epi_2009_non_black", "CKD-EPI 2009, non-Black", ("88294-4",)),
            _egfr("egfr_ckd_epi_2009_black", "CKD-EPI 2009, Black", ("88293-6",)),
            _egfr("egfr_mdrd", "MDRD", ("33914-3",)),
            _egfr("egfr_mdrd_non_black", "MDRD, non-Black", ("48642-3",)),
            _egfr("egfr_mdrd_black", "MDRD, Black", ("48643-1",)),
            Analyte(
                "csa_trough", "cyclosporine trough (C0)", "ng/mL",
                _factors({"ng/mL": 1.0, "ug/L": 1.0, "nmol/L": CSA_NMOL_L_TO_NG_ML}),
                ("3520-4", "53828-0"), (0.0, 5_000.0), decimals=0,
            ),
            Analyte(
                "tac_trough", "tacrolimus trough (C0)", "ng/mL",
                _factors({"ng/mL": 1.0, "ug/L": 1.0, "nmol/L": TAC_NMOL_L_TO_NG_ML}),
                ("11253-2", "77348-1"), (0.0, 200.0), decimals=1,
            ),
            Analyte(
                "cd19_count", "CD19 B cells", "cells/uL",
                _factors({"cells/uL": 1.0, "/uL": 1.0, "/mm3": 1.0, "cells/mm3": 1.0,
                          "10^6/L": 1.0, "10^9/L": 1000.0}),
                ("8116-6",), (0.0, 10_000.0), ("cd19",), decimals=0,
            ),
            Analyte(
                # 6690-2 Leukocytes [#/volume] in Blood by Automated count; 26464-8 Leukocytes
                # [#/volume] in Blood (method unspecified)
                "wbc", "white blood cells", "10^9/L", _factors(BLOOD_COUNT_UNITS),
                ("6690-2", "26464-8"), BLOOD_COUNT_PLAUSIBLE_10E9_L, ("leukocytes",), decimals=1,
            ),
            Analyte(
                # 751-8 Neutrophils [#/volume] in Blood by Automated count; 26499-4 Neutrophils
                # [#/volume] in Blood (method unspecified). Not the neutrophil percentage (770-8).
                "neutrophils", "neutrophils (absolute count)", "10^9/L", _factors(BLOOD_COUNT_UNITS),
                ("751-8", "26499-4"), BLOOD_COUNT_PLAUSIBLE_10E9_L, ("anc",), decimals=2,
            ),
        )
    }
)

# The eGFR analytes, CKD-EPI 2021 (the monitor's own equation) first, then in the order a series of
# another equation is preferred when two are reported on the same day (monitor.egfr.egfr_series).
EGFR_ANALYTES: tuple[str, ...] = tuple(a.key for a in ANALYTES.values() if a.equation is not None)
assert EGFR_ANALYTES[0] == "egfr"

# Codes that look like a monitored analyte but are not one: quarantined with this reason, never
# mapped (not through a code map either), never turned into a value they are not.
REFUSED_LOINC: Mapping[str, str] = MappingProxyType({
    "8117-4": ("CD19 % is not a count: LOINC 8117-4 (CD19 cells/100 cells in Blood) is the share of "
               "lymphocytes, and B-cell depletion is judged on the absolute count (8116-6, cells/uL); "
               "send the count"),
})

_BY_LOINC = MappingProxyType({code: a for a in ANALYTES.values() for code in a.loinc})
_BY_ALIAS = MappingProxyType({alias: a for a in ANALYTES.values() for alias in a.aliases})
assert not set(REFUSED_LOINC) & set(_BY_LOINC)


class RefusedCodeError(UnknownAnalyteError):
    """A code the catalogue refuses on purpose (REFUSED_LOINC): the message says why."""


def analyte(key_or_loinc: str) -> Analyte:
    """Look up an analyte by key, alias or LOINC code."""
    k = key_or_loinc.strip()
    found = ANALYTES.get(k.lower()) or _BY_LOINC.get(k) or _BY_ALIAS.get(k.lower())
    if found is None and k in REFUSED_LOINC:
        raise RefusedCodeError(REFUSED_LOINC[k])
    if found is None:
        raise UnknownAnalyteError(
            f"unknown analyte {key_or_loinc!r} (expected one of {', '.join(ANALYTES)} or a LOINC code: "
            f"{', '.join(sorted(_BY_LOINC))})"
        )
    return found
