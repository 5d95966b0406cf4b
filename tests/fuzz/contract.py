"""The parsers' contract, checked the same way by the corpus test, the hypothesis mutations and the
atheris harness (tests/fuzz/README.md).

Contract: any bytes in -> no unhandled exception; every rejected item has a specific, non-empty,
storable reason; every accepted event is valid (it re-validates from its own JSON form, its times
convert to UTC as storage needs, and lie between 1900 and a day after the payload was received);
nothing vanishes (parse_payload yields an event or a rejection for every payload); every HL7
message is acknowledged AA/AE/AR; and on an MLLP
connection every complete frame gets exactly one framed ACK, whatever the bytes around it and
however they are cut into reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from monitor.events import parse_event
from monitor.interop import CodeMap, ParseResult, Rejected, ValidationContext, parse_payload
from monitor.interop.csv import parse_csv
from monitor.interop.fhir import parse_fhir
from monitor.interop.hl7v2 import ack_for, parse_hl7v2
from monitor.interop.ndjson import parse_ndjson

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
CODE_MAP = CodeMap.from_toml((ROOT / "examples" / "codemap.toml").read_text())
# every corpus payload is read as if received at this moment (fixed: the outcome must not depend on
# the day the tests run), with times written without an offset meant in UTC
RECEIVED_AT = datetime(2026, 6, 1, tzinfo=UTC)
CONTEXT = ValidationContext(received_at=RECEIVED_AT)
# the parsers themselves, without parse_payload's last-resort catch (which would hide a crash)
DIRECT: dict[str, Callable[[bytes], ParseResult]] = {
    "ndjson": lambda d: parse_ndjson(d, CONTEXT),
    "csv": lambda d: parse_csv(d, CONTEXT),
    "hl7v2": lambda d: parse_hl7v2(d, CODE_MAP, CONTEXT),
    "fhir": lambda d: parse_fhir(d, CODE_MAP, CONTEXT),
}
FORMATS = ("ndjson", "csv", "hl7v2", "fhir", "mllp")
MLLP_START, MLLP_END = b"\x0b", b"\x1c"


class ContractViolation(AssertionError):
    pass


def _fail(where: str, what: str, item: object = None) -> None:
    raise ContractViolation(f"{where}: {what}" + (f"\n  {item!r}"[:1500] if item is not None else ""))


def check_result(result: ParseResult, where: str, *, whole: bool = False) -> None:
    """`whole`: the result of parse_payload, which must never let a payload vanish."""
    if not isinstance(result, ParseResult):
        _fail(where, f"parser returned {type(result).__name__}, not ParseResult")
    if whole and not result.events and not result.rejected:
        _fail(where, "payload vanished: no event and no rejection")
    for r in result.rejected:
        if not isinstance(r, Rejected):
            _fail(where, "rejection is not a Rejected", r)
        if not r.reason.strip() or r.reason == "rejected":  # "rejected" is Rejected's empty-reason fallback
            _fail(where, "rejection without a reason", r)
        if "parser error" in r.reason:  # parse_payload's last-resort catch: a parser raised
            _fail(where, "a parser raised (caught by parse_payload's last resort)", r)
        for text in (r.field, r.value, r.reason, r.raw):
            text.encode("utf-8")  # no lone surrogates: storable in PostgreSQL text
            if "\x00" in text:
                _fail(where, "NUL in a rejection", r)
        if len(r.raw) > 2048:
            _fail(where, "rejection raw text not bounded", r)
    for e in result.events:
        dumped = e.model_dump(mode="json")
        if parse_event(dumped) != e:  # an accepted event must validate again from what is stored
            _fail(where, "event does not re-validate to itself", e)
        for name in ("effective_at", "recorded_at"):  # storage keeps times in UTC
            when = getattr(e, name, None)
            try:
                when is None or when.astimezone(timezone.utc)
            except OverflowError:
                _fail(where, f"accepted {name} cannot be converted to UTC (storage would raise)", e)
            if when is not None and not datetime(1900, 1, 1, tzinfo=UTC) <= when <= RECEIVED_AT + timedelta(days=1):
                _fail(where, f"accepted {name} outside 1900 .. a day after receipt", e)
        for name in ("start", "birth_date"):
            day = getattr(e, name, None)
            if day is not None and not date(1900, 1, 1) <= day <= (RECEIVED_AT + timedelta(days=1)).date():
                _fail(where, f"accepted {name} outside 1900 .. a day after receipt", e)
        text = e.model_dump_json()
        text.encode("utf-8")
        if "\\u0000" in text:
            _fail(where, "NUL in an accepted event", e)
    for ack in result.acks:
        if ack.code not in ("AA", "AE", "AR"):
            _fail(where, f"ACK code {ack.code!r}", ack)
        if ack.code != "AA" and not (ack.reason or "").strip():
            _fail(where, "AE/AR acknowledgement without a reason", ack)
        check_ack_text(ack_for(ack, timestamp="20250101000000+0000"), where)


def check_payload(data: bytes, fmt: str) -> ParseResult:
    """Auto-detection, the format forced, and the format's own parser called directly."""
    fmt = "hl7v2" if fmt == "mllp" else fmt
    check_result(parse_payload(data, code_map=CODE_MAP, context=CONTEXT), f"parse_payload(auto) [{fmt}]", whole=True)
    forced = parse_payload(data, fmt, code_map=CODE_MAP, context=CONTEXT)
    check_result(forced, f"parse_payload({fmt!r})", whole=True)
    check_result(DIRECT[fmt](data), f"direct {fmt} parser")
    return forced


def check_every_parser(data: bytes) -> None:
    """Each of the four parsers on the same bytes (a file of one format given to another parser)."""
    for fmt, parser in DIRECT.items():
        check_result(parser(data), f"direct {fmt} parser")


def check_ack_text(ack: str, where: str) -> str:
    """An ER7 ACK: MSH then MSA with AA/AE/AR; AE/AR carry their reason (MSA-3) and an ERR segment."""
    ack.encode("utf-8")
    segs = [s for s in ack.split("\r") if s]
    if not segs or not segs[0].startswith("MSH|"):
        _fail(where, "ACK does not start with MSH", ack)
    msa = next((s.split("|") for s in segs if s.startswith("MSA|")), None)
    if msa is None or len(msa) < 3 or msa[1] not in ("AA", "AE", "AR"):
        _fail(where, "ACK has no MSA with AA/AE/AR", ack)
    assert msa is not None
    if msa[1] != "AA":
        if len(msa) < 4 or not msa[3].strip():
            _fail(where, "AE/AR ACK without a reason in MSA-3", ack)
        if not any(s.startswith("ERR|") for s in segs):
            _fail(where, "AE/AR ACK without an ERR segment", ack)
    return msa[1]


# ------------------------------------------------------------------ MLLP: the listener's frame reader


class _Reader:
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = [c for c in chunks if c]

    async def read(self, n: int) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return ("fuzz", 0) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.out += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def complete_frames(data: bytes) -> int:
    """How many <VT> ... <FS> frames a byte stream holds (bytes outside frames are no message)."""
    count, pos = 0, 0
    while (start := data.find(MLLP_START, pos)) >= 0:
        end = data.find(MLLP_END, start)
        if end < 0:
            break
        count, pos = count + 1, end + 1
    return count


def run_mllp(chunks: Sequence[bytes]) -> list[str]:
    """The real connection handler of cli/mllp.py over an in-memory stream, with storage stubbed
    (the service stores nothing, so no task is queued): returns the ACKs it wrote, in order."""
    from cli import mllp

    from tasks.service import Submitted
    from tasks.settings import Settings

    # broker mode (nothing is processed here), times without offset in UTC, the listener's limits at
    # their defaults
    rt = SimpleNamespace(settings=Settings(broker_url="memory://", timezone="UTC", _env_file=None),
                         code_map=CODE_MAP)
    writer = _Writer()
    with mock.patch("tasks.service.store", return_value=Submitted()):
        asyncio.run(mllp._connection(rt, _Reader(chunks), writer))  # type: ignore[arg-type]
    if not writer.closed:
        _fail("mllp", "connection not closed at EOF")
    out = bytes(writer.out)
    acks: list[str] = []
    while out:
        if not out.startswith(MLLP_START) or MLLP_END + b"\r" not in out:
            _fail("mllp", "listener wrote bytes that are not a framed ACK", out[:200])
        end = out.index(MLLP_END + b"\r")
        acks.append(out[1:end].decode("utf-8"))
        out = out[end + 2 :]
    return acks


def check_mllp(data: bytes, cuts: Sequence[int] = ()) -> list[str]:
    """One framed ACK per complete frame, delivered whole and cut at `cuts` (the same MSA codes)."""
    expected = complete_frames(data)
    whole = run_mllp([data])
    codes = [check_ack_text(a, "mllp ACK") for a in whole]
    if len(whole) != expected:
        _fail("mllp", f"{len(whole)} ACKs for {expected} complete frames", data[:200])
    bounds = sorted({c for c in cuts if 0 < c < len(data)})
    if bounds:
        pieces = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)], strict=True)]
        again = [check_ack_text(a, "mllp ACK (cut reads)") for a in run_mllp(pieces)]
        if again != codes:
            _fail("mllp", f"ACKs depend on how reads are cut: {codes} whole, {again} at {bounds}", data[:200])
    return codes
