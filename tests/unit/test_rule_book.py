"""docs/clinical-rules.md, the project's own rule book, stays in step with the code: every rule id,
every LOINC code with its analyte (and equation), every analyte's canonical unit and display
precision; and nothing in the repository sends a reader to files outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from monitor.analytes import ANALYTES, REFUSED_LOINC
from monitor.rules import RULES

ROOT = Path(__file__).resolve().parents[2]
BOOK = (ROOT / "docs" / "clinical-rules.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
# a relative or absolute path to the reference folder beside the checkout (spelt in two parts, so
# that this file does not match itself)
OUTSIDE = re.compile(r"\.\./" + "shared|/work/" + "shared")


@pytest.mark.parametrize("rule", [r.RULE_ID for r in RULES])
def test_every_rule_is_in_the_rule_book(rule: str) -> None:
    assert f"| `{rule}` |" in BOOK


@pytest.mark.parametrize(("code", "key"), [(c, a.key) for a in ANALYTES.values() for c in a.loinc])
def test_every_loinc_code_is_in_the_rule_book_with_its_analyte_and_equation(code: str, key: str) -> None:
    row = next((line for line in BOOK.splitlines() if line.startswith(f"| {code} |")), None)
    assert row is not None, code
    assert f"`{key}`" in row
    equation = ANALYTES[key].equation
    if equation is not None:
        assert row.rstrip(" |").endswith(equation)


def test_refused_codes_are_in_the_rule_book() -> None:
    for code in REFUSED_LOINC:
        assert code in BOOK and "CD19 % is not a count" in BOOK


def test_the_readme_lists_the_canonical_units_that_are_stored() -> None:
    # the README once said albumin g/dL, creatinine mg/dL, UPCR mg/mmol, troughs nmol/L
    assert (ANALYTES["upcr"].canonical_unit, ANALYTES["serum_albumin"].canonical_unit,
            ANALYTES["serum_creatinine"].canonical_unit, ANALYTES["csa_trough"].canonical_unit,
            ANALYTES["cd19_count"].canonical_unit) == ("g/g", "g/L", "umol/L", "ng/mL", "cells/uL")
    for phrase in ("UPCR g/g", "albumin g/L", "creatinine \u00b5mol/L", "CsA/tacrolimus troughs ng/mL",
                   "CD19 cells/\u00b5L"):
        assert phrase in README
    for stale in ("UPCR\nmg/mmol, albumin g/dL", "albumin g/dL, creatinine mg/dL", "nmol/L, CD19 10^9/L"):
        assert stale not in README


def test_nothing_points_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    offenders = []
    for name in tracked.stdout.split():
        path = ROOT / name
        if name == ".ci/run" or path.suffix in {".png", ".db"} or not path.is_file():
            continue  # .ci/run calls the contract check the CI environment provides
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if OUTSIDE.search(text):
            offenders.append(name)
    assert offenders == []
    assert "](docs/clinical-rules.md)" in README and (ROOT / "docs" / "clinical-rules.md").is_file()
