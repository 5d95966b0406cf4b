"""The clinic outcome report and the anti-PLA2R kinetics on the embedded default (SQLite) and on
PostgreSQL: stored outcomes, recomputed ones, alerts on the clinical axis, and the CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from monitor.outcomes import outcomes_as_of
from storage import reports
from storage import repository as repo
from storage.db import session
from storage.models import AlertRow, PatientRow
from tasks.reassess import reassess
from tasks.report import clinic_report, gather_outcomes
from tasks.runtime import Runtime
from tasks.settings import Settings
from tests.unit.rules.builders import day, lab, med

pytestmark = pytest.mark.integration
AS_OF = day(500)
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _prot(pid: str, d: int, v: float):  # type: ignore[no-untyped-def]
    return lab(pid, "proteinuria_24h", v, "g/d", d)


def cohort() -> list:
    """R: rituximab, PR on day 100, anti-PLA2R negative by day 60. T: tacrolimus, no remission.
    S: supportive care only, nephrotic, PR confirmed on day 210."""
    ev = [_prot("R", -30, 6.0), _prot("R", 0, 6.0), med("R", "rituximab", 0, 1000, "mg"),
          med("R", "rituximab", 14, 1000, "mg"), _prot("R", 30, 5.5), _prot("R", 90, 3.0), _prot("R", 100, 2.8),
          _prot("R", 300, 1.0), lab("R", "anti_pla2r", 160, "RU/mL", -10), lab("R", "anti_pla2r", 80, "RU/mL", 20),
          lab("R", "anti_pla2r", 40, "RU/mL", 50), lab("R", "anti_pla2r", 10, "RU/mL", 90)]
    ev += [_prot("T", -20, 7.0), med("T", "tacrolimus", 0, 2, "mg", frequency="bid", end=200),
           _prot("T", 60, 7.2), _prot("T", 200, 6.9), _prot("T", 400, 7.1),
           lab("T", "serum_albumin", 18, "g/L", 400)]  # albumin_low_thrombosis: an alert to date
    ev += [_prot("S", 0, 5.0), _prot("S", 100, 4.0), _prot("S", 200, 2.0), _prot("S", 210, 1.9), _prot("S", 450, 1.5)]
    return ev


@pytest.fixture
def rt(engine: Engine) -> Runtime:
    runtime = Runtime(Settings(broker_url=None, _env_file=None), engine)
    with session(engine) as s:
        repo.store_events(s, None, cohort(), NOW)
    reassess(runtime, ["R", "S", "T"], AS_OF)
    return runtime


def _by(report, key: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.regimens if r.regimen == key)


def test_report_reads_the_outcomes_the_nightly_assessment_stored(rt: Runtime) -> None:
    report = clinic_report(rt, use_cache=False)
    assert report.as_of == AS_OF  # the latest assessment's date by default
    assert report.sources == {"stored": 3, "recomputed": 0}
    assert [r.regimen for r in report.regimens] == ["anti_cd20", "tacrolimus", "supportive"]
    rtx, tac, sup = _by(report, "anti_cd20"), _by(report, "tacrolimus"), _by(report, "supportive")
    assert (rtx.courses, rtx.remissions, rtx.immunological_remissions) == (1, 1, 1)
    assert rtx.remission[0].percent == 100.0  # PR confirmed on day 100 < 6 months
    assert (tac.courses, tac.remissions) == (1, 0)
    assert sup.courses == 3 and sup.remissions == 1  # every patient's time before immunosuppression


def test_a_report_for_another_date_recomputes_the_same_way(rt: Runtime) -> None:
    outcomes, sources = gather_outcomes(rt, day(95))
    assert sources == {"stored": 0, "recomputed": 3}
    assert _first(outcomes["R"]).remission is None  # PR is confirmed on day 100
    with session(rt.engine) as s:
        repo.mark_dirty(s, ["R", "S", "T"], NOW)  # stored but pending: recomputed
    recomputed, sources = gather_outcomes(rt, AS_OF)
    assert sources == {"stored": 0, "recomputed": 3}
    with session(rt.engine) as s:
        s.execute(PatientRow.__table__.update().values(dirty_since=None))  # type: ignore[attr-defined]
    stored, sources = gather_outcomes(rt, AS_OF)
    assert sources == {"stored": 3, "recomputed": 0}
    assert stored == recomputed  # the nightly's stored outcomes are exactly the recomputed ones


def _first(rows):  # type: ignore[no-untyped-def]
    return next(o for o in rows if o.regimen != "supportive")


def test_alerts_are_dated_by_the_as_of_they_fired_for(rt: Runtime, engine: Engine) -> None:
    with session(engine, write=False) as s:
        marks = reports.alert_marks(s)
    assert marks and {d for _, d, _ in marks} == {AS_OF}
    # an alert stored before fired rows carried their as_of: dated by its newest evidence
    with session(engine) as s:
        s.execute(insert(AlertRow.__table__).values(  # type: ignore[attr-defined]
            fingerprint="T/legacy/e", patient_id="T", rule="legacy", episode="e", severity="warning",
            status="firing", message="m", reference="r", raised_at=NOW, updated_at=NOW, as_of=AS_OF, revision=1,
            evidence=[{"analyte": "upcr", "effective_at": "2025-03-02T00:00:00+00:00"}]))
        marks = reports.alert_marks(s)
    assert ("T", date(2025, 3, 2), "warning") in marks


def test_report_is_cached_until_something_changes(rt: Runtime) -> None:
    first = clinic_report(rt)
    assert clinic_report(rt) is first
    with session(rt.engine) as s:
        repo.mark_dirty(s, ["T"], NOW)
    again = clinic_report(rt)
    assert again is not first and again.sources["recomputed"] == 1


def test_stored_summary_matches_a_direct_computation(rt: Runtime) -> None:
    with session(rt.engine, write=False) as s:
        summary = s.execute(select(PatientRow.__table__.c.summary).where(  # type: ignore[attr-defined]
            PatientRow.__table__.c.patient_id == "R")).scalar_one()  # type: ignore[attr-defined]
        timeline = repo.load_timeline(s, "R")
    assert summary["courses"] == [o.as_dict() for o in outcomes_as_of(timeline, AS_OF)]


def test_cli_report_and_patient_kinetics(rt: Runtime, tmp_path: Path) -> None:
    env = {**os.environ, "IMN_DATABASE_URL": rt.engine.url.render_as_string(hide_password=False)}
    env.pop("IMN_BROKER_URL", None)
    exe = Path(sys.executable).with_name("imn-monitor")
    html = tmp_path / "report.html"
    out = subprocess.run([str(exe), "report", "--json", "--html", str(html)], env=env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["as_of"] == AS_OF.isoformat() and data["caveat"].startswith("Not a randomised trial")
    rtx = next(r for r in data["regimens"] if r["regimen"] == "anti_cd20")
    assert rtx["remission"][0]["percent"] == 100.0
    assert {p["source"] for p in rtx["published"]} >= {"MENTOR", "GEMRITUX", "RI-CYCLO"}
    page = html.read_text()
    assert "Not a randomised trial" in page and "data:image/png;base64," in page and "MENTOR" in page
    out = subprocess.run([str(exe), "patient", "R", "--json"], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    kinetics = json.loads(out.stdout)["anti_pla2r_kinetics"]
    assert kinetics["state"] == "falling" and kinetics["course"]["regimen"] == "anti_cd20"
    assert kinetics["crossings"][0]["state"] == "reached"  # 10 RU/mL on day 90
