"""A second *final* result with the identity of a stored one but another value is no correction
(issue 12, item 4: a correction is HL7 OBX-11 C or FHIR amended/corrected). It is quarantined with
its reason, the first value stays in force, and `ingest` counts it as quarantined, not "corrected".
The same value again (even in another unit) is a duplicate; a real correction is "corrected".

Every format, through `imn-monitor ingest` on the embedded default (a SQLite file, in-process tasks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
PID = "P-CONFLICT"


def _ndjson(value: float, unit: str, status: str, n: int) -> str:
    return json.dumps({"type": "lab", "patient_id": PID, "analyte": "serum_albumin", "value": value,
                       "unit": unit, "effective_at": "2025-08-20T08:00:00Z", "source": "LIS",
                       "source_id": "ALB-1", "status": status}) + "\n"


def _csv(value: float, unit: str, status: str, n: int) -> str:
    return ("type,patient_id,analyte,value,unit,effective_at,source,source_id,status\n"
            f"lab,{PID},serum_albumin,{value},{unit},2025-08-20T08:00:00Z,LIS,ALB-1,{status}\n")


def _hl7(value: float, unit: str, status: str, n: int) -> str:
    obx11 = {"final": "F", "corrected": "C"}[status]
    return "\r".join([
        rf"MSH|^~\&|LIS|HOSP|IMN|NEPH|20250820{10 + n:02d}0000+0000||ORU^R01|MSG-{n}|P|2.5.1",
        f"PID|1||{PID}^^^HOSP^MR",  # no birth date or sex: no patient record
        "OBR|1|ORD-1|F-1^LIS|1751-7^Albumin^LN|||20250820080000+0000",
        f"OBX|1|NM|1751-7^Albumin^LN||{value}|{unit}|||||{obx11}|||20250820080000+0000",
    ]) + "\r"


def _fhir(value: float, unit: str, status: str, n: int) -> str:
    return json.dumps({
        "resourceType": "Observation", "id": f"obs-{n}",
        "identifier": [{"system": "urn:oid:1.2.3.4.5.200", "value": "ALB-1"}],
        "status": status, "code": {"coding": [{"system": "http://loinc.org", "code": "1751-7"}]},
        "subject": {"reference": f"Patient/{PID}"}, "effectiveDateTime": "2025-08-20T08:00:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    })


FORMATS: dict[str, tuple[str, Callable[[float, str, str, int], str]]] = {
    "ndjson": ("ndjson", _ndjson), "csv": ("csv", _csv), "hl7v2": ("hl7", _hl7), "fhir": ("json", _fhir),
}


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    from cli.main import app
    from tasks import runtime
    from tasks.settings import Settings

    runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'imn.db'}", broker_url=None, webhook_url=None,
                          _env_file=None))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    yield run
    runtime.reset()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_second_final_with_another_value_is_quarantined_not_a_correction(cli, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    suffix, render = FORMATS[fmt]

    def ingest(value: float, unit: str, status: str, n: int) -> dict[str, int]:
        path = tmp_path / f"{n}.{suffix}"
        path.write_text(render(value, unit, status, n))
        counts = json.loads(cli("ingest", str(path), "--format", fmt, "--as-of", "2025-09-01", "--json"))
        return {k: counts[k] for k in ("accepted", "duplicate", "corrected", "retracted", "quarantined")}

    def albumin() -> float:
        return json.loads(cli("patient", PID, "--as-of", "2025-09-01", "--json"))["latest"]["serum_albumin"]["value"]

    first = ingest(24, "g/L", "final", 1)
    assert first["accepted"] == 1 and first["quarantined"] == 0
    # another final of the same result, another value: was counted "corrected 1" and replaced 24 by 31
    assert ingest(31, "g/L", "final", 2) == {"accepted": 0, "duplicate": 0, "corrected": 0, "retracted": 0,
                                             "quarantined": 1}
    assert albumin() == 24
    reasons = [q for q in json.loads(cli("quarantine", "--json")) if "earlier final" in q["reason"]]
    assert len(reasons) == 1
    assert "31 g/L where 24 g/L is stored" in reasons[0]["reason"]
    assert "as a correction" in reasons[0]["reason"] and "OBX-11 C" in reasons[0]["reason"]
    # the stored value re-delivered in another unit: the same fact, a duplicate (idempotent)
    assert ingest(2.4, "g/dL", "final", 3) == {"accepted": 0, "duplicate": 1, "corrected": 0, "retracted": 0,
                                               "quarantined": 0}
    # a real correction is one
    assert ingest(31, "g/L", "corrected", 4)["corrected"] == 1
    assert albumin() == 31
