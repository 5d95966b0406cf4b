"""The CLI through the composition root and the service layer (issue 13, items 3 and 4), on the
embedded default (a SQLite file, Celery eager), in-process:

- commands that only read never migrate: on a database whose schema is behind they say what to run
  and leave it as it was; on a database that does not exist they do not create one; commands that
  write migrate first, as before;
- the embedded ingest runs the queued path (the `ingest_batch` task, eagerly), one task per inbox
  batch, and reassesses each touched patient once per payload (a burst), not once per batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storage.db import current_revision, head_revision, upgrade

pytestmark = pytest.mark.integration
LINES = [
    {"type": "patient", "patient_id": "P-B", "birth_date": "1961-04-02", "sex": "male"},
    *({"type": "lab", "patient_id": "P-B", "analyte": "serum_albumin", "value": 30 + i, "unit": "g/L",
       "effective_at": f"2025-0{1 + i}-10"} for i in range(5)),
]


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    from cli.main import app
    from tasks import bootstrap, runtime
    from tasks.settings import Settings

    db = tmp_path / "imn.db"
    rt = bootstrap.init(Settings(database_url=f"sqlite:///{db}", broker_url=None, webhook_url=None,
                                 batch_lines=2, _env_file=None))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    run.rt = rt  # type: ignore[attr-defined]
    run.db = db  # type: ignore[attr-defined]
    yield run
    runtime.reset()


def _main(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """cli.main.main as the installed `imn-monitor` runs it: errors are one line and an exit code."""
    import sys

    from cli.main import main

    argv, sys.argv = sys.argv, ["imn-monitor", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", [["alerts"], ["alert", "1"], ["patient", "P1"], ["quarantine"],
                                     ["report"], ["keys", "list"]])
def test_a_read_only_command_does_not_migrate_a_schema_that_is_behind(cli, command, capsys) -> None:  # type: ignore[no-untyped-def]
    upgrade(cli.rt.engine, "0004")
    code, err = _main(*command, capsys=capsys)
    assert code == 1
    assert "schema is at revision 0004" in err and f"needs {head_revision()}" in err
    assert "imn-monitor db upgrade" in err
    assert current_revision(cli.rt.engine) == "0004"  # untouched


def test_a_read_only_command_does_not_create_a_database(cli, capsys) -> None:  # type: ignore[no-untyped-def]
    code, err = _main("alerts", capsys=capsys)
    assert code == 1 and "no database at" in err and "imn-monitor db upgrade" in err
    assert not cli.db.exists()


def test_a_writing_command_migrates_and_then_reads_work(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upgrade(cli.rt.engine, "0004")
    feed = tmp_path / "in.ndjson"
    feed.write_text("".join(json.dumps(x) + "\n" for x in LINES))
    cli("ingest", str(feed), "--as-of", "2025-06-01")
    assert current_revision(cli.rt.engine) == head_revision()
    assert "no alerts" in cli("alerts")


def test_embedded_ingest_runs_the_task_per_batch_and_reassesses_each_patient_once(cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tasks import jobs

    batches, reassessed = [], []
    real_process, real_reassess = jobs.process_inbox, jobs.reassess
    monkeypatch.setattr(jobs, "process_inbox", lambda rt, inbox_id: batches.append(inbox_id) or real_process(rt, inbox_id))

    def reassess(rt, patient_ids, as_of, skip_current=False, **kw):  # type: ignore[no-untyped-def]
        reassessed.append((tuple(patient_ids), as_of.isoformat()))
        return real_reassess(rt, patient_ids, as_of, skip_current, **kw)

    monkeypatch.setattr(jobs, "reassess", reassess)
    feed = tmp_path / "in.ndjson"
    feed.write_text("".join(json.dumps(x) + "\n" for x in LINES))
    out = json.loads(cli("ingest", str(feed), "--as-of", "2025-06-01", "--json"))
    assert out["batches"] == 3 and out["accepted"] == 6 and out["quarantined"] == 0
    assert len(batches) == 3  # the ingest_batch task, run eagerly, once per inbox row
    assert reassessed == [(("P-B",), "2025-06-01")]  # one burst: one reassessment after the last batch
    # the same file again: the same inbox rows, already processed, not processed again
    again = json.loads(cli("ingest", str(feed), "--json"))
    assert again["repeated_batches"] == 3 and again["accepted"] == 0 and len(batches) == 3


def test_reassess_all_runs_here_when_embedded_and_reports_what_changed(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "in.ndjson"
    feed.write_text("".join(json.dumps(x) + "\n" for x in LINES))
    cli("ingest", str(feed), "--as-of", "2025-06-01")
    # --all is the nightly run: nothing new and no date of the patient's reached, so nobody is due
    out = cli("reassess", "--all", "--as-of", "2025-07-01")
    assert out.startswith("reassessed 0 patients (due) as of 2025-07-01")
    out = cli("reassess", "--full", "--as-of", "2025-07-01")
    assert out.startswith("reassessed 1 patients (all) as of 2025-07-01")
