"""HL7 v2 (2.3-2.5.1 and later) ORU^R01 results and RXA administrations to events, with per-message ACKs.

Segments are walked in order (PID, then OBR, then its OBX) rather than by hl7apy's group paths,
which differ between versions. hl7apy checks each message's header against its version library
first: a message that cannot be read at all (unsupported version, broken header, a line that is
no segment) is rejected whole with an AR acknowledgement.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from monitor.analytes import RefusedCodeError
from monitor.events import LabResult
from monitor.interop.base import (
    NOT_UTF8,
    AckCode,
    Event,
    MessageAck,
    ParseResult,
    Rejected,
    catalogue_key,
    coded_analyte,
    decode,
    has_unstorable,
    is_refusal,
    retraction_placeholder,
    split_comparator,
    to_event,
)
from monitor.interop.codemap import CodeMap
from monitor.interop.hl7v2_er7 import (
    Encoding,
    Segment,
    encoding_of,
    escape,
    group_segments,
    parse_ts,
    segments,
    split_messages,
    valid_segment_name,
)
from monitor.interop.units import canonical_spelling
from monitor.validation import ValidationContext

__all__ = ["ack_for", "build_ack", "parse_hl7v2", "split_messages"]

LOINC_SYSTEMS = frozenset({"LN", "LOINC", "HTTP://LOINC.ORG", "2.16.840.1.113883.6.1"})
# OBX-11 observation result status (HL7 table 0085) -> event status; None = no result to store
OBX_STATUS: dict[str, str | None] = {
    "F": "final",
    "C": "corrected",
    "D": "entered-in-error",
    "W": "entered-in-error",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "": "final",
    "X": None,
    "I": None,
    "N": None,
    "O": None,
    "A": None,
}
_STATUS_WHY = {
    "X": "result cannot be obtained (OBX-11 = X)",
    "I": "specimen in lab, no result yet (OBX-11 = I)",
    "N": "not asked (OBX-11 = N)",
    "O": "order detail only, no result (OBX-11 = O)",
    "A": "amended based on adjustments (OBX-11 = A) is not a result this monitor reads",
}
PID_SEX = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
# message types that carry results, administrations or demographics; others are acknowledged AR
HANDLED_MESSAGES = frozenset({"ORU", "OUL", "VXU", "RAS", "RDS", "ADT"})
NOT_MONITORED = "not a monitored analyte"  # prefix: such rejections do not turn the ACK into AE
# RXA-20 completion status: refused / not administered are no administration
RXA_NOT_GIVEN = {"RE": "refused (RXA-20 = RE)", "NA": "not administered (RXA-20 = NA)"}
RXA_ACTION = {"D": "entered-in-error", "U": "corrected"}
# OBX-2 value types (HL7 table 0125, v2.3-2.8); of these only NM and SN are numbers by definition,
# and ST/TX/FT (and an empty OBX-2) are read when their text is one number
VALUE_TYPES = frozenset({
    "AD", "CE", "CF", "CK", "CN", "CNE", "CP", "CWE", "CX", "DR", "DT", "DTM", "ED", "FT", "GTS", "ID",
    "IS", "MA", "MO", "NA", "NM", "NR", "PN", "RP", "SN", "ST", "TM", "TN", "TS", "TX", "XAD", "XCN",
    "XON", "XPN", "XTN",
})
NUMERIC_TEXT_TYPES = frozenset({"NM", "ST", "TX", "FT", ""})
# segment ids that, after a space or tab inside another segment, show that segments were joined
# with spaces instead of carriage returns (a file pasted through an editor or an e-mail)
_JOINED_SEGMENT_IDS = ("MSH", "PID", "PD1", "PV1", "PV2", "NK1", "ORC", "OBR", "OBX", "NTE", "SPM",
                       "TQ1", "RXA", "RXR", "RXE", "RXO", "EVN", "AL1", "DG1", "FT1", "IN1", "GT1")


def build_ack(
    message_control_id: str,
    code: AckCode,
    reason: str | None,
    version: str = "2.5.1",
    *,
    timestamp: str = "",
    error_code: str = "207",
    sending_app: str = "IMN-MONITOR",
    receiving_app: str = "",
) -> str:
    """An ACK for one message: MSH + MSA, plus ERR when not AA. Pure: the caller passes the time
    (HL7 TS, e.g. '20250110120000+0100') because this module has no clock. Segments end with \\r.

    error_code is HL7 table 0357 (207 application error, 200 unsupported message type, 203
    unsupported version, 100 segment sequence error, 102 data type error)."""
    enc = Encoding()
    ctrl = escape(message_control_id)[:199] or "UNKNOWN"
    ver = version if version.replace(".", "").isdigit() else "2.5.1"
    text = escape(reason or "")[:80]
    segs = [
        f"MSH|^~\\&|{escape(sending_app)}||{escape(receiving_app)}||{escape(timestamp)}||ACK^R01^ACK"
        f"|ACK{ctrl}|P|{ver}",
        f"MSA|{code}|{ctrl}|{text}" if code != "AA" else f"MSA|AA|{ctrl}",
    ]
    if code != "AA":
        full = escape(reason or "error", enc)[:250]
        if _version_tuple(ver) >= (2, 5):
            # ERR-3 HL7 error code (required from 2.5), ERR-4 severity, ERR-8 user message
            segs.append(
                f"ERR|||{error_code}^{_ERR_TEXT.get(error_code, 'Application internal error')}"
                f"^HL70357|E||||{full}"
            )
        else:
            # v2.3/2.4: ERR-1 is segment^sequence^field^code&text&table
            segs.append(
                f"ERR|^^^{error_code}&{_ERR_TEXT.get(error_code, 'Application internal error')}&HL70357"
            )
    return "\r".join(segs) + "\r"


_ERR_TEXT = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "203": "Unsupported version id",
    "207": "Application internal error",
}


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


@dataclass
class _Context:
    """What the segments read so far say about the results that follow them."""

    enc: Encoding
    source: str | None
    sources: tuple[str | None, ...]
    recorded_at: datetime | None
    patient_id: str = ""
    order_id: str = ""
    order_time: str = ""
    next_segment: str = ""  # RXR follows its RXA and gives the route
    context: ValidationContext | None = None
    # OBX results of the message, made events once the whole message is read (_message_results)
    results: list[_Result] = field(default_factory=list)


@dataclass
class _Result:
    """One OBX's result before it becomes an event: its identity may depend on its siblings."""

    seg: Segment
    record: dict[str, Any]
    time_text: str  # OBX-14 as written, else OBR-7


def parse_hl7v2(
    data: bytes | str, code_map: CodeMap | None = None, context: ValidationContext | None = None
) -> ParseResult:
    code_map = code_map or CodeMap.empty()
    result = ParseResult([], [], "hl7v2")
    messages, orphans = group_segments(segments(decode(data)))
    for number, seg in orphans:
        result.rejected.append(
            Rejected(number, seg[:3], "", "segment outside any message (no MSH before it)", seg)
        )
    for message in messages:
        _message(message, code_map, result, context)
    if not messages and not orphans:
        result.rejected.append(Rejected(None, "(payload)", "", "no HL7 v2 segments in payload", ""))
    return result


def _message(
    message: list[tuple[int, str]], code_map: CodeMap, result: ParseResult, context: ValidationContext | None
) -> None:
    msh_number, msh_text = message[0]
    enc = encoding_of(msh_text)
    msh = Segment(msh_number, msh_text, enc)
    control_id, version = msh.get(10), msh.get(12)
    whole_text = "\r".join(s for _, s in message)
    refusal = _refuse(msh, whole_text)
    if refusal is not None:
        code, why = refusal
        result.rejected.append(Rejected(msh_number, "MSH", msh_text[:80], why, whole_text))
        result.acks.append(MessageAck(control_id, "AR", why, version or "2.5.1", code))
        return
    app, facility = msh.get(3), msh.get(4)
    source = "/".join(p for p in (app, facility) if p) or None
    stamp = parse_ts(msh.get(7))
    ctx = _Context(
        enc,
        source[:200] if source else None,
        (source, app, facility),
        stamp if isinstance(stamp, datetime) else None,
        context=context,
    )
    errors_before, events_before = len(result.rejected), len(result.events)
    real_errors = 0
    outcomes: list[Event | Rejected] = []
    for i, (number, text) in enumerate(message[1:], start=1):
        seg = Segment(number, text, enc)
        ctx.next_segment = message[i + 1][1] if i + 1 < len(message) else ""
        outcomes.extend(_segment(seg, ctx, code_map))
    outcomes.extend(_message_results(ctx))
    for item in outcomes:
        if isinstance(item, Rejected):
            result.rejected.append(item)
            # results the monitor does not read (an analyte it does not follow, a code it refuses
            # on purpose) are quarantined without turning the ACK into AE: the message was right
            real_errors += not (item.reason.startswith(NOT_MONITORED) or is_refusal(item.reason))
        else:
            result.events.append(item)
    if len(result.rejected) == errors_before and len(result.events) == events_before:
        # nothing may vanish: a message that yields nothing is refused, with why
        why = ("message holds nothing to read: no OBX result or RXA administration, and no PID birth "
               "date or sex" if len(message) > 1 else "message has no segment after MSH: nothing to read")
        result.rejected.append(Rejected(msh_number, "MSH", msh_text[:80], why, whole_text))
        result.acks.append(MessageAck(control_id, "AR", why, version, "207"))
        return
    count = len(result.rejected) - errors_before
    if real_errors:
        why = (
            f"{real_errors} of the message's results rejected; first: {result.rejected[errors_before].reason}"
        )
        result.acks.append(MessageAck(control_id, "AE", why[:500], version, "207"))
    else:
        result.acks.append(
            MessageAck(
                control_id,
                "AA",
                None if not count else f"{count} result(s) for analytes not monitored",
                version,
            )
        )


def _refuse(msh: Segment, whole_text: str) -> tuple[str, str] | None:
    """Why a whole message cannot be read (error code and reason), or None when it can."""
    if has_unstorable(whole_text):
        return "102", f"message is {NOT_UTF8}"
    joined = _joined_segments(whole_text, msh.enc.field)
    if joined is not None:
        return "100", joined
    version = msh.get(12)
    if not version:
        return "203", "MSH-12 version id is missing"
    kind = msh.get(9, 1)
    if kind and kind not in HANDLED_MESSAGES:
        return "200", f"message type {msh.field(9)!r} is not handled (expected ORU^R01 results)"
    bad = next((s for s in whole_text.split("\r") if not valid_segment_name(s)), None)
    if bad is not None:
        return "100", f"not an HL7 segment: {bad[:40]!r}"
    try:
        _hl7apy_check(msh.text, version)
    except Exception as exc:  # noqa: BLE001 — hl7apy raises many types; each means "cannot read this"
        return "203" if "version" in str(exc).lower() else "100", f"HL7 message header not readable: {exc}"
    return None


def _joined_segments(whole_text: str, field_separator: str) -> str | None:
    """Why the message's segments look joined by spaces or tabs instead of carriage returns (an ORU
    pasted on one line was read as one long MSH, and reported "accepted 0, quarantined 0")."""
    ids = "|".join(_JOINED_SEGMENT_IDS)
    pattern = re.compile(rf"[ \t]({ids}){re.escape(field_separator)}")
    for seg in whole_text.split("\r"):
        found = pattern.search(seg)
        if found is not None:
            return (f"segments are separated by spaces, not carriage returns: {found.group(1)!r} follows a "
                    f"space inside the {seg[:3]} segment (each HL7 v2 segment ends with a carriage return)")
    return None


def _hl7apy_check(msh: str, version: str) -> None:
    """hl7apy reads the header against its library for the message's version (unsupported versions
    and malformed headers raise). Only MSH: measured on examples/oru_r01_v251.hl7, a full hl7apy
    parse costs ~30 ms per message, the header alone ~3 ms, and this module's own walk ~0.3 ms; the
    full tree's group paths would not be used anyway."""
    # imported lazily: hl7apy loads its version libraries on first use, which only HL7 input needs
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_segment

    parse_segment(msh, version=version, validation_level=VALIDATION_LEVEL.TOLERANT)


def _segment(seg: Segment, ctx: _Context, code_map: CodeMap) -> list[Event | Rejected]:
    if seg.name == "PID":
        return _pid(seg, ctx)
    if seg.name == "OBR":
        ctx.order_id = seg.get(3) or seg.get(2)  # filler order number, else the placer's
        ctx.order_time = seg.get(7)
        return []
    if seg.name == "ORC":
        ctx.order_id = seg.get(3) or seg.get(2) or ctx.order_id
        return []
    if seg.name == "OBX":
        return _obx(seg, ctx, code_map)
    if seg.name == "RXA":
        return [_rxa(seg, ctx, code_map)]
    return []  # NTE, PV1, SPM, RXR (read with its RXA), Z-segments: nothing to store


def _pid(seg: Segment, ctx: _Context) -> list[Event | Rejected]:
    # PID-3 (patient identifier list), first repetition's ID; v2.3 feeds sometimes use PID-2 only
    ctx.patient_id = seg.get(3) or seg.get(2)
    ctx.order_id = ctx.order_time = ""  # a new patient's orders follow
    record: dict[str, Any] = {"type": "patient", "patient_id": ctx.patient_id, "source": ctx.source}
    born = parse_ts(seg.get(7))
    if isinstance(born, datetime):
        born = born.date()
    if born is not None:
        record["birth_date"] = born
    sex = PID_SEX.get(seg.get(8).upper())
    if sex:
        record["sex"] = sex
    if born is None and sex is None:
        return []  # nothing to say about the patient beyond the id the results carry
    outcome = to_event(record, seg.number, seg.text, ctx.context)
    return [outcome]


def _obx(seg: Segment, ctx: _Context, code_map: CodeMap) -> list[Event | Rejected]:
    """A Rejected now, or nothing yet: the result is kept in ctx.results until the message is read."""
    outcome = _obx_result(seg, ctx, code_map)
    if isinstance(outcome, Rejected):
        return [outcome]
    ctx.results.append(outcome)
    return []


def _obx_result(seg: Segment, ctx: _Context, code_map: CodeMap) -> _Result | Rejected:
    code = seg.get(3)
    if not code and not seg.get(3, 4):
        text = seg.get(3, 2)
        shown = f" (only the text {text!r})" if text else ""
        return Rejected(seg.number, "OBX-3", seg.field(3)[:80],
                        f"OBX-3 (observation identifier) is empty{shown}", seg.text)
    status_code = seg.get(11).upper()
    if status_code not in OBX_STATUS:
        return Rejected(seg.number, "OBX-11", status_code, "unknown result status (HL7 table 0085)", seg.text)
    status = OBX_STATUS[status_code]
    if status is None:
        return Rejected(seg.number, "OBX-11", status_code, _STATUS_WHY[status_code], seg.text)
    try:
        key = _analyte(seg, ctx, code_map)
    except RefusedCodeError as exc:  # e.g. CD19 % (8117-4): never read as the count
        return Rejected(seg.number, "OBX-3", seg.field(3)[:80], str(exc), seg.text)
    if key is None:
        name = seg.get(3, 2)
        return Rejected(
            seg.number,
            "OBX-3",
            seg.field(3)[:80],
            f"{NOT_MONITORED}: code {code!r}{f' ({name})' if name else ''} is neither a catalogue "
            "LOINC code nor in the code map",
            seg.text,
        )
    type_problem = _value_type_problem(seg.get(2))
    if type_problem is not None and status != "entered-in-error":  # a deletion needs no value
        return Rejected(seg.number, "OBX-2", seg.get(2), type_problem, seg.text)
    parsed = _value(seg)
    if isinstance(parsed, str):
        if status != "entered-in-error":
            return Rejected(seg.number, "OBX-5", seg.field(5)[:80], parsed, seg.text)
        # a deletion often repeats no value; the retraction is found by its identity, not its value
        comparator, (value, unit) = None, retraction_placeholder(key)
    else:
        comparator, value = parsed
        unit = seg.get(6) or seg.get(6, 2)
        if not unit:
            return Rejected(seg.number, "OBX-6", "", "no unit (OBX-6 empty)", seg.text)
        unit = canonical_spelling(unit, code_map, *ctx.sources)
    when = seg.get(14) or ctx.order_time
    effective = parse_ts(when)
    if effective is None:
        field_name = "OBX-14" if seg.get(14) else "OBR-7"
        return Rejected(
            seg.number,
            field_name,
            when,
            "no readable observation time (OBX-14, else OBR-7; expected YYYYMMDD[HHMM[SS]][+ZZZZ])",
            seg.text,
        )
    source_id = ":".join(p for p in (ctx.order_id, code, seg.get(4)) if p) if ctx.order_id else None
    record: dict[str, Any] = {
        "type": "lab",
        "patient_id": ctx.patient_id,
        "analyte": key,
        "value": value,
        "unit": unit,
        "comparator": comparator,
        "effective_at": effective,
        "status": status,
        "source": ctx.source,
        "source_id": source_id[:200] if source_id else None,
        "recorded_at": ctx.recorded_at,
    }
    if not ctx.patient_id:
        return Rejected(seg.number, "PID-3", "", "no patient identifier (no PID-3 before this OBX)", seg.text)
    return _Result(seg, record, when)


def _message_results(ctx: _Context) -> list[Event | Rejected]:
    """The message's OBX results as events, each with its own identity.

    A result is identified by its order, code and sub-ID (OBX-4): source_id "order:code[:sub]", as
    before. When one message has several results with the same such id but different observation
    times (OBX-14), as serial levels under one OBR without sub-IDs, each one's time is added to its
    id ("order:code@20250110081500+0100"): they are separate results, not corrections of one another
    (5000 of them were once counted "corrected 5000", and one value stayed). Results whose id was
    already unique keep exactly the identity they always had, so a re-sent or corrected message
    still finds them. Within one message, a second value for the same result is read only as a
    correction (OBX-11 C) or retraction (D/W), or a final after a preliminary; otherwise it is
    quarantined: a repeated F with another value is ambiguous, never a silent correction."""
    times: dict[str, set[str]] = {}
    for r in ctx.results:
        if r.record["source_id"]:
            times.setdefault(r.record["source_id"], set()).add(r.time_text)
    out: list[Event | Rejected] = []
    seen: dict[str, tuple[int, LabResult]] = {}
    for r in ctx.results:
        sid = r.record["source_id"]
        if sid and len(times[sid]) > 1:
            r.record["source_id"] = f"{sid}@{r.time_text}"[:200]
        event = to_event(r.record, r.seg.number, r.seg.text, ctx.context)
        if isinstance(event, LabResult) and event.source_id:
            earlier = seen.get(event.identity)
            if earlier is not None and _conflicts(earlier[1], event):
                out.append(Rejected(
                    r.seg.number, "OBX-11", r.seg.get(11),
                    f"a second value for the result of OBX segment {earlier[0]} (same order, OBX-3, OBX-4 "
                    "and observation time) that is not a correction (OBX-11 C): which value is meant is "
                    "ambiguous; give serial results their own OBX-4 sub-ID or OBX-14 time", r.seg.text))
                continue
            seen[event.identity] = (r.seg.number, event)
        out.append(event)
    return out


def _conflicts(earlier: LabResult, later: LabResult) -> bool:
    if (earlier.value, earlier.comparator, earlier.status) == (later.value, later.comparator, later.status):
        return False  # the same value again (in any accepted unit): a duplicate, harmless
    if later.status in ("corrected", "entered-in-error"):
        return False  # a correction or retraction of it
    return not (earlier.status == "preliminary" and later.status == "final")


def _analyte(seg: Segment, ctx: _Context, code_map: CodeMap) -> str | None:
    """OBX-3: a LOINC code of the catalogue (identifier or alternate identifier coded LN), else the
    lab's own code through the code map, else an uncoded identifier that is a catalogue LOINC."""
    triplets = [(seg.get(3, 1), seg.get(3, 3).upper()), (seg.get(3, 4), seg.get(3, 6).upper())]
    found = coded_analyte(
        triplets,
        lambda system: system in LOINC_SYSTEMS,
        lambda code, system: code_map.analyte(code, *ctx.sources, system),
    )
    if found:
        return found
    code, system = triplets[0]
    return catalogue_key(code) if code and not system else None


def _value_type_problem(given: str) -> str | None:
    """Why OBX-2 rules out a numeric result, or None."""
    kind = given.upper()
    if kind in NUMERIC_TEXT_TYPES or kind == "SN":
        return None
    if kind not in VALUE_TYPES:
        return f"OBX-2 value type {given!r} is not an HL7 value type (table 0125); a numeric result is NM or SN"
    return f"OBX-2 value type {given!r} is not numeric: only NM, SN and one number in ST, TX or FT are read"


def _value(seg: Segment) -> tuple[str | None, float] | str:
    """OBX-5 by OBX-2 as (comparator, number), or the reason it is not a usable number."""
    kind = seg.get(2).upper()
    if seg.repetitions(5) > 1:
        return "several values in OBX-5 (repetitions): expected one number"
    if kind == "SN":
        comps = seg.components(5)
        comparator = comps[0] if comps else ""
        rest = [c for c in comps[2:] if c]
        if rest:
            return f"structured numeric range or ratio {'^'.join(comps)!r} is not a single value"
        if comparator not in ("", "=", "<", ">", "<=", ">="):
            return f"SN comparator {comparator!r} is not one of <, >, <=, >=, ="
        number = _number(comps[1] if len(comps) > 1 else "")
        if number is None:
            return f"non-numeric value {'^'.join(comps)!r}"
        return (comparator if comparator not in ("", "=") else None), number
    if kind in ("NM", "ST", "TX", "FT", ""):
        text = seg.get(5)
        comparator, rest = split_comparator(text)
        number = _number(rest)
        if number is None:
            return f"non-numeric value {text!r}" if text else "no value (OBX-5 empty)"
        return comparator, number
    return f"value type {kind!r} (OBX-2) is not numeric"


def _number(text: str) -> float | None:
    t = text.strip()
    if not t or len(t) > 40 or not all(c in "0123456789.+-eE" for c in t):
        return None  # "see note", "1,5" (decimal commas are not guessed), "positive"
    try:
        value = float(t)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rxa(seg: Segment, ctx: _Context, code_map: CodeMap) -> Event | Rejected:
    completion = seg.get(20).upper()
    if completion in RXA_NOT_GIVEN:
        return Rejected(seg.number, "RXA-20", completion, RXA_NOT_GIVEN[completion], seg.text)
    code, text = seg.get(5, 1), seg.get(5, 2)
    drug = code_map.resolve_drug([code], [text, code], *ctx.sources)
    if drug is None:
        return Rejected(
            seg.number,
            "RXA-5",
            seg.field(5)[:80],
            f"unknown drug {text or code!r} (not one of the monitored drugs, their aliases or the code map)",
            seg.text,
        )
    start = parse_ts(seg.get(3))
    if start is None:
        return Rejected(seg.number, "RXA-3", seg.get(3), "no readable administration date/time", seg.text)
    start_day = start.date() if isinstance(start, datetime) else start
    end = parse_ts(seg.get(4))
    end_day = end.date() if isinstance(end, datetime) else end
    record: dict[str, Any] = {
        "type": "medication",
        "patient_id": ctx.patient_id,
        "drug": drug,
        "start": start_day,
        "status": RXA_ACTION.get(seg.get(21).upper(), "final"),
        "source": ctx.source,
        "recorded_at": ctx.recorded_at,
    }
    if isinstance(end_day, date) and end_day != start_day:
        record["end"] = end_day
    amount = seg.get(6)
    if amount and amount != "999":  # 999 = amount unknown (HL7 RXA-6 convention)
        dose = _number(amount)
        if dose is None:
            return Rejected(seg.number, "RXA-6", amount, "administered amount is not a number", seg.text)
        record["dose"] = dose
        record["unit"] = seg.get(7) or seg.get(7, 2) or None
    if ctx.next_segment.startswith("RXR"):
        route = Segment(seg.number + 1, ctx.next_segment, ctx.enc).get(1).lower()
        if route:
            record["route"] = route[:20]
    if ctx.order_id:
        record["source_id"] = f"{ctx.order_id}:RXA:{seg.get(2) or seg.get(1) or '1'}"[:200]
    if not ctx.patient_id:
        return Rejected(seg.number, "PID-3", "", "no patient identifier (no PID-3 before this RXA)", seg.text)
    return to_event(record, seg.number, seg.text, ctx.context)


def ack_for(ack: MessageAck, *, timestamp: str = "") -> str:
    """The ER7 ACK text for one parsed message's outcome (see build_ack)."""
    return build_ack(
        ack.control_id,
        ack.code,
        ack.reason,
        ack.version,
        timestamp=timestamp,
        error_code=ack.error_code or "207",
    )
