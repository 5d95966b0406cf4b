"""Cutting a payload into inbox batches while reading it (tasks.ingest.iter_batches): the same batches,
byte for byte, labels and line offsets included, as cutting the whole payload in memory (the way
split_payload did it before uploads were streamed), however the file's chunks fall across lines."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.ingest import iter_batches, iter_lines


def in_memory(data: bytes, fmt: str, source_name: str, batch_lines: int) -> list[tuple[bytes, int, str]]:
    """The reference: the whole payload split at once (bytes.splitlines)."""
    if fmt not in ("ndjson", "csv"):
        return [(data, 1, source_name)]
    lines = data.splitlines(keepends=True)
    header: list[bytes] = []
    start = 0
    if fmt == "csv" and lines:
        header, start = lines[:1], 1
    if len(lines) - start <= batch_lines:
        return [(data, 1, source_name)]
    out = []
    for i in range(start, len(lines), batch_lines):
        chunk = lines[i:i + batch_lines]
        first = i + 1
        label = f"{source_name}#L{first}-{first + len(chunk) - 1}"
        out.append((b"".join(header + chunk), first - len(header), label))
    return out


PIECES = [b"a", b"bc", b",", b"\n", b"\r", b"\r\n", b"{}"]  # line ends of every kind, and text
payloads = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(data=payloads, fmt=st.sampled_from(["ndjson", "csv", "fhir"]), batch_lines=st.integers(1, 6),
       chunk_size=st.integers(1, 9))
def test_streamed_batches_equal_the_in_memory_cut(data: bytes, fmt: str, batch_lines: int,
                                                  chunk_size: int) -> None:
    streamed = [(b.data, b.first_line, b.label)
                for b in iter_batches(io.BytesIO(data), fmt, "up.ndjson", batch_lines, chunk_size)]
    assert streamed == in_memory(data, fmt, "up.ndjson", batch_lines)


@settings(max_examples=150, deadline=None)
@given(data=payloads, chunk_size=st.integers(1, 9))
def test_lines_are_cut_like_splitlines_across_chunk_boundaries(data: bytes, chunk_size: int) -> None:
    assert list(iter_lines(io.BytesIO(data), chunk_size)) == data.splitlines(keepends=True)
