"""HL7 v2 ORU^R01: line endings, MLLP, batches, versions, OBX values and statuses, RXA, ACKs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from monitor.events import LabResult, MedicationEvent, Patient
from monitor.interop import CodeMap, parse_payload
from monitor.interop.hl7v2 import ack_for, build_ack, parse_hl7v2, split_messages
from tests.unit.interop._context import CONTEXT

MSG_251 = [
    r"MSH|^~\&|CENTRAL-LIS|UNIV-HOSP|IMN|NEPH|20250110143000+0100||ORU^R01^ORU_R01|CL1|P|2.5.1",
    r"PID|1||MRN-1^^^UNIV-HOSP^MR||Doe^Jane||19680302|F",
    r"OBR|1|ORD-1|F-1^LIS|24323-8^Panel^LN|||20250110081500+0100",
    r"OBX|1|NM|1751-7^Albumin^LN||22|g/L|||||F|||20250110081500+0100",
    r"OBX|2|NM|2160-0^Creatinine^LN||1.10|mg/dL|||||F",
    r"OBR|2|ORD-2|F-2^LIS|2889-4^Prot 24h^LN|||20250109080000",
    r"OBX|1|SN|2889-4^Prot 24h^LN||>^1500|mg/(24.h)|||||P",
    r"OBR|3|ORD-3|F-3^LIS|73737-9^PLA2R^LN|||20250110",
    r"OBX|1|SN|73737-9^PLA2R Ab^LN|1|<^2|RU/mL|||||F",
    r"OBX|2|NM|73737-9^PLA2R Ab^LN|2|<=5|U/mL|||||F",
]


def labs(result) -> list[LabResult]:  # type: ignore[no-untyped-def]
    return [e for e in result.events if isinstance(e, LabResult)]


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_line_endings_give_the_same_events(sep: str) -> None:
    result = parse_hl7v2(sep.join(MSG_251) + sep)
    assert result.rejected == []
    found = [(e.analyte, e.value, e.unit, e.comparator, e.status) for e in labs(result)]
    assert found == [
        ("serum_albumin", 22.0, "g/L", None, "final"),
        ("serum_creatinine", 97.262, "umol/L", None, "final"),
        ("proteinuria_24h", 1.5, "g/d", ">", "preliminary"),
        ("anti_pla2r", 2.0, "RU/mL", "<", "final"),
        ("anti_pla2r", 5.0, "RU/mL", "<=", "final"),
    ]
    patient = next(e for e in result.events if isinstance(e, Patient))
    assert (patient.patient_id, patient.birth_date, patient.sex) == ("MRN-1", date(1968, 3, 2), "female")
    assert [a.code for a in result.acks] == ["AA"]


def test_times_identity_and_source() -> None:
    albumin, creatinine, protein, pla2r, _ = labs(parse_hl7v2("\r".join(MSG_251)))
    plus1 = timezone(timedelta(hours=1))
    assert albumin.effective_at == datetime(2025, 1, 10, 8, 15, tzinfo=plus1)  # OBX-14
    assert creatinine.effective_at == datetime(2025, 1, 10, 8, 15, tzinfo=plus1)  # OBR-7
    assert protein.effective_at == datetime(2025, 1, 9, 8, 0, tzinfo=UTC)  # naive = UTC
    assert pla2r.effective_at == datetime(2025, 1, 10, tzinfo=UTC)
    assert albumin.source == "CENTRAL-LIS/UNIV-HOSP"
    assert albumin.source_id == "F-1:1751-7" and pla2r.source_id == "F-3:73737-9:1"
    assert albumin.recorded_at == datetime(2025, 1, 10, 14, 30, tzinfo=plus1)  # MSH-7


def test_mllp_framed_messages_and_batches() -> None:
    second = [s.replace("CL1", "CL2").replace("MRN-1", "MRN-2") for s in MSG_251]
    framed = "\x0b" + "\r".join(MSG_251) + "\r\x1c\r" + "\x0b" + "\r".join(second) + "\r\x1c\r"
    result = parse_payload(framed.encode(), context=CONTEXT)
    assert result.format == "hl7v2"
    assert [a.control_id for a in result.acks] == ["CL1", "CL2"]
    assert {e.patient_id for e in result.events} == {"MRN-1", "MRN-2"}
    batch = "\n".join([r"FHS|^~\&|LIS", r"BHS|^~\&|LIS", *MSG_251, *second, "BTS|2", "FTS|1"])
    assert len(parse_payload(batch, context=CONTEXT).events) == len(result.events)
    assert len(split_messages(batch)) == 2 and split_messages(framed)[0].startswith("MSH|")


def test_v23_with_local_codes_through_the_code_map() -> None:
    msg = "\r".join(
        [
            r"MSH|^~\&|REFLAB|REF-LABS|IMN|NEPH|20250802100000||ORU^R01|RL-1|P|2.3",
            r"PID|1||MRN-1||DOE^JANE||19680302|F",
            r"OBR|1|R-1|RL-5520|PLA2R^Anti-PLA2R IgG^L|||20250801093000",
            r"OBX|1|SN|PLA2R^Anti-PLA2R IgG^L||<^2|RE/ml|<14||||F",
            r"OBX|2|NM|CD19ABS^CD19 abs^L||3|cells/uL|||||F",
            r"OBX|3|NM|CD19ABS^CD19 abs^L||3|/uL|||||F",
        ]
    )
    without = parse_hl7v2(msg)
    assert labs(without) == [] and all(
        r.reason.startswith("not a monitored analyte") for r in without.rejected
    )
    assert without.acks[0].code == "AA"  # unmonitored codes are no error at the sender
    code_map = CodeMap.from_toml(
        '[units]\n"RE/ml" = "RU/mL"\n[sources."REFLAB".analytes]\n'
        'PLA2R = "anti_pla2r"\nCD19ABS = "cd19_count"\n'
    )
    other_source = parse_hl7v2(msg.replace("REFLAB|", "OTHER|"), code_map)
    assert labs(other_source) == []
    result = parse_hl7v2(msg, code_map)
    assert [(e.analyte, e.value, e.comparator) for e in labs(result)] == [
        ("anti_pla2r", 2.0, "<"),
        ("cd19_count", 3.0, None),
        ("cd19_count", 3.0, None),
    ]
    assert result.rejected == [] and result.acks[0].version == "2.3"


def test_loinc_in_the_alternate_triplet_is_used() -> None:
    msg = "\r".join([*MSG_251[:3], r"OBX|1|NM|ALB^Albumin^99LOC^1751-7^Albumin^LN||35|g/L|||||F"])
    assert labs(parse_hl7v2(msg))[0].analyte == "serum_albumin"


def test_corrected_and_deleted_results_keep_the_identity_of_the_original() -> None:
    original = parse_hl7v2("\r".join(MSG_251[:4]))
    corrected = parse_hl7v2(
        "\r".join([*MSG_251[:3], MSG_251[3].replace("|22|", "|21|").replace("|F|", "|C|")])
    )
    deleted = parse_hl7v2("\r".join([*MSG_251[:3], r"OBX|1|NM|1751-7^Albumin^LN||||||||D"]))
    (a,), (b,), (c,) = labs(original), labs(corrected), labs(deleted)
    assert b.status == "corrected" and b.value == 21 and c.status == "entered-in-error"
    assert a.identity == b.identity == c.identity
    assert a.content_hash != b.content_hash


@pytest.mark.parametrize(
    "obx, field, reason",
    [
        (r"OBX|1|NM|1751-7^Alb^LN||||||||X", "OBX-11", "cannot be obtained"),
        (r"OBX|1|NM|1751-7^Alb^LN||22|g/L|||||I", "OBX-11", "no result yet"),
        (r"OBX|1|NM|1751-7^Alb^LN||22|g/L|||||Q", "OBX-11", "unknown result status"),
        (r"OBX|1|ST|1751-7^Alb^LN||see note|g/L|||||F", "OBX-5", "non-numeric value"),
        (r"OBX|1|NM|1751-7^Alb^LN||1,5|g/L|||||F", "OBX-5", "non-numeric value"),
        (r"OBX|1|NM|1751-7^Alb^LN||||||||F", "OBX-5", "no value"),
        (r"OBX|1|SN|1751-7^Alb^LN||^1^-^5|g/L|||||F", "OBX-5", "range or ratio"),
        (r"OBX|1|SN|1751-7^Alb^LN||<>^5|g/L|||||F", "OBX-5", "SN comparator"),
        # OBX-2 is what rules the value out, so the rejection names OBX-2 (was OBX-5 before issue 12)
        (r"OBX|1|CWE|1751-7^Alb^LN||POS^Positive|g/L|||||F", "OBX-2", "not numeric"),
        (r"OBX|1|NM|1751-7^Alb^LN||22~23|g/L|||||F", "OBX-5", "several values"),
        (r"OBX|1|NM|1751-7^Alb^LN||22||||||F", "OBX-6", "no unit"),
        (r"OBX|1|NM|1751-7^Alb^LN||22|mmol/L|||||F", "unit", "not accepted"),
        (r"OBX|1|NM|1751-7^Alb^LN||220|g/L|||||F", "value", "plausible"),
        (r"OBX|1|NM|1751-7^Alb^LN||22|g/L|||||F|||2025", "OBX-14", "observation time"),
    ],
)
def test_unusable_results_are_rejected_with_the_reason(obx: str, field: str, reason: str) -> None:
    result = parse_hl7v2("\r".join([*MSG_251[:3], obx, MSG_251[4]]))
    assert len(labs(result)) == 1  # the good OBX after it still lands
    (rej,) = result.rejected
    assert rej.field == field and reason in rej.reason and rej.line == 4 and rej.raw == obx
    assert result.acks[0].code == "AE" and reason in (result.acks[0].reason or "")


def test_results_without_a_patient_are_rejected() -> None:
    result = parse_hl7v2("\r".join([MSG_251[0], *MSG_251[2:4]]))
    assert result.rejected[0].field == "PID-3"


def test_escaped_text_and_unknown_segments() -> None:
    msg = "\r".join(
        [
            *MSG_251[:3],
            r"ZLB|1|custom",
            r"NTE|1||a \T\ b \F\ c",
            r"OBX|1|NM|1751-7^Alb \T\ X^LN||\X33\5|g/L|||||F",
        ]
    )
    (albumin,) = labs(parse_hl7v2(msg))
    assert albumin.value == 35.0


@pytest.mark.parametrize(
    "msh, code, reason",
    [
        (r"MSH|^~\&|LIS|H|||20250101||ORU^R01|X1|P|2.9", "AR", "not readable"),
        (r"MSH|^~\&|LIS|H|||20250101||ORU^R01|X1|P|", "AR", "version id is missing"),
        (r"MSH|^~\&|LIS|H|||20250101||ORM^O01|X1|P|2.5.1", "AR", "not handled"),
    ],
)
def test_unreadable_messages_are_refused_with_ar(msh: str, code: str, reason: str) -> None:
    result = parse_hl7v2("\r".join([msh, *MSG_251[1:]]) + "\r" + "\r".join(MSG_251))
    assert result.acks[0].code == code and reason in (result.acks[0].reason or "")
    assert result.rejected[0].field == "MSH" and reason in result.rejected[0].reason
    assert result.acks[1].code == "AA" and len(labs(result)) == 5  # the next message still lands


def test_garbage_segment_refuses_its_message() -> None:
    result = parse_hl7v2("\r".join([*MSG_251[:3], "this is not a segment", MSG_251[3]]))
    assert result.acks[0].code == "AR" and "not an HL7 segment" in result.rejected[0].reason


def test_segments_before_any_msh_are_rejected() -> None:
    result = parse_hl7v2("PID|1||X\r" + "\r".join(MSG_251))
    assert result.rejected[0].line == 1 and "outside any message" in result.rejected[0].reason


def test_rxa_administration_becomes_a_medication_event() -> None:
    msg = "\r".join(
        [
            r"MSH|^~\&|PHARM|UNIV-HOSP|IMN|NEPH|20250201133500||RAS^O17^RAS_O17|PH-1|P|2.5.1",
            r"PID|1||MRN-1^^^UNIV-HOSP^MR",
            r"ORC|RE|RX-1|ADM-1^PHARM",
            r"RXA|0|1|20250201090000|20250201133000|RTX^Rituximab 1000 mg/100 mL^LOCAL|1000|mg"
            r"|||||||||||||CP|A",
            r"RXR|IV^Intravenous^HL70162",
            r"RXA|0|2|20250215090000||CTX^Cyclophosphamide^LOCAL|750|mg/m2|||||||||||||CP|A",
            r"RXA|0|3|20250301090000||RTX^Rituximab^LOCAL|1000|mg|||||||||||||RE",
            r"RXA|0|4|20250302090000||XYZ^Unobtainium^LOCAL|1|mg|||||||||||||CP",
        ]
    )
    result = parse_hl7v2(msg)
    meds = [e for e in result.events if isinstance(e, MedicationEvent)]
    assert [(m.drug, m.dose, m.unit, m.route, m.start) for m in meds] == [
        ("rituximab", 1000, "mg", "iv", date(2025, 2, 1)),
        ("cyclophosphamide", 750, "mg/m2", None, date(2025, 2, 15)),
    ]
    assert meds[0].source_id == "ADM-1:RXA:1"
    assert [r.field for r in result.rejected] == ["RXA-20", "RXA-5"]


def test_build_ack_is_valid_hl7_for_each_code_and_version() -> None:
    for version in ("2.3", "2.5.1"):
        for code in ("AA", "AE", "AR"):
            text = build_ack("CL|1^x", code, "bad value | in OBX^5", version, timestamp="20250110120000")
            msg = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
            names = [s.name for s in msg.children]
            assert names == (["MSH", "MSA"] if code == "AA" else ["MSH", "MSA", "ERR"])
            assert msg.msa.msa_1.value == code
            assert msg.msa.msa_2.value == r"CL\F\1\S\x"  # delimiters in the id are escaped
            assert msg.msh.msh_12.value == version


def test_ack_for_a_parsed_message() -> None:
    result = parse_hl7v2("\r".join([MSG_251[0].replace("2.5.1", "2.9"), *MSG_251[1:]]))
    text = ack_for(result.acks[0], timestamp="20250110120000")
    assert "MSA|AR|CL1|" in text and "ERR|||203^Unsupported version id^HL70357" in text
    assert text.endswith("\r")


def test_example_file(examples) -> None:  # type: ignore[no-untyped-def]
    code_map = CodeMap.from_toml((examples / "codemap.toml").read_text())
    result = parse_payload((examples / "oru_r01_v251.hl7").read_bytes(), code_map=code_map, context=CONTEXT)
    assert result.format == "hl7v2"
    assert [a.code for a in result.acks] == ["AA", "AA", "AE", "AA"]
    assert sorted(r.field for r in result.rejected) == ["OBX-11", "OBX-3", "OBX-5"]
    statuses = {(e.analyte, e.status) for e in labs(result)}
    assert ("serum_albumin", "corrected") in statuses and ("serum_creatinine", "entered-in-error") in statuses
    assert any(isinstance(e, MedicationEvent) and e.drug == "rituximab" for e in result.events)
