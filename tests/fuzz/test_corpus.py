"""Every file of the fuzzing corpus (tests/fuzz/corpus/<format>/, see tests/fuzz/README.md) through
the parsers and, for MLLP streams, through the listener's frame reader: no exception, every rejection
with its reason, every accepted event valid. One test per file, so a failure names the file.

Files named valid_* are realistic input that must land whole: events, no rejection, every message AA.
A short hypothesis run also mutates corpus files (IMN_FUZZ_EXAMPLES raises its budget).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.interop import detect_format

from .contract import CORPUS, FORMATS, check_every_parser, check_mllp, check_payload

FILES = sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.parent.name in FORMATS)
README = Path(__file__).parent / "README.md"


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_corpus_is_there_and_documented() -> None:
    assert {p.parent.name for p in FILES} == set(FORMATS)
    assert not [p for p in CORPUS.iterdir() if p.name not in FORMATS and p.name != ".gitattributes"]
    documented = README.read_text()
    undocumented = [_id(p) for p in FILES if f"`{p.name}`" not in documented]
    assert not undocumented, f"corpus files missing from tests/fuzz/README.md: {undocumented}"


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_corpus_file(path: Path) -> None:
    fmt, data = path.parent.name, path.read_bytes()
    result = check_payload(data, fmt)  # auto-detected, forced and direct
    check_every_parser(data)  # a file of one format sent to the other parsers
    acks = check_mllp(data, cuts=range(1, len(data), 61)) if fmt == "mllp" else None
    if path.name.startswith("valid_"):
        assert detect_format(data) == ("hl7v2" if fmt == "mllp" else fmt)
        assert result.events and not result.rejected, [r.reason for r in result.rejected]
        assert all(a.code == "AA" for a in result.acks)
        if acks is not None:
            assert acks and set(acks) == {"AA"}


FUZZ = settings(
    max_examples=int(os.environ.get("IMN_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SMALL = [p for p in FILES if p.stat().st_size <= 4096]  # mutating the 10k-deep files finds nothing new
PIECES = st.sampled_from(
    [b"\x0b", b"\x1c", b"\r", b"\n", b"|", b"^", b"~", b"\\", b"&", b"MSH|^~\\&|", b"\x00", b"\xff", b"\xef\xbb\xbf",
     b'"', b",", b";", b"{", b"}", b"[", b"]", b"NaN", b"1e999", b"-", b"+1400", b"<", b">=", b"\\X00\\"]
) | st.binary(max_size=6)


@FUZZ
@given(st.sampled_from(SMALL), st.data())
def test_mutated_corpus(path: Path, data: st.DataObject) -> None:
    blob = path.read_bytes()
    for _ in range(data.draw(st.integers(1, 5), label="edits")):
        i = data.draw(st.integers(0, len(blob)), label="at")
        j = data.draw(st.integers(i, min(len(blob), i + 24)), label="to")
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate"]), label="op")
        piece = data.draw(PIECES, label="piece")
        if op == "delete":
            blob = blob[:i] + blob[j:]
        elif op == "insert":
            blob = blob[:i] + piece + blob[i:]
        elif op == "replace":
            blob = blob[:i] + piece + blob[j:]
        elif op == "duplicate":
            blob = blob[:j] + blob[i:j] + blob[j:]
        else:
            blob = blob[:i]
    fmt = path.parent.name
    check_payload(blob, fmt)
    if fmt == "mllp":
        check_mllp(blob, cuts=data.draw(st.lists(st.integers(1, max(1, len(blob))), max_size=4), label="cuts"))
