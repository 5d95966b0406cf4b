"""Every LOINC code the project knows passes LOINC's mod-10 check digit.

A typo in a code (an earlier rule book had 8116-2 for 8116-6, 34366-2 for 34366-5, 11253-5 for
11253-2) silently quarantines every real result as "unknown analyte"; the check digit catches it.
Covered: the analyte catalogue, the refused codes, quoted LOINC-shaped strings in the source of every
package, and the LOINC-coded results of the example feeds.

The algorithm, as LOINC publishes it ("Calculating Mod 10 check digits"), on the code's number part:
1. number the digits from the right; 2. take the digits in odd positions (1st, 3rd, ...) from the
right, as a number, and double it; 3. write the digits in even positions from the right in front of
that result; 4. add up all the digits of the whole; 5. the check digit is what brings that sum up to
the next multiple of ten (0 when it is one already).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monitor.analytes import ANALYTES, REFUSED_LOINC

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("monitor", "storage", "tasks", "cli", "feed", "synthetic")
LOINC_SHAPE = re.compile(r"^\d{1,7}-\d$")
QUOTED_CODE = re.compile(r"""["'](\d{3,7}-\d)["']""")


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the hyphen, step by step as published."""
    digits = number[::-1]  # position 1 is the rightmost digit
    odd = "".join(digits[0::2])[::-1]  # 1st, 3rd, 5th ... from the right, in their original order
    even = "".join(digits[1::2])[::-1]  # 2nd, 4th ... from the right
    doubled = str(int(odd) * 2)
    total = sum(int(d) for d in even + doubled)
    return (10 - total % 10) % 10


def passes_check_digit(code: str) -> bool:
    number, _, check = code.strip().partition("-")
    return number.isdigit() and check.isdigit() and len(check) == 1 and loinc_check_digit(number) == int(check)


@pytest.mark.parametrize(("code", "ok"), [
    ("12345-5", True),  # LOINC's worked example: 531 x 2 = 1062; 42 + 1062 -> 4+2+1+0+6+2 = 15 -> 5
    ("8116-6", True), ("8116-2", False),  # CD19 count, and the typo that quarantined it
    ("34366-5", True), ("34366-2", False),
    ("11253-2", True), ("11253-5", False),
    ("2160-0", True),  # a sum that is already a multiple of ten gives 0
    ("98979-8", True), ("98979-9", False),
    ("751-8", True), ("1-8", True), ("1-7", False),
])
def test_the_check_digit_algorithm(code: str, ok: bool) -> None:
    assert passes_check_digit(code) is ok


def _catalogue_codes() -> dict[str, str]:
    codes = {code: f"catalogue {a.key}" for a in ANALYTES.values() for code in a.loinc}
    codes.update({code: "refused code" for code in REFUSED_LOINC})
    return codes


def _source_codes() -> dict[str, str]:
    """Quoted LOINC-shaped strings in the packages' source: any other code table (a code map, a
    FHIR output, a chart) is covered without being listed here."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for code in QUOTED_CODE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(code, str(path.relative_to(ROOT)))
    return found


def _example_codes() -> dict[str, str]:
    """LOINC-coded results of the example feeds: HL7 v2 CE/CWE fields coded LN, FHIR codings."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "examples").glob("*.hl7")):
        for code in re.findall(r"\|(\d{1,7}-\d)\^[^|^]*\^LN\b", path.read_text(encoding="utf-8")):
            found.setdefault(code, path.name)
    for path in sorted((ROOT / "examples").glob("*.json")):
        def walk(node: object) -> None:
            if isinstance(node, dict):
                if node.get("system") == "http://loinc.org" and isinstance(node.get("code"), str):
                    found.setdefault(node["code"], path.name)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
        walk(json.loads(path.read_text(encoding="utf-8")))
    return found


def test_the_scans_find_the_codes_they_should() -> None:
    # a scan that silently found nothing would pass every check below
    assert {"8116-6", "34366-5", "98979-8", "8117-4"} <= set(_catalogue_codes())
    assert "8116-6" in _source_codes()  # the catalogue is source too
    assert {"1751-7", "2160-0", "98979-8", "73737-9"} <= set(_example_codes())


@pytest.mark.parametrize("table", [_catalogue_codes, _source_codes, _example_codes])
def test_every_code_passes_the_check_digit(table: object) -> None:
    codes = table()  # type: ignore[operator]
    assert codes
    bad = {code: where for code, where in codes.items() if LOINC_SHAPE.match(code) and not passes_check_digit(code)}
    assert not bad, f"LOINC codes failing the mod-10 check digit: {bad}"


def test_every_catalogue_code_is_shaped_like_a_loinc_code() -> None:
    assert all(LOINC_SHAPE.match(code) for code in _catalogue_codes())
