"""Issue 12 through the real `imn-monitor ingest` (embedded: SQLite, in-process tasks): bad input is
quarantined with its reason instead of becoming a clinical value, and the command never fails with
"unknown format 'auto'".

Items: 1 (albumin `true` raised a critical alert), 3 (implausible dates, bounded by the inbox row's
time of receipt), 5 (IMN_TIMEZONE for times without an offset), 8 (deeply nested JSON, empty file).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import UserError, app
from tasks import runtime

pytestmark = pytest.mark.integration


class Done:
    """What one `imn-monitor ingest` run did: its exit code, output and the error it ended with."""

    def __init__(self, code: int, stdout: str, error: BaseException | None):
        self.returncode, self.stdout, self.error = code, stdout, error


def ingest(tmp_path: Path, name: str, content: str | bytes, **env: str) -> Done:
    """`imn-monitor ingest PATH` in this process (a subprocess per run costs ~3 s of imports)."""
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    environ = {"IMN_DATABASE_URL": f"sqlite:///{tmp_path}/imn.db", "IMN_BROKER_URL": None,
               "IMN_TIMEZONE": "UTC", "IMN_CODE_MAP": None, **env}
    runtime.reset()
    try:
        result = CliRunner().invoke(app, ["ingest", str(path), "--as-of", "2025-03-05"], env=environ)
    finally:
        runtime.reset()
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    # cli.main.main() turns a UserError into "error: ..." and exit 2
    code = 2 if isinstance(error, UserError) else 1 if error is not None else result.exit_code
    return Done(code, result.stdout, error)


def rows(tmp_path: Path, query: str) -> list[sa.Row]:  # type: ignore[type-arg]
    engine = sa.create_engine(f"sqlite:///{tmp_path}/imn.db")
    try:
        with engine.connect() as c:
            return list(c.execute(sa.text(query)))
    finally:
        engine.dispose()


def lines(*records: dict) -> str:  # type: ignore[type-arg]
    return "\n".join(json.dumps(r) for r in records) + "\n"


PATIENT = {"type": "patient", "patient_id": "P1", "birth_date": "1960-05-01", "sex": "male"}
ALBUMIN = {"type": "lab", "patient_id": "P1", "analyte": "serum_albumin", "unit": "g/dL",
           "effective_at": "2025-03-01"}


def test_albumin_true_is_quarantined_and_raises_no_alert(tmp_path: Path) -> None:
    done = ingest(tmp_path, "feed.ndjson", lines(PATIENT, {**ALBUMIN, "value": True}))
    assert done.returncode == 0, done.error
    assert "accepted 1" in done.stdout and "quarantined 1" in done.stdout
    (q,) = rows(tmp_path, "select field, value, reason from quarantine")
    assert (q.field, q.value) == ("value", "true") and "boolean" in q.reason
    assert rows(tmp_path, "select count(*) from events where kind = 'lab'")[0][0] == 0
    assert rows(tmp_path, "select count(*) from alerts")[0][0] == 0  # was: critical albumin_low_thrombosis


def test_implausible_dates_are_quarantined_and_the_chart_data_stays_sane(tmp_path: Path) -> None:
    received = datetime.now(UTC)
    too_late = (received + timedelta(days=3)).date().isoformat()
    feed = lines(PATIENT, {**ALBUMIN, "value": 3.1},
                 {**ALBUMIN, "value": 3.2, "effective_at": "0001-01-01"},
                 {**ALBUMIN, "value": 3.3, "effective_at": "9999-12-31"},
                 {**ALBUMIN, "value": 3.4, "effective_at": too_late},
                 {**PATIENT, "patient_id": "P2", "birth_date": too_late},
                 {"type": "medication", "patient_id": "P1", "drug": "cyclosporine", "dose": 100, "unit": "mg",
                  "frequency": "bid", "start": "0001-01-01", "end": "9999-12-31"})
    done = ingest(tmp_path, "dates.ndjson", feed)
    assert done.returncode == 0, done.error
    assert "accepted 2" in done.stdout and "quarantined 5" in done.stdout
    reasons = sorted(r.field for r in rows(tmp_path, "select field from quarantine"))
    assert reasons == ["birth_date", "effective_at", "effective_at", "effective_at", "start"]
    (when,) = rows(tmp_path, "select effective_at from events where kind = 'lab'")
    assert str(when[0]).startswith("2025-03-01")


def test_times_without_offset_are_read_in_imn_timezone(tmp_path: Path) -> None:
    done = ingest(tmp_path, "tz.ndjson", lines(PATIENT, {**ALBUMIN, "value": 3.1, "effective_at": "2025-03-01T08:30:00"}),
                  IMN_TIMEZONE="Europe/Berlin")
    assert done.returncode == 0, done.error
    (payload,) = rows(tmp_path, "select payload from events where kind = 'lab'")
    stored = json.loads(payload[0]) if isinstance(payload[0], str) else payload[0]
    assert datetime.fromisoformat(stored["effective_at"]) == datetime(2025, 3, 1, 7, 30, tzinfo=UTC)  # was 08:30 UTC


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_ingest_of_deeply_nested_json_quarantines_it_with_its_reason(tmp_path: Path, depth: int) -> None:
    done = ingest(tmp_path, "deep.json", '{"a":' * depth + "1" + "}" * depth)
    # was: exit 1, "unknown format 'auto'" (the inbox refused to store an undetected format)
    assert done.returncode == 0, done.error
    assert "quarantined 1" in done.stdout
    (q,) = rows(tmp_path, "select reason from quarantine")
    assert "nested too deeply" in q.reason


@pytest.mark.parametrize("content", [b"", b"\n \n"])
def test_ingest_of_an_empty_file_says_empty_file(tmp_path: Path, content: bytes) -> None:
    done = ingest(tmp_path, "empty.ndjson", content)
    # was: "unknown format 'auto'" (ValueError, exit 1)
    assert done.returncode == 2 and str(done.error) == f"empty file: {tmp_path / 'empty.ndjson'}"
