"""One clinical course as NDJSON, CSV, HL7 v2 and FHIR R4 gives the same events."""

from __future__ import annotations

import json
from datetime import date

from monitor.events import LabResult, MedicationEvent
from monitor.interop import parse_payload
from tests.unit.interop._context import CONTEXT

NDJSON = "\n".join(
    json.dumps(r)
    for r in [
        {
            "type": "lab",
            "patient_id": "MRN-1",
            "analyte": "anti_pla2r",
            "value": 168,
            "unit": "RU/mL",
            "effective_at": "2025-01-10",
        },
        {
            "type": "lab",
            "patient_id": "MRN-1",
            "analyte": "proteinuria_24h",
            "value": 8.2,
            "unit": "g/d",
            "effective_at": "2025-01-09",
        },
        {
            "type": "lab",
            "patient_id": "MRN-1",
            "analyte": "serum_albumin",
            "value": 22,
            "unit": "g/L",
            "effective_at": "2025-01-10",
        },
        {
            "type": "lab",
            "patient_id": "MRN-1",
            "analyte": "serum_creatinine",
            "value": 97.262,
            "unit": "umol/L",
            "effective_at": "2025-01-10",
        },
        {
            "type": "lab",
            "patient_id": "MRN-1",
            "analyte": "upcr",
            "value": 3.2,
            "unit": "g/g",
            "effective_at": "2025-05-02",
        },
        {
            "type": "lab",
            "patient_id": "MRN-1",
            "analyte": "anti_pla2r",
            "value": 2,
            "comparator": "<",
            "unit": "RU/mL",
            "effective_at": "2025-08-01",
        },
        {
            "type": "medication",
            "patient_id": "MRN-1",
            "drug": "rituximab",
            "dose": 1000,
            "unit": "mg",
            "start": "2025-02-01",
        },
    ]
)

CSV = """patient_id,analyte,value,unit,effective_at,drug,dose,start
MRN-1,73737-9,168,RU/mL,2025-01-10,,,
MRN-1,2889-4,8200,mg/24h,2025-01-09,,,
MRN-1,1751-7,2.2,g/dL,2025-01-10,,,
MRN-1,2160-0,1.1,mg/dL,2025-01-10,,,
MRN-1,upcr,3200,mg/g,2025-05-02,,,
MRN-1,anti_pla2r,<2,U/mL,2025-08-01,,,
MRN-1,,,mg,,rituximab,1000,2025-02-01
"""

HL7 = "\n".join(
    [
        r"MSH|^~\&|LIS|HOSP|IMN|NEPH|20250110143000||ORU^R01^ORU_R01|M1|P|2.5.1",
        r"PID|1||MRN-1^^^HOSP^MR||Doe^Jane||19680302|F",
        r"OBR|1|O1|F1|24323-8^Panel^LN|||20250110081500",
        r"OBX|1|NM|73737-9^PLA2R Ab^LN||168|RU/mL|||||F",
        r"OBX|2|NM|1751-7^Albumin^LN||2.2|g/dL|||||F",
        r"OBX|3|NM|2160-0^Creatinine^LN||1.1|mg/dL|||||F",
        r"OBR|2|O2|F2|2889-4^Prot 24h^LN|||20250109",
        r"OBX|1|NM|2889-4^Prot 24h^LN||8200|mg/(24.h)|||||F",
        r"MSH|^~\&|LIS|HOSP|IMN|NEPH|20250802100000||ORU^R01|M2|P|2.3",
        r"PID|1||MRN-1",
        r"OBR|1|O3|F3|2890-2^UPCR^LN|||20250502",
        r"OBX|1|NM|2890-2^UPCR^LN||362|mg/mmol|||||F",
        r"OBR|2|O4|F4|73737-9^PLA2R^LN|||20250801",
        r"OBX|1|SN|73737-9^PLA2R Ab^LN||<^2|RU/mL|||||F",
        r"MSH|^~\&|PHARM|HOSP|IMN|NEPH|20250201||RAS^O17^RAS_O17|M3|P|2.5.1",
        r"PID|1||MRN-1",
        r"RXA|0|1|20250201090000||RTX^Rituximab^LOCAL|1000|mg",
    ]
)


def _obs(loinc: str, value: float, unit: str, when: str, comparator: str | None = None) -> dict:
    qty = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if comparator:
        qty["comparator"] = comparator
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueQuantity": qty,
    }


FHIR = json.dumps(
    {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "https://ehr.example.org/fhir/Patient/p1",
                "resource": {"resourceType": "Patient", "id": "p1", "identifier": [{"value": "MRN-1"}]},
            },
            *(
                {"resource": r}
                for r in [
                    _obs("73737-9", 168, "[arb'U]/mL", "2025-01-10"),
                    _obs("2889-4", 8.2, "g/(24.h)", "2025-01-09"),
                    _obs("1751-7", 22, "g/L", "2025-01-10"),
                    _obs("2160-0", 97.262, "umol/L", "2025-01-10"),
                    _obs("2890-2", 3.2, "g/g", "2025-05-02"),
                    _obs("73737-9", 2, "{RU}/mL", "2025-08-01", "<"),
                    {
                        "resourceType": "MedicationAdministration",
                        "status": "completed",
                        "medicationCodeableConcept": {
                            "coding": [{"system": "urn:x", "code": "RTX", "display": "Rituximab"}]
                        },
                        "subject": {"reference": "Patient/p1"},
                        "effectiveDateTime": "2025-02-01T09:00:00Z",
                        "dosage": {
                            "dose": {
                                "value": 1000,
                                "unit": "mg",
                                "system": "http://unitsofmeasure.org",
                                "code": "mg",
                            }
                        },
                    },
                ]
            ),
        ],
    }
)


def clinical(payload: str) -> set[tuple]:
    result = parse_payload(payload, context=CONTEXT)
    assert result.rejected == [], result.rejected
    out: set[tuple] = set()
    for e in result.events:
        if isinstance(e, LabResult):
            out.add((e.patient_id, e.analyte, round(e.value, 2), e.unit, e.comparator, e.effective_date))
        elif isinstance(e, MedicationEvent):
            out.add((e.patient_id, e.drug, e.dose_mg, e.frequency, e.start))
    return out


def test_same_course_in_every_format() -> None:
    expected = clinical(NDJSON)
    assert len(expected) == 7
    assert ("MRN-1", "anti_pla2r", 2.0, "RU/mL", "<", date(2025, 8, 1)) in expected
    for name, payload in (("csv", CSV), ("hl7v2", HL7), ("fhir", FHIR)):
        assert clinical(payload) == expected, name
