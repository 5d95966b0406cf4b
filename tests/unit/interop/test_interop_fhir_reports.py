"""Issue 12, item 7: a DiagnosticReport's results are read (it was read as context only, so the
Observations it contains were never read), and none is counted twice."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from monitor.events import LabResult, Patient
from monitor.interop import parse_payload
from tests.unit.interop._context import CONTEXT

LOINC = "http://loinc.org"


def obs(oid: str, loinc: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "valueQuantity": {"value": value, "unit": unit}, **extra}


def report(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport", "id": "rep-1", "status": "final",
        "identifier": [{"system": "urn:lis:reports", "value": "R-2025-001"}],
        "code": {"coding": [{"system": LOINC, "code": "24323-8"}]},
        "subject": {"reference": "Patient/MRN-1"}, "effectiveDateTime": "2025-01-10T08:15:00+01:00",
        **extra,
    }


def labs(result) -> list[LabResult]:  # type: ignore[no-untyped-def]
    return [e for e in result.events if isinstance(e, LabResult)]


def test_a_report_with_contained_observations_yields_their_results() -> None:
    doc = report(
        contained=[obs("alb", "1751-7", 22, "g/L"), obs("pla2r", "73737-9", 168, "RU/mL",
                                                         subject={"reference": "Patient/MRN-1"},
                                                         effectiveDateTime="2025-01-09T10:00:00Z")],
        result=[{"reference": "#alb"}, {"reference": "#pla2r"}],
    )
    result = parse_payload(json.dumps(doc), context=CONTEXT)
    assert result.rejected == []
    albumin, pla2r = labs(result)  # was: no event and no rejection at all
    assert (albumin.analyte, albumin.value, albumin.patient_id) == ("serum_albumin", 22, "MRN-1")
    # an Observation that states no subject or time takes the report's (as OBX takes PID and OBR-7)
    assert albumin.effective_at == datetime(2025, 1, 10, 7, 15, tzinfo=UTC)
    assert pla2r.effective_at == datetime(2025, 1, 9, 10, 0, tzinfo=UTC)
    # "#alb" is only unique inside this report: the report's identifier qualifies it
    assert albumin.identity == "lab:urn:lis:reports:R-2025-001#alb"


def test_contained_results_of_two_reports_do_not_collide() -> None:
    first = report(contained=[obs("o1", "1751-7", 22, "g/L")], result=[{"reference": "#o1"}])
    second = report(id="rep-2", identifier=[{"system": "urn:lis:reports", "value": "R-2025-002"}],
                    contained=[obs("o1", "1751-7", 25, "g/L")], result=[{"reference": "#o1"}])
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": first}, {"resource": second}]}
    found = labs(parse_payload(json.dumps(bundle), context=CONTEXT))
    assert [e.value for e in found] == [22, 25] and found[0].identity != found[1].identity


def test_a_bundle_report_referencing_its_entries_counts_each_result_once() -> None:
    patient = {"resourceType": "Patient", "id": "p", "identifier": [{"value": "MRN-1"}], "gender": "female"}
    entries = [
        {"fullUrl": "urn:uuid:p", "resource": patient},
        {"fullUrl": "urn:uuid:r", "resource": report(subject={"reference": "urn:uuid:p"},
                                                     result=[{"reference": "urn:uuid:a"},
                                                             {"reference": "Observation/c"}])},
        {"fullUrl": "urn:uuid:a", "resource": obs("a", "1751-7", 22, "g/L", subject={"reference": "urn:uuid:p"},
                                                  effectiveDateTime="2025-01-10T08:15:00+01:00")},
        {"fullUrl": "http://lis.example/fhir/Observation/c",
         "resource": obs("c", "2160-0", 1.1, "mg/dL", subject={"reference": "urn:uuid:p"},
                         effectiveDateTime="2025-01-10T08:15:00+01:00")},
    ]
    result = parse_payload(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}),
                           context=CONTEXT)
    assert result.rejected == []
    assert sorted(e.analyte for e in labs(result)) == ["serum_albumin", "serum_creatinine"]  # once each
    assert [type(e) for e in result.events].count(Patient) == 1


def test_a_result_the_report_names_but_the_payload_lacks_is_quarantined() -> None:
    doc = report(contained=[obs("alb", "1751-7", 22, "g/L")],
                 result=[{"reference": "#alb"}, {"reference": "#gone"}, {"reference": "Observation/elsewhere"}])
    result = parse_payload(json.dumps(doc), context=CONTEXT)
    assert [e.value for e in labs(result)] == [22]
    assert [(r.field, r.value) for r in result.rejected] == [
        ("result[1].reference", "#gone"), ("result[2].reference", "Observation/elsewhere")]
    assert all("was not read" in r.reason for r in result.rejected)


def test_one_bad_contained_observation_spoils_only_itself() -> None:
    bad = obs("bad", "1751-7", 22, "parsecs")
    broken = copy.deepcopy(obs("broken", "1751-7", 22, "g/L"))
    del broken["status"]
    doc = report(contained=[obs("alb", "2160-0", 1.1, "mg/dL"), bad, broken],
                 result=[{"reference": "#alb"}, {"reference": "#bad"}, {"reference": "#broken"}])
    result = parse_payload(json.dumps(doc), context=CONTEXT)
    assert [e.analyte for e in labs(result)] == ["serum_creatinine"]
    assert [r.field.split(".")[0] for r in result.rejected] == ["contained[1]", "contained[2]"]
    assert "parsecs" in result.rejected[0].reason


def test_a_report_without_subject_needs_subjects_on_its_observations() -> None:
    doc = report(contained=[obs("alb", "1751-7", 22, "g/L")], result=[{"reference": "#alb"}])
    del doc["subject"]
    (rej,) = parse_payload(json.dumps(doc), context=CONTEXT).rejected
    assert rej.field == "contained[0].subject" and "neither the Observation nor its DiagnosticReport" in rej.reason
