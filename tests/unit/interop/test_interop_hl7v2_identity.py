"""Issue 12, items 4 and 6 (HL7 v2): serial results in one message are separate results, and a
message is never "accepted 0, quarantined 0".

Item 4: many OBX of one code under one OBR, each with its own OBX-14, were one identity: counted
"corrected 5000" and one value stayed. Identities that were already unique must not change (a
re-sent or corrected message must still find the stored result): IDENTITIES_BEFORE_ISSUE_12 was
computed by the parser before the change and is pinned here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import LabResult
from monitor.interop import CodeMap, parse_payload
from monitor.interop.hl7v2 import parse_hl7v2
from tests.unit.interop._context import CONTEXT

ROOT = Path(__file__).resolve().parents[3]
CODE_MAP = CodeMap.from_toml((ROOT / "examples" / "codemap.toml").read_text())
MSH = r"MSH|^~\&|LIS|HOSP|IMN|NEPH|20250110143000+0100||ORU^R01^ORU_R01|C1|P|2.5.1|||AL|NE"
PID = "PID|1||MRN-1^^^HOSP^MR||Doe^Jane||19680302|F"
OBR = "OBR|1|ORD-1|F-1^LIS|TACPK^Tacrolimus profile^L|||20250110080000+0100"


def obx(i: int, value: str, time: str = "", status: str = "F", sub_id: str = "") -> str:
    return f"OBX|{i}|NM|1751-7^Albumin^LN|{sub_id}|{value}|g/L|||||{status}|||{time}"


def labs(result) -> list[LabResult]:  # type: ignore[no-untyped-def]
    return [e for e in result.events if isinstance(e, LabResult)]


def serial_message(n: int) -> str:
    """n OBX of one code under one OBR, without sub-IDs, one a minute from 08:00, each with its OBX-14."""
    t0 = datetime(2025, 1, 10, 8, 0)
    times = [(t0 + timedelta(minutes=m)).strftime("%Y%m%d%H%M%S") + "+0100" for m in range(n)]
    return "\r".join([MSH, PID, OBR, *(obx(i + 1, str(20 + i % 30), t) for i, t in enumerate(times))])


def test_serial_results_under_one_obr_are_separate_results() -> None:
    result = parse_hl7v2(serial_message(5000), None, CONTEXT)
    found = labs(result)
    assert len(found) == 5000 and result.rejected == []
    assert len({e.identity for e in found}) == 5000  # was 1: "corrected 4999", and one value stayed
    assert len({e.effective_at for e in found}) == 5000
    assert found[0].source_id == "F-1:1751-7@20250110080000+0100"
    assert result.acks[0].code == "AA"


def test_a_correction_is_a_C_of_the_same_serial_result() -> None:
    first = labs(parse_hl7v2(serial_message(3), None, CONTEXT))
    # the lab re-sends the order with the second value corrected
    times = [f"2025011008{m:02d}00+0100" for m in range(3)]
    again = "\r".join([MSH, PID, OBR, obx(1, "20", times[0]), obx(2, "25", times[1], "C"), obx(3, "22", times[2])])
    second = labs(parse_hl7v2(again, None, CONTEXT))
    assert [e.identity for e in second] == [e.identity for e in first]
    assert second[1].status == "corrected" and second[1].value == 25
    assert [e.content_hash for e in (first[0], first[2])] == [e.content_hash for e in (second[0], second[2])]


def test_a_second_final_value_for_the_same_result_in_one_message_is_quarantined() -> None:
    # same order, code, sub-ID and time: not serial results; an F is no correction
    msg = "\r".join([MSH, PID, OBR, obx(1, "22", "20250110080000+0100"), obx(2, "30", "20250110080000+0100")])
    result = parse_hl7v2(msg, None, CONTEXT)
    assert [e.value for e in labs(result)] == [22]
    (rej,) = result.rejected
    assert rej.line == 5 and rej.field == "OBX-11" and "not a correction" in rej.reason
    assert result.acks[0].code == "AE"
    # ... while a C of it, or the same value again, is read (the repeat is a duplicate in storage)
    for second in (obx(2, "30", "20250110080000+0100", "C"), obx(2, "22", "20250110080000+0100")):
        ok = parse_hl7v2("\r".join([MSH, PID, OBR, obx(1, "22", "20250110080000+0100"), second]), None, CONTEXT)
        assert ok.rejected == [] and len(labs(ok)) == 2
    # ... and OBX-4 sub-IDs tell two results apart, as HL7 intends
    subs = parse_hl7v2("\r".join([MSH, PID, OBR, obx(1, "22", "20250110080000+0100", sub_id="1"),
                                  obx(2, "30", "20250110080000+0100", sub_id="2")]), None, CONTEXT)
    assert subs.rejected == [] and len({e.identity for e in labs(subs)}) == 2


# identities the parser gave these files before issue 12 (git ec0b7a8): stored results carry them
IDENTITIES_BEFORE_ISSUE_12 = {
    "examples/oru_r01_v251.hl7": [
        "patient:MRN-1001", "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:1751-7", "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:2160-0",
        "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:98979-8", "lab:CENTRAL-LIS/UNIV-HOSP:F-5502:2889-4",
        "lab:CENTRAL-LIS/UNIV-HOSP:F-5503:73737-9", "patient:MRN-1001", "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:1751-7",
        "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:2160-0", "patient:MRN-1001", "lab:REFLAB/REF-LABS:RL-5520:PLA2R",
        "lab:REFLAB/REF-LABS:RL-5520:CD19ABS", "patient:MRN-1001", "medication:PHARM/UNIV-HOSP:ADM-4410:RXA:1",
    ],
    "tests/fuzz/corpus/hl7v2/valid_oru_r01_v251.hl7": [
        "patient:MRN-1001", "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:1751-7", "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:2160-0",
        "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:73737-9",
    ],
    "tests/fuzz/corpus/hl7v2/valid_v23_lf_line_ends.hl7": [
        "patient:MRN-1001", "lab:REFLAB/REF-LABS:RL-5520:PLA2R", "lab:REFLAB/REF-LABS:RL-5520:CD19ABS",
    ],
    "tests/fuzz/corpus/hl7v2/valid_batch_crlf.hl7": [
        "patient:MRN-1001", "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:1751-7", "patient:MRN-1001",
        "lab:CENTRAL-LIS/UNIV-HOSP:F-5501:1751-7",
    ],
    "tests/fuzz/corpus/hl7v2/ras_rxa_administrations.hl7": [
        "patient:MRN-1001", "medication:PHARM/UNIV-HOSP:ADM-4410:RXA:1", "medication:PHARM/UNIV-HOSP:ADM-4410:RXA:2",
        "medication:PHARM/UNIV-HOSP:ADM-4410:RXA:5",
        # RXA 3 (aspirin) was quarantined as an unknown drug before issue 11 added the antiplatelet
        # class; it is a new result, not a changed identity
        "medication:PHARM/UNIV-HOSP:ADM-4410:RXA:3",
    ],
}


@pytest.mark.parametrize("path", sorted(IDENTITIES_BEFORE_ISSUE_12))
def test_identities_that_were_unique_do_not_change(path: str) -> None:
    result = parse_payload((ROOT / path).read_bytes(), code_map=CODE_MAP, context=CONTEXT)
    assert sorted(e.identity for e in result.events) == sorted(IDENTITIES_BEFORE_ISSUE_12[path])


# ------------------------------------------------------------------ item 6: nothing vanishes


@pytest.mark.parametrize("separator", [" ", "  ", "\t"])
def test_segments_separated_by_spaces_are_refused_with_the_reason(separator: str) -> None:
    # was "accepted 0, quarantined 0" and ACK AA: the whole message read as one long MSH
    text = separator.join([MSH, PID, OBR, obx(1, "22", "20250110080000+0100")])
    result = parse_payload(text, context=CONTEXT)
    assert result.format == "hl7v2" and result.events == []
    (rej,) = result.rejected
    assert rej.field == "MSH" and "separated by spaces, not carriage returns" in rej.reason
    assert result.acks[0].code == "AR" and "carriage returns" in (result.acks[0].reason or "")


def test_segments_joined_later_in_the_message_are_refused_too() -> None:
    text = "\r".join([MSH, PID + " " + OBR, obx(1, "22", "20250110080000+0100")])
    (rej,) = parse_hl7v2(text, None, CONTEXT).rejected
    assert "'OBR' follows a space inside the PID segment" in rej.reason


def test_a_message_with_nothing_to_read_is_refused() -> None:
    for segments, why in (([MSH], "no segment after MSH"),
                          ([MSH, "PID|1||MRN-1", OBR], "nothing to read")):
        result = parse_hl7v2("\r".join(segments), None, CONTEXT)
        (rej,) = result.rejected
        assert why in rej.reason and result.acks[0].code == "AR"


@pytest.mark.parametrize("field3, shown", [("", ""), ("^Albumin", " (only the text 'Albumin')")])
def test_empty_obx3_says_so(field3: str, shown: str) -> None:
    # was "not a monitored analyte: code ''", which does not even turn the ACK into AE
    result = parse_hl7v2("\r".join([MSH, PID, OBR, f"OBX|1|NM|{field3}||22|g/L|||||F"]), None, CONTEXT)
    (rej,) = result.rejected
    assert rej.field == "OBX-3" and rej.reason == f"OBX-3 (observation identifier) is empty{shown}"
    assert result.acks[0].code == "AE"


@pytest.mark.parametrize("kind, reason", [
    ("XX", "OBX-2 value type 'XX' is not an HL7 value type (table 0125)"),
    ("N M", "OBX-2 value type 'N M' is not an HL7 value type (table 0125)"),
    ("CWE", "OBX-2 value type 'CWE' is not numeric"),
    ("DT", "OBX-2 value type 'DT' is not numeric"),
])
def test_obx2_value_type_is_named_in_the_reason(kind: str, reason: str) -> None:
    result = parse_hl7v2("\r".join([MSH, PID, OBR, f"OBX|1|{kind}|1751-7^Albumin^LN||22|g/L|||||F"]), None, CONTEXT)
    (rej,) = result.rejected
    assert (rej.field, rej.value) == ("OBX-2", kind) and reason in rej.reason
