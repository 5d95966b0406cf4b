"""Real laboratory codes through the real parsers: the corrected and added LOINC codes land in their
analyte (HL7 v2, FHIR, NDJSON), and CD19 % (8117-4) is quarantined with its reason, never read as the
count, whatever the format or a code map says."""

from __future__ import annotations

import json

import pytest

from monitor.events import LabResult
from monitor.interop import CodeMap, CodeMapError, parse_payload
from monitor.interop.fhir import parse_fhir
from monitor.interop.hl7v2 import parse_hl7v2
from monitor.interop.ndjson import parse_ndjson
from tests.unit.interop._context import CONTEXT

HEAD = [
    r"MSH|^~\&|CENTRAL-LIS|UNIV-HOSP|IMN|NEPH|20250110143000+0100||ORU^R01^ORU_R01|CL9|P|2.5.1",
    r"PID|1||MRN-9^^^UNIV-HOSP^MR||Doe^Jane||19680302|F",
    r"OBR|1|ORD-9|F-9^LIS|24323-8^Panel^LN|||20250110081500+0100",
]
# (LOINC code, value, unit as the lab sends it, analyte, canonical value)
REAL_CODES = [
    ("34366-5", 372, "mg/mmol", "upcr", 372 * 0.00884),  # the code 34366-2 was a typo
    ("13801-6", 2.4, "g/g", "upcr", 2.4),  # protein/creatinine mass ratio in a 24-h urine
    ("40486-3", 250, "mg/mmol", "upcr", 250 * 0.00884),  # the same as a ratio
    ("8116-6", 12, "cells/uL", "cd19_count", 12.0),  # the code 8116-2 was a typo
    ("11253-2", 6.1, "ng/mL", "tac_trough", 6.1),  # the code 11253-5 was a typo
    ("77348-1", 5.2, "ng/mL", "tac_trough", 5.2),
    ("53828-0", 98, "ng/mL", "csa_trough", 98.0),
    ("38483-4", 1.1, "mg/dL", "serum_creatinine", 1.1 * 88.42),
    ("59826-8", 97, "umol/L", "serum_creatinine", 97.0),
    ("62238-1", 58, "mL/min/1.73m2", "egfr_ckd_epi_2009", 58.0),
    ("88293-6", 70, "mL/min/1.73m2", "egfr_ckd_epi_2009_black", 70.0),
    ("88294-4", 58, "mL/min/1.73m2", "egfr_ckd_epi_2009_non_black", 58.0),
    ("33914-3", 55, "mL/min/1.73m2", "egfr_mdrd", 55.0),
    ("48642-3", 55, "mL/min/1.73m2", "egfr_mdrd_non_black", 55.0),
    ("48643-1", 66, "mL/min/1.73m2", "egfr_mdrd_black", 66.0),
]


def _hl7(*obx: str) -> str:
    return "\r".join([*HEAD, *obx])


def _fhir(code: str, value: float, unit: str) -> str:
    return json.dumps({
        "resourceType": "Observation", "status": "final", "identifier": [{"value": f"R-{code}"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"identifier": {"value": "MRN-9"}}, "effectiveDateTime": "2025-01-10T08:00:00Z",
        "valueQuantity": {"value": value, "unit": unit},
    })


def _labs(result) -> list[LabResult]:  # type: ignore[no-untyped-def]
    return [e for e in result.events if isinstance(e, LabResult)]


@pytest.mark.parametrize(("code", "value", "unit", "analyte", "canonical"), REAL_CODES)
def test_real_codes_land_in_their_analyte_in_every_format(code: str, value: float, unit: str, analyte: str,
                                                          canonical: float) -> None:
    hl7 = parse_hl7v2(_hl7(f"OBX|1|NM|{code}^Result^LN||{value}|{unit}|||||F"))
    fhir = parse_fhir(_fhir(code, value, unit))
    ndjson = parse_ndjson(json.dumps({"type": "lab", "patient_id": "MRN-9", "analyte": code, "value": value,
                                      "unit": unit, "effective_at": "2025-01-10"}))
    for result in (hl7, fhir, ndjson):
        assert result.rejected == [], result.rejected
        [lab] = _labs(result)
        assert (lab.analyte, lab.value) == (analyte, pytest.approx(canonical, abs=1e-6))
    assert [a.code for a in hl7.acks] == ["AA"]


CD19_PERCENT = "CD19 % is not a count"


def test_cd19_percentage_is_quarantined_beside_the_count_in_hl7() -> None:
    result = parse_hl7v2(_hl7(r"OBX|1|NM|8116-6^CD19 abs^LN||3|cells/uL|||||F",
                              r"OBX|2|NM|8117-4^CD19 %^LN||0.4|%|||||F"))
    assert [(r.analyte, r.value) for r in _labs(result)] == [("cd19_count", 3.0)]  # the count only
    [rejected] = result.rejected
    assert rejected.field == "OBX-3" and rejected.reason.startswith(CD19_PERCENT)
    # the lab sent nothing wrong: a percentage the monitor does not read does not turn the ACK into AE
    assert [a.code for a in result.acks] == ["AA"]


def test_cd19_percentage_is_refused_even_when_a_code_map_maps_its_local_code() -> None:
    # a local code beside the LOINC 8117-4 in the alternate triplet, mapped to the count by mistake
    code_map = CodeMap.from_toml('[analytes]\n"CD19P" = "cd19_count"\n')
    result = parse_hl7v2(_hl7(r"OBX|1|NM|8117-4^CD19 %^LN^CD19P^CD19 %^L||0.4|%|||||F"), code_map)
    assert _labs(result) == [] and result.rejected[0].reason.startswith(CD19_PERCENT)


def test_cd19_percentage_is_quarantined_in_fhir_and_ndjson() -> None:
    fhir = parse_fhir(_fhir("8117-4", 0.4, "%"))
    assert _labs(fhir) == [] and fhir.rejected[0].field == "code"
    assert fhir.rejected[0].reason.startswith(CD19_PERCENT)
    ndjson = parse_ndjson(json.dumps({"type": "lab", "patient_id": "P1", "analyte": "8117-4", "value": 0.4,
                                      "unit": "%", "effective_at": "2025-01-10"}))
    assert _labs(ndjson) == [] and ndjson.rejected[0].field == "analyte"
    assert ndjson.rejected[0].reason.startswith(CD19_PERCENT)
    # detected payloads take the same path
    detected = parse_payload(_fhir("8117-4", 0.4, "%"), context=CONTEXT)
    assert detected.rejected[0].reason.startswith(CD19_PERCENT)


def test_a_code_map_cannot_target_the_cd19_percentage() -> None:
    with pytest.raises(CodeMapError, match="CD19 % is not a count"):
        CodeMap.from_toml('[analytes]\n"CD19P" = "8117-4"\n')


@pytest.mark.parametrize("typo", ["34366-2", "8116-2", "11253-5"])
def test_the_old_typos_are_not_monitored_codes(typo: str) -> None:
    result = parse_hl7v2(_hl7(f"OBX|1|NM|{typo}^Result^LN||5|ng/mL|||||F"))
    assert _labs(result) == [] and result.rejected[0].reason.startswith("not a monitored analyte")
