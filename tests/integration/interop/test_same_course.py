"""One clinical course sent once as HL7 v2 and once as FHIR R4, through the whole embedded pipeline
(inbox -> parse -> store -> reassess -> alerts), raises the same alerts with the same evidence values.

The course: a rituximab non-responder (MENTOR) with severe hypoalbuminaemia, a correction that lowers
a titer, and a retracted albumin that must not count.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from storage.db import upgrade
from tasks import runtime, service
from tasks.ingest import accept
from tasks.settings import Settings

PATIENT = "MRN-77"
# (date, LOINC, HL7 value, HL7 unit, UCUM unit, FHIR value, filler id, status)
LABS = [
    ("20250105", "2889-4", "8.4", "g/(24.h)", "g/(24.h)", 8.4, "L1", "F"),
    ("20250105", "73737-9", "190", "RU/mL", "[arb'U]/mL", 190, "L2", "F"),
    ("20250105", "1751-7", "1.9", "g/dL", "g/dL", 1.9, "L3", "F"),
    ("20250301", "1751-7", "3.9", "g/dL", "g/dL", 3.9, "L4", "F"),
    ("20250301", "1751-7", "3.9", "g/dL", "g/dL", 3.9, "L4", "D"),  # retracted: must not count
    ("20250415", "73737-9", "160", "RU/mL", "[arb'U]/mL", 160, "L5", "F"),
    ("20250415", "73737-9", "150", "RU/mL", "[arb'U]/mL", 150, "L5", "C"),  # corrected value wins
    ("20250701", "2889-4", "7.9", "g/(24.h)", "g/(24.h)", 7.9, "L6", "F"),
    ("20250701", "73737-9", "120", "RU/mL", "[arb'U]/mL", 120, "L7", "F"),
]
RTX = [("20250110", "A1"), ("20250124", "A2")]
FHIR_STATUS = {"F": "final", "C": "corrected", "D": "entered-in-error"}
AS_OF = date(2025, 7, 20)


def hl7() -> str:
    msgs = []
    for i, (day, loinc, value, unit, _ucum, _v, fid, status) in enumerate(LABS):
        msgs.append("\r".join([
            f"MSH|^~\\&|LIS|HOSP|IMN|NEPH|{day}120000+0100||ORU^R01^ORU_R01|M{i}|P|2.5.1",
            f"PID|1||{PATIENT}^^^HOSP^MR||Doe^Jane||19680302|F",
            f"OBR|1|O{fid}|{fid}^LIS|{loinc}^test^LN|||{day}080000+0100",
            f"OBX|1|NM|{loinc}^test^LN||{value}|{unit}|||||{status}|||{day}080000+0100",
        ]) + "\r")
    for day, aid in RTX:
        msgs.append("\r".join([
            f"MSH|^~\\&|PHARM|HOSP|IMN|NEPH|{day}140000+0100||RAS^O17^RAS_O17|{aid}|P|2.5.1",
            f"PID|1||{PATIENT}^^^HOSP^MR||Doe^Jane||19680302|F",
            f"ORC|RE|RX-{aid}|{aid}^PHARM",
            f"RXA|0|1|{day}090000+0100|{day}130000+0100|RTX^Rituximab^LOCAL|1000|mg^milligram^UCUM|||||||||||||CP|A",
        ]) + "\r")
    return "".join(msgs)


def fhir() -> str:
    entries = [{"fullUrl": "urn:uuid:p1", "resource": {
        "resourceType": "Patient", "identifier": [{"type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "value": PATIENT}],
        "gender": "female", "birthDate": "1968-03-02"}}]
    for i, (day, loinc, _value, _unit, ucum, v, fid, status) in enumerate(LABS):
        when = f"{day[:4]}-{day[4:6]}-{day[6:]}T08:00:00+01:00"
        obs = {"resourceType": "Observation", "identifier": [{"system": "urn:lis", "value": fid}],
               "status": FHIR_STATUS[status],
               "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
               "subject": {"reference": "urn:uuid:p1"}, "effectiveDateTime": when}
        if status != "D":
            obs["valueQuantity"] = {"value": v, "unit": ucum, "system": "http://unitsofmeasure.org", "code": ucum}
        entries.append({"fullUrl": f"urn:uuid:o{i}", "resource": obs})
    for day, aid in RTX:
        entries.append({"fullUrl": f"urn:uuid:{aid}", "resource": {
            "resourceType": "MedicationAdministration", "identifier": [{"system": "urn:pharm", "value": aid}],
            "status": "completed", "medicationCodeableConcept": {"text": "rituximab"},
            "subject": {"reference": "urn:uuid:p1"},
            "effectiveDateTime": f"{day[:4]}-{day[4:6]}-{day[6:]}T09:00:00+01:00",
            "dosage": {"route": {"text": "IV"}, "dose": {"value": 1000, "unit": "mg",
                                                         "system": "http://unitsofmeasure.org", "code": "mg"}}}})
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})


def alerts_after(payload: str, fmt: str, db: Path) -> tuple[set[tuple[str, str, str]], list[tuple], int]:
    rt = runtime.init(Settings(database_url=f"sqlite:///{db}", broker_url=None, _env_file=None))
    try:
        upgrade(rt.engine)
        ids = [a.inbox_id for a in accept(rt, payload.encode(), fmt, f"course.{fmt}")]
        service.process(rt, ids, AS_OF)
        with rt.engine.connect() as c:
            rows = list(c.execute(sa.text("select rule, severity, episode, evidence from alerts where status <> 'resolved'")))
            quarantined = c.execute(sa.text("select count(*) from quarantine")).scalar()
        evidence = sorted((r.rule, e.get("analyte") or e.get("medication") or e.get("derived"), e["value"],
                           str(e["effective_at"])[:10])
                          for r in rows for e in (json.loads(r.evidence) if isinstance(r.evidence, str) else r.evidence))
        return {(r.rule, r.severity, r.episode) for r in rows}, evidence, quarantined
    finally:
        runtime.reset()


def test_the_same_course_as_hl7_and_as_fhir_raises_the_same_alerts(tmp_path: Path) -> None:
    via_hl7, evidence_hl7, q_hl7 = alerts_after(hl7(), "hl7v2", tmp_path / "hl7.db")
    via_fhir, evidence_fhir, q_fhir = alerts_after(fhir(), "fhir", tmp_path / "fhir.db")
    assert (q_hl7, q_fhir) == (0, 0)
    assert via_hl7 == via_fhir
    rules = {r for r, _, _ in via_hl7}
    assert {"rtx_non_response", "albumin_low_thrombosis"} <= rules
    assert ("rtx_non_response", "critical", "rituximab:2025-01-10") in via_hl7
    assert evidence_hl7 == evidence_fhir
    # the corrected titer (150) is the one the evidence carries, never the superseded 160
    titers = [v for rule, name, v, _ in evidence_hl7 if name == "anti_pla2r"]
    assert 160 not in titers
