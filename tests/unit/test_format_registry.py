"""One registry of input formats (issue 13, item 5): a format registered in monitor/interop/formats.py
alone is detected and parsed, accepted by the inbox, offered by the CLI's `ingest --format` and served
at POST /ingest/<name> with its media types and description in the OpenAPI document."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.interop import detect_format, formats, parse_payload
from tests.unit.interop._context import CONTEXT

ROOT = Path(__file__).resolve().parents[2]
PSV = b"type|patient_id|analyte|value|unit|effective_at\nlab|P-PSV|serum_albumin|31|g/L|2025-05-10\n"

# a made-up pipe-separated format, registered the way a new format is: one entry
REGISTER = '''
from monitor.interop import formats
from monitor.interop.base import decode
from monitor.interop.formats import InputFormat, REGISTRY


def parse(data, code_map, context):
    from monitor.interop.csv import parse_csv
    return parse_csv(decode(data).replace("|", ","), context)


REGISTRY["psv"] = InputFormat(
    "psv", "pipe-separated events", ("text/x-psv",),
    lambda s: s.first_line.startswith("type|"), "a pipe-separated header", parse, line_based=True,
    description="Pipe-separated events (test format).", example="type|patient_id\\n", header_lines=1)
'''


@pytest.fixture
def psv(monkeypatch: pytest.MonkeyPatch) -> formats.InputFormat:
    exec(REGISTER, {})  # noqa: S102 - the registration text the CLI subprocess runs too
    spec = formats.REGISTRY.pop("psv")
    monkeypatch.setitem(formats.REGISTRY, "psv", spec)  # removed again after the test
    return spec


def test_a_registered_format_is_detected_and_parsed(psv: formats.InputFormat) -> None:
    assert detect_format(PSV) == "psv"
    result = parse_payload(PSV, context=CONTEXT)
    assert result.rejected == [] and [e.patient_id for e in result.events] == ["P-PSV"]
    assert formats.is_line_based("psv")


def test_the_inbox_accepts_it_and_ingestion_cuts_it_with_its_header(psv: formats.InputFormat) -> None:
    from storage.inbox import accepted_formats
    from tasks.ingest import split_payload

    assert "psv" in accepted_formats()
    batches = split_payload(PSV + PSV.split(b"\n", 1)[1] * 2, "psv", "x.psv", batch_lines=2)
    assert len(batches) == 2 and all(b.data.startswith(b"type|patient_id") for b in batches)


def test_the_api_serves_it_with_its_media_types_and_description(psv: formats.InputFormat, tmp_path: Path) -> None:
    from feed import create_app
    from tasks import runtime
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", broker_url=None, _env_file=None))
    try:
        doc = create_app(rt).openapi()
    finally:
        runtime.reset()
    op = doc["paths"]["/ingest/psv"]["post"]
    assert list(op["requestBody"]["content"]) == ["text/x-psv"]
    assert "Pipe-separated events (test format)." in op["description"]
    assert set(formats.names()) <= {p.removeprefix("/ingest/") for p in doc["paths"] if p.startswith("/ingest/")}


def test_the_cli_offers_it_and_ingests_it(tmp_path: Path) -> None:
    """In a fresh process that registers the format before the CLI is imported, as a format module
    registered in the registry is."""
    feed = tmp_path / "in.psv"
    feed.write_bytes(PSV)
    script = REGISTER + (
        "\nimport sys\nfrom cli.main import main\n"
        "sys.argv = ['imn-monitor', *sys.argv[1:]]\nmain()\n")
    env = {**os.environ, "IMN_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "PYTHONPATH": str(ROOT)}
    env.pop("IMN_BROKER_URL", None)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120, input=stdin, check=False)

    helped = run("ingest", "--help")
    assert helped.returncode == 0 and "psv" in helped.stdout, helped.stdout + helped.stderr
    done = run("ingest", str(feed), "--format", "psv", "--as-of", "2025-06-01", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 1
    # detected (format auto), read from standard input
    detected = run("ingest", "-", "--json", stdin=PSV.decode().replace("|31|", "|32|"))
    assert detected.returncode == 0 and json.loads(detected.stdout)["accepted"] == 1, detected.stderr


def test_a_large_line_payload_is_detected_without_being_read_whole() -> None:
    """`ingest` (format auto) reads a large NDJSON file as it stores it: detection looks at its first
    line, not at the whole file, and the stream still yields every byte."""
    from tasks.ingest import DETECT_BYTES, detect_stream

    line = json.dumps({"type": "lab", "patient_id": "P1", "analyte": "serum_albumin", "value": 31,
                       "unit": "g/L", "effective_at": "2025-05-10"}).encode() + b"\n"
    data = line * (3 * DETECT_BYTES // len(line))

    class Watched(io.BytesIO):
        whole = False

        def read(self, size: int | None = -1) -> bytes:
            Watched.whole = Watched.whole or size is None or size < 0
            return super().read(size)

    fmt, stream = detect_stream(Watched(data))
    assert fmt == "ndjson" and not Watched.whole
    assert b"".join(iter(lambda: stream.read(65536), b"")) == data


def test_a_large_multi_line_fhir_resource_is_still_detected_whole() -> None:
    from tasks.ingest import DETECT_BYTES, detect_stream

    entries = [{"resource": {"resourceType": "Patient", "id": f"p{i}"}} for i in range(DETECT_BYTES // 30)]
    data = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}, indent=2).encode()
    assert len(data) > DETECT_BYTES
    fmt, stream = detect_stream(io.BytesIO(data))
    assert fmt == "fhir" and stream.read() == data
