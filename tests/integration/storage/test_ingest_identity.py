"""Issue 12, item 4, in storage: serial HL7 v2 results in one message are stored as separate results
(they were "corrected 4999" with one value left), and re-ingesting an HL7 file whose results are
already stored gives duplicates, not new results (identities that were unique did not change:
tests/unit/interop/test_interop_hl7v2_identity.py pins them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.interop import CodeMap, ValidationContext, parse_payload
from storage import repository as repo
from storage.db import session
from storage.models import EventRow

from .builders import T0

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CODE_MAP = CodeMap.from_toml((ROOT / "examples" / "codemap.toml").read_text())
CONTEXT = ValidationContext(received_at=T0 + timedelta(days=365))


def _store(engine, data: bytes, name: str):  # type: ignore[no-untyped-def]
    result = parse_payload(data, code_map=CODE_MAP, context=CONTEXT)
    with session(engine) as s:
        inbox, _ = repo.store_payload(s, data, "hl7v2", name, T0)
        return repo.store_events(s, inbox, result.events, T0)


def test_reingesting_an_existing_hl7_file_gives_duplicates_not_new_results(engine) -> None:  # type: ignore[no-untyped-def]
    data = (ROOT / "examples" / "oru_r01_v251.hl7").read_bytes()
    first = _store(engine, data, "oru.hl7")
    assert first.accepted > 0
    with session(engine) as s:
        rows_before = s.execute(select(func.count()).select_from(EventRow)).scalar_one()
    # the same messages again, as a laboratory re-sends them (other line ends: other bytes, a new inbox row)
    again = _store(engine, data.replace(b"\r", b"\r\n"), "oru-resent.hl7")
    assert (again.accepted, again.corrected, again.retracted) == (0, 0, 0)
    assert again.duplicate == first.accepted + first.corrected + first.retracted + first.duplicate
    with session(engine) as s:
        assert s.execute(select(func.count()).select_from(EventRow)).scalar_one() == rows_before


def test_serial_results_in_one_message_are_stored_as_separate_results(engine) -> None:  # type: ignore[no-untyped-def]
    n = 300
    obx = [f"OBX|{i + 1}|NM|1751-7^Albumin^LN||{20 + i % 20}|g/L|||||F|||"
           f"20250110{8 + i // 60:02d}{i % 60:02d}00+0100" for i in range(n)]
    msg = "\r".join([r"MSH|^~\&|LIS|HOSP|IMN|NEPH|20250110143000+0100||ORU^R01|S1|P|2.5.1",
                     "PID|1||MRN-9^^^HOSP^MR||Doe^Jane||19680302|F",
                     "OBR|1|ORD-9|F-9^LIS|1751-7^Albumin^LN|||20250110080000+0100", *obx]) + "\r"
    stored = _store(engine, msg.encode(), "serial.hl7")
    assert (stored.accepted, stored.corrected) == (n + 1, 0)  # the results and the patient; was (2, 299)
    with session(engine) as s:
        current = s.execute(select(func.count()).select_from(EventRow)
                            .where(EventRow.kind == "lab", EventRow.is_current)).scalar_one()
    assert current == n
