"""FHIR R4 (R4B models): Bundles and their references, Observation statuses and units, medications."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest

from monitor.events import LabResult, MedicationEvent, Patient
from monitor.interop import CodeMap, parse_payload
from monitor.interop.fhir import parse_fhir
from tests.unit.interop._context import CONTEXT

PATIENT_URL = "urn:uuid:0c3a0b1e-8e5b-4f6b-9a2e-000000000001"
PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
    "gender": "female",
    "birthDate": "1968-03-02",
}


def observation(
    loinc: str = "73737-9", value: Any = 168, unit: str = "RU/mL", status: str = "final", **extra: Any
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": status,
        "identifier": [{"system": "urn:oid:1.2.3.200", "value": f"R-{loinc}"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": PATIENT_URL},
        "effectiveDateTime": "2025-01-10T08:00:00Z",
    }
    if value is not None:
        obs["valueQuantity"] = {"value": value, "unit": unit}
    obs.update(extra)
    return obs


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    entries = [{"fullUrl": PATIENT_URL, "resource": PATIENT}]
    entries += [
        {"fullUrl": f"urn:uuid:0c3a0b1e-8e5b-4f6b-9a2e-{i:012d}", "resource": r}
        for i, r in enumerate(resources, start=100)
    ]
    if kind in ("batch", "transaction"):
        for e in entries:
            e["request"] = {"method": "POST", "url": e["resource"]["resourceType"]}
    if kind == "searchset":
        for e in entries:
            e["search"] = {"mode": "match"}
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def labs(result) -> list[LabResult]:  # type: ignore[no-untyped-def]
    return [e for e in result.events if isinstance(e, LabResult)]


@pytest.mark.parametrize("kind", ["collection", "batch", "transaction", "searchset"])
def test_bundle_types_resolve_urn_uuid_subjects(kind: str) -> None:
    result = parse_payload(json.dumps(bundle(observation(), kind=kind)), context=CONTEXT)
    assert result.format == "fhir" and result.rejected == []
    patient, lab = result.events
    assert isinstance(patient, Patient) and patient.patient_id == "MRN-1" and patient.sex == "female"
    assert isinstance(lab, LabResult) and lab.patient_id == "MRN-1" and lab.analyte == "anti_pla2r"
    assert (lab.source, lab.source_id) == ("urn:oid:1.2.3.200", "R-73737-9")


def test_patient_type_id_references_inside_and_outside_the_bundle() -> None:
    inside = observation(subject={"reference": "Patient/pat-1"})
    outside = observation("1751-7", 30, "g/L", subject={"reference": "Patient/elsewhere-9"})
    absolute = observation(
        "2160-0", 80, "umol/L", subject={"reference": "https://ehr.example.org/fhir/Patient/pat-1"}
    )
    by_identifier = observation("98979-8", 50, "mL/min/1.73m2", subject={"identifier": {"value": "MRN-7"}})
    result = parse_fhir(json.dumps(bundle(inside, outside, absolute, by_identifier)))
    assert [e.patient_id for e in labs(result)] == ["MRN-1", "elsewhere-9", "MRN-1", "MRN-7"]


def test_unresolvable_references_are_rejected() -> None:
    missing = observation(subject={"reference": "urn:uuid:0c3a0b1e-8e5b-4f6b-9a2e-999999999999"})
    group = observation(subject={"reference": "Group/g1"})
    result = parse_fhir(json.dumps(bundle(missing, group)))
    assert labs(result) == []
    assert [r.line for r in result.rejected] == [1, 2]  # entry indexes
    assert "not a fullUrl in this Bundle" in result.rejected[0].reason
    assert "does not point to a Patient" in result.rejected[1].reason


def test_contained_patient() -> None:
    contained = {**PATIENT, "id": "p"}
    obs = observation(subject={"reference": "#p"}, contained=[contained])
    result = parse_fhir(json.dumps(obs))
    assert result.rejected == []
    patient, lab = result.events
    assert isinstance(patient, Patient) and lab.patient_id == patient.patient_id == "MRN-1"


@pytest.mark.parametrize(
    "fhir_status, status",
    [
        ("final", "final"),
        ("amended", "corrected"),
        ("corrected", "corrected"),
        ("preliminary", "preliminary"),
        ("entered-in-error", "entered-in-error"),
    ],
)
def test_observation_statuses(fhir_status: str, status: str) -> None:
    (lab,) = labs(parse_fhir(json.dumps(bundle(observation(status=fhir_status)))))
    assert lab.status == status
    assert lab.identity == labs(parse_fhir(json.dumps(bundle(observation()))))[0].identity


def test_entered_in_error_without_value_still_retracts() -> None:
    (lab,) = labs(parse_fhir(json.dumps(bundle(observation(status="entered-in-error", value=None)))))
    assert lab.status == "entered-in-error" and lab.source_id == "R-73737-9"


@pytest.mark.parametrize("status", ["cancelled", "registered", "unknown"])
def test_statuses_without_a_result(status: str) -> None:
    result = parse_fhir(json.dumps(bundle(observation(status=status, value=None))))
    assert labs(result) == [] or labs(result)[0].status != "final"
    if status == "unknown":
        assert result.rejected[0].field == "status"


@pytest.mark.parametrize(
    "loinc, ucum, expected_unit",
    [
        ("73737-9", "[arb'U]/mL", "RU/mL"),
        ("73737-9", "{RU}/mL", "RU/mL"),
        ("73737-9", "U/mL", "RU/mL"),
        ("8116-6", "10*9/L", "cells/uL"),
        ("8116-6", "{cells}/uL", "cells/uL"),
        ("8116-6", "10*6/L", "cells/uL"),
        ("2160-0", "umol/L", "umol/L"),
        ("2890-2", "mg/mmol{creat}", "g/g"),
        ("2889-4", "g/(24.h)", "g/d"),
        ("98979-8", "mL/min/{1.73_m2}", "mL/min/1.73m2"),
        ("11253-2", "ug/L", "ng/mL"),
    ],
)
def test_ucum_spellings(loinc: str, ucum: str, expected_unit: str) -> None:
    value = 80 if loinc == "2160-0" else 0.2
    obs = observation(loinc, value)
    obs["valueQuantity"] = {
        "value": value,
        "system": "http://unitsofmeasure.org",
        "code": ucum,
        "unit": "whatever",
    }
    (lab,) = labs(parse_fhir(json.dumps(bundle(obs))))
    assert lab.unit == expected_unit


def test_international_units_are_not_taken_for_ru() -> None:
    obs = observation(value=5, unit="[iU]/mL")
    (rej,) = parse_fhir(json.dumps(bundle(obs))).rejected
    assert rej.field == "unit" and "not accepted" in rej.reason


def test_comparator_decimal_and_effective_fallbacks() -> None:
    obs = observation(value=2, unit="RU/mL")
    obs["valueQuantity"]["comparator"] = "<"
    del obs["effectiveDateTime"]
    obs["effectivePeriod"] = {"start": "2025-03-01T10:00:00+01:00"}
    (lab,) = labs(parse_fhir(json.dumps(bundle(obs))))
    assert lab.comparator == "<" and lab.value == 2 and lab.effective_date == date(2025, 3, 1)
    obs2 = observation(issued="2025-04-01T10:00:00Z")
    del obs2["effectiveDateTime"]
    assert labs(parse_fhir(json.dumps(bundle(obs2))))[0].effective_date == date(2025, 4, 1)
    obs3 = observation(effectiveDateTime="2025-04")
    assert "precise to the day" in parse_fhir(json.dumps(bundle(obs3))).rejected[0].reason


def test_validation_failures_are_quarantined_per_entry_with_the_validators_message() -> None:
    no_status = observation()
    del no_status["status"]
    unknown_key = observation(valueQuanity={"value": 1})
    result = parse_fhir(json.dumps(bundle(no_status, observation("1751-7", 30, "g/L"), unknown_key)))
    assert [e.analyte for e in labs(result)] == ["serum_albumin"]
    assert [r.line for r in result.rejected] == [1, 3]
    assert result.rejected[0].field == "status" and "FHIR R4 validation failed" in result.rejected[0].reason
    assert "valueQuanity" in result.rejected[1].reason


def test_unmonitored_codes_and_non_numeric_values() -> None:
    sodium = observation("2951-2", 140, "mmol/L")
    text = observation(value=None, valueString="positive")
    absent = observation(value=None, dataAbsentReason={"text": "haemolysed"})
    result = parse_fhir(json.dumps(bundle(sodium, text, absent)))
    reasons = [r.reason for r in result.rejected]
    assert reasons[0].startswith("not a monitored analyte")
    assert "only numeric results" in reasons[1] and "haemolysed" in reasons[2]


def test_local_codes_through_the_code_map() -> None:
    obs = observation()
    obs["code"] = {"coding": [{"system": "http://lab.example.org/codes", "code": "k-crea"}]}
    obs["valueQuantity"] = {"value": 1.1, "unit": "mg/dL"}
    assert labs(parse_fhir(json.dumps(bundle(obs)))) == []
    cm = CodeMap.from_toml(
        '[sources."http://lab.example.org/codes".analytes]\n"K-CREA" = "serum_creatinine"\n'
    )
    (lab,) = labs(parse_fhir(json.dumps(bundle(obs)), cm))
    assert lab.analyte == "serum_creatinine" and abs(lab.value - 97.262) < 1e-6


def test_medication_resources() -> None:
    admin = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {"text": "Rituximab 1000 mg"},
        "subject": {"reference": PATIENT_URL},
        "effectiveDateTime": "2025-02-01T09:00:00+01:00",
        "dosage": {"dose": {"value": 1000, "unit": "mg"}, "route": {"text": "IV"}},
    }
    statement = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationReference": {"reference": "#med"},
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "Tacrolimus"}}],
        "subject": {"reference": PATIENT_URL},
        "effectivePeriod": {"start": "2025-01-01"},
        "dosage": [
            {
                "timing": {"code": {"coding": [{"code": "BID"}]}},
                "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "mg"}}],
            }
        ],
    }
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "urn:local", "code": "CSA"}]},
        "subject": {"reference": PATIENT_URL},
        "authoredOn": "2024-12-20",
        "dosageInstruction": [
            {
                "timing": {
                    "repeat": {
                        "frequency": 1,
                        "period": 1,
                        "periodUnit": "d",
                        "boundsPeriod": {"start": "2025-01-01", "end": "2025-06-30"},
                    }
                },
                "doseAndRate": [{"doseQuantity": {"value": 150, "unit": "mg"}}],
            }
        ],
    }
    weekly_oddity = {
        **copy.deepcopy(statement),
        "dosage": [{"timing": {"repeat": {"frequency": 1, "period": 3, "periodUnit": "d"}}}],
    }
    not_taken = {**admin, "status": "not-done"}
    result = parse_fhir(json.dumps(bundle(admin, statement, request, weekly_oddity, not_taken)))
    meds = [e for e in result.events if isinstance(e, MedicationEvent)]
    assert [(m.drug, m.dose, m.unit, m.frequency, m.start, m.end) for m in meds] == [
        ("rituximab", 1000, "mg", "once", date(2025, 2, 1), None),
        ("tacrolimus", 2, "mg", "bid", date(2025, 1, 1), None),
        ("cyclosporine", 150, "mg", "qd", date(2025, 1, 1), date(2025, 6, 30)),
    ]
    assert meds[0].route == "iv"
    assert [r.line for r in result.rejected] == [4, 5]
    assert "frequency not representable" in result.rejected[0].reason
    assert "not-done" in result.rejected[1].reason


def test_single_resources_fhir_ndjson_and_other_types() -> None:
    lines = "\n".join(
        json.dumps(r)
        for r in (
            PATIENT,
            observation(subject={"reference": "Patient/pat-1"}),
            {"resourceType": "Practitioner"},
            {"resourceType": "Claim"},
            {"resourceType": "NoSuchThing"},
        )
    )
    result = parse_payload(lines, context=CONTEXT)
    assert result.format == "fhir" and [e.patient_id for e in result.events] == ["MRN-1", "MRN-1"]
    assert [r.line for r in result.rejected] == [4, 5]
    assert "not read by this monitor" in result.rejected[0].reason


@pytest.mark.parametrize(
    "payload, reason",
    [
        ('{"resourceType": "Bundle", "type": "nonsense"}', "unknown Bundle type"),
        ('{"resourceType": "Bundle", "type": "collection", "entry": {}}', "must be a list"),
        (
            '{"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "DELETE"}}]}',
            "DELETE entry",
        ),
        ('{"resourceType": "Bundle", "type": "collection", "entry": [42, {}]}', "not an object"),
        ('{"resourceType": "Observation", "status": "final"', "invalid JSON"),
        ('{"resourceType": 5}', "not a FHIR resource"),
    ],
)
def test_broken_bundles(payload: str, reason: str) -> None:
    result = parse_fhir(payload)
    assert result.events == [] and reason in result.rejected[0].reason


def test_example_bundle(examples) -> None:  # type: ignore[no-untyped-def]
    data = (examples / "bundle_r4.json").read_bytes()
    assert [r.field for r in parse_payload(data, context=CONTEXT).rejected] == ["code"]  # local code, no map
    code_map = CodeMap.from_toml((examples / "codemap.toml").read_text())
    result = parse_payload(data, code_map=code_map, context=CONTEXT)
    assert result.rejected == [] and len(result.events) == 8
