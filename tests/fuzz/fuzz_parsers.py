"""Coverage-guided fuzzing of the parsers with atheris (libFuzzer). Run by hand, not by pytest:

    .venv/bin/pip install -e '.[fuzz]'
    mkdir -p /tmp/fuzz/hl7v2
    .venv/bin/python tests/fuzz/fuzz_parsers.py /tmp/fuzz/hl7v2 tests/fuzz/corpus/hl7v2 -max_total_time=300

The format (ndjson, csv, hl7v2, fhir, mllp) is the name of the first corpus directory, or
`--format=NAME` before the libFuzzer options. libFuzzer writes the inputs it finds interesting into
the FIRST directory: give a scratch one first and the seed corpus second, so the repository's corpus
is only read. A contract violation (tests/fuzz/contract.py) or any exception is a crash: libFuzzer
stops and writes the input to ./crash-<sha1> (or -artifact_prefix=DIR/). See tests/fuzz/README.md.

Each input goes through the format's own parser (no last-resort catch) and parse_payload with
auto-detection; an `mllp` input is a byte stream for the listener's frame reader, also delivered in
reads cut where the input's last byte says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `tests.fuzz.contract` when run as a script


def _format(argv: list[str]) -> str:
    formats = ("ndjson", "csv", "hl7v2", "fhir", "mllp")
    for arg in list(argv[1:]):
        if arg.startswith("--format="):
            argv.remove(arg)
            return arg.split("=", 1)[1]
    for arg in argv[1:]:
        if not arg.startswith("-") and os.path.isdir(arg) and Path(arg).name in formats:
            return Path(arg).name
    sys.exit(f"which format? name the corpus directory after one of {formats} or pass --format=NAME")


FORMAT = _format(sys.argv)

# heavy dependencies first and uninstrumented: coverage feedback is wanted for our code only
import fhir.resources.R4B  # noqa: F401
import hl7apy.parser  # noqa: F401
import pydantic  # noqa: F401

with atheris.instrument_imports(include=["monitor", "cli.mllp"]):
    from monitor.interop import parse_payload
    from tests.fuzz.contract import CODE_MAP, CONTEXT, DIRECT, check_mllp, check_result


def test_one_input(data: bytes) -> None:
    fmt = "hl7v2" if FORMAT == "mllp" else FORMAT
    check_result(DIRECT[fmt](data), f"direct {fmt} parser")
    check_result(parse_payload(data, code_map=CODE_MAP, context=CONTEXT), "parse_payload(auto, context=CONTEXT)")
    if FORMAT == "mllp":
        cut = data[-1] * len(data) // 256 if data else 0  # where the stream is cut into two reads
        check_mllp(data, cuts=[cut])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
