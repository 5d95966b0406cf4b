"""Lab and UCUM unit spellings brought to spellings the analyte table accepts.

monitor.analytes.normalise_unit already folds case, micro signs, '10*9' and '24h'/'d'. What it does
not know is UCUM's syntax: annotations in braces, bracketed arbitrary units, '(24.h)'. Mapping them
here keeps the catalogue unchanged; anything still unknown reaches the catalogue and is quarantined
with its reason there.
"""

from __future__ import annotations

import re

from monitor.interop.codemap import CodeMap

# exact UCUM spellings first (before annotations are dropped, as '{RU}' carries the meaning)
_UCUM: dict[str, str] = {
    "[arb'u]/ml": "RU/mL",  # UCUM "arbitrary unit": how FHIR senders code Euroimmun RU/mL
    "{ru}/ml": "RU/mL",
    "ml/min/{1.73_m2}": "mL/min/1.73m2",
    "ml/min/1.73.m2": "mL/min/1.73m2",
    "ml/min/1.73m^2": "mL/min/1.73m2",
    "ml/min/1.73_m2": "mL/min/1.73m2",
}
_ANNOTATION = re.compile(r"\{[^{}]*\}")
_PER_DAY = re.compile(r"/\(?24\.?h\)?$", re.IGNORECASE)


def canonical_spelling(unit: str, code_map: CodeMap | None = None, *sources: str | None) -> str:
    """A sender's unit spelling as the catalogue spells it (unknown spellings pass through)."""
    u = unit.strip()
    if code_map is not None:
        u = code_map.unit(u, *sources)
    key = u.replace(" ", "").lower()
    if key in _UCUM:
        return _UCUM[key]
    # '{creat}' in 'mg/mmol{creat}', '{cells}/uL' -> '/uL': UCUM annotations do not change the unit;
    # international units ([iU]) are deliberately not mapped to the ELISA's RU: another scale
    stripped = _ANNOTATION.sub("", u)
    stripped = _PER_DAY.sub("/24h", stripped)  # 'g/(24.h)', 'mg/24.h'
    return stripped or u
