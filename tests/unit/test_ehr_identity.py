"""EHR patient -> monitor patient (tasks/ehr_identity.py): by FHIR id, or by the configured MRN only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from storage.db import make_engine, session, upgrade
from storage.models import PatientRow
from tasks.ehr_identity import candidates, resolve_patient
from tasks.settings import Settings

MRN = "urn:oid:1.2.3.4.5"


def patient(pid: str, *idents: tuple[str, str]) -> dict:
    return {"resourceType": "Patient", "id": pid,
            "identifier": [{"system": sys, "value": val} for sys, val in idents]}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db: Path = tmp_path_factory.mktemp("ehr") / "ehr.db"
    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    with session(eng) as s:
        for pid in ("P001", "P002", "fhir-77"):
            s.add(PatientRow(patient_id=pid, first_seen_at=now))
    yield eng
    eng.dispose()


def test_fhir_id_used_directly_without_mrn_system(engine: Engine) -> None:
    assert resolve_patient(engine, "fhir-77", None) == "fhir-77"
    assert resolve_patient(engine, "fhir-77", patient("fhir-77", (MRN, "P001"))) == "fhir-77"


def test_unknown_patient_is_none(engine: Engine) -> None:
    assert resolve_patient(engine, "nobody", None) is None
    assert resolve_patient(engine, "", None) is None
    assert resolve_patient(engine, "x", patient("x", (MRN, "P999")), mrn_system=MRN) is None


def test_mrn_of_the_configured_system_is_used(engine: Engine) -> None:
    res = patient("ehr-1", ("urn:other", "P002"), (MRN, "P001"))
    assert resolve_patient(engine, "ehr-1", res, mrn_system=MRN) == "P001"


def test_mrn_system_set_never_falls_back_to_the_fhir_id(engine: Engine) -> None:
    # the EHR's server id happens to equal a monitor id: with an MRN system configured it means nothing
    assert resolve_patient(engine, "P002", None, mrn_system=MRN) is None
    assert resolve_patient(engine, "P002", patient("P002", ("urn:other", "P002")), mrn_system=MRN) is None


def test_contradicting_patient_resource_resolves_to_nobody(engine: Engine) -> None:
    assert resolve_patient(engine, "ehr-1", patient("ehr-2", (MRN, "P001")), mrn_system=MRN) is None
    assert resolve_patient(engine, "fhir-77", {"resourceType": "Practitioner", "id": "fhir-77"}) is None


def test_two_known_mrns_are_ambiguous(engine: Engine) -> None:
    res = patient("ehr-1", (MRN, "P001"), (MRN, "P002"))
    assert resolve_patient(engine, "ehr-1", res, mrn_system=MRN) is None
    # a second, unknown MRN does not make the known one ambiguous; a repeated one is the same person
    assert resolve_patient(engine, "ehr-1", patient("ehr-1", (MRN, "OLD-9"), (MRN, "P001")), mrn_system=MRN) == "P001"
    assert resolve_patient(engine, "ehr-1", patient("ehr-1", (MRN, "P001"), (MRN, "P001")), mrn_system=MRN) == "P001"


def test_accepts_an_open_session(engine: Engine) -> None:
    with session(engine, write=False) as s:
        assert resolve_patient(s, "x", patient("x", (MRN, "P002")), mrn_system=MRN) == "P002"


def test_candidates_pure() -> None:
    assert candidates(" a ", None, None) == ["a"]
    assert candidates("a", {"identifier": [{"system": MRN, "value": " m1 "}, "junk", {"system": MRN}]}, MRN) == ["m1"]


def test_settings_read_the_ehr_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMN_EHR_MRN_SYSTEM", MRN)
    monkeypatch.setenv("IMN_PUBLIC_URL", "https://monitor.example.org/")
    monkeypatch.setenv("IMN_CDS_TRUSTED_ISSUERS", '{"https://ehr.example.org": "https://ehr.example.org/jwks"}')
    monkeypatch.setenv("IMN_SMART_CLIENTS", '{"https://ehr.example.org/fhir": "imn-monitor"}')
    s = Settings(_env_file=None)
    assert s.ehr_mrn_system == MRN
    assert s.public_url == "https://monitor.example.org"
    assert s.cds_trusted_issuers == {"https://ehr.example.org": "https://ehr.example.org/jwks"}
    assert s.smart_clients == {"https://ehr.example.org/fhir": "imn-monitor"}
    monkeypatch.setenv("IMN_PUBLIC_URL", "monitor.example.org")
    with pytest.raises(ValueError, match="IMN_PUBLIC_URL"):
        Settings(_env_file=None)
