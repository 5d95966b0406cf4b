"""`imn-monitor patient`: the immunological state with the date of the latest titer, and values at the
precision a laboratory reports (--json keeps full precision). Embedded default (a SQLite file and
in-process tasks), the CLI run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
LINES = [
    {"type": "patient", "patient_id": "P-CLI", "birth_date": "1961-04-02", "sex": "male"},
    {"type": "lab", "patient_id": "P-CLI", "analyte": "anti_pla2r", "value": 16.5, "unit": "RU/mL",
     "effective_at": "2025-08-20"},
    {"type": "lab", "patient_id": "P-CLI", "analyte": "upcr", "value": 372, "unit": "mg/mmol",
     "effective_at": "2025-08-20"},
    {"type": "lab", "patient_id": "P-CLI", "analyte": "serum_creatinine", "value": 0.91, "unit": "mg/dL",
     "effective_at": "2025-08-20"},
]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from cli import output
    from cli.main import app
    from tasks import runtime
    from tasks.settings import Settings

    runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'imn.db'}", broker_url=None, webhook_url=None,
                          _env_file=None))
    monkeypatch.setattr(output.console, "width", 200)  # a wide terminal: no wrapped table cells
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    yield run
    runtime.reset()


def test_patient_shows_the_immunological_state_and_rounded_values(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "in.ndjson"
    feed.write_text("".join(json.dumps(x) + "\n" for x in LINES))
    cli("ingest", str(feed), "--as-of", "2025-09-01")
    shown = cli("patient", "P-CLI", "--as-of", "2025-09-01")
    assert "immunological state: borderline (16.5 RU/mL on 2025-08-20)" in shown
    assert "372 mg/mmol (\u2248 3.72 g/d)" in shown and "80 \u00b5mol/L (0.91 mg/dL)" in shown
    assert "80.4622" not in shown and "3.28848" not in shown
    data = json.loads(cli("patient", "P-CLI", "--as-of", "2025-09-01", "--json"))
    assert data["immunological_state"]["state"] == "borderline"
    assert data["immunological_state"]["date"] == "2025-08-20"
    assert data["latest"]["serum_creatinine"]["value"] == 80.4622  # full precision in JSON
    assert data["latest"]["upcr"]["estimate_g_per_day"] == 3.72
