"""`imn-monitor`: the command-line entry point (design.md, "The CLI contract").

Parses arguments, builds the runtime from Settings once, and calls tasks or the read side. User
mistakes are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cli import output
from monitor.findings import SEVERITY_RANK
from monitor.rules import RULE_IDS
from storage.models import ALERT_STATUSES

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Longitudinal monitor for idiopathic membranous nephropathy.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")


class UserError(Exception):
    """A mistake in the command line or its input: reported as one line, exit 2."""


# choices derived from their one definition (storage's statuses, the engine's severities)
Status = Enum("Status", {k: k for k in ALERT_STATUSES}, type=str)  # type: ignore[misc]
Severity = Enum("Severity", {k: k for k in SEVERITY_RANK}, type=str)  # type: ignore[misc]


class Format(str, Enum):
    auto = "auto"
    fhir = "fhir"
    hl7v2 = "hl7v2"
    ndjson = "ndjson"
    csv = "csv"


def _runtime():  # type: ignore[no-untyped-def]
    from storage.db import upgrade
    from tasks import app as celery_app
    from tasks import runtime

    rt = runtime.get()
    celery_app.configure(rt.settings)
    upgrade(rt.engine)
    return rt


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} must be a date as YYYY-MM-DD, not {value!r}") from None


def _check_rule(rule: str | None) -> None:
    if rule is not None and rule not in RULE_IDS:
        raise UserError(f"unknown rule {rule!r}; rules: {', '.join(RULE_IDS)}")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files to ingest ('-' for standard input)")],
    format: Annotated[Format, typer.Option("--format", help="input format")] = Format.auto,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="reassess as of this date (default today)")] = None,
    wait: Annotated[bool, typer.Option(help="with a broker: wait until the batches are processed")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as JSON")] = False,
) -> None:
    """Accept lab results and treatment events; prints accepted, duplicate, corrected, quarantined."""
    from storage import views
    from storage.db import session
    from tasks import jobs
    from tasks.ingest import accept

    day = _parse_day(as_of, "--as-of")
    payloads: list[tuple[bytes, str]] = []
    for p in paths:
        if str(p) == "-":
            payloads.append((sys.stdin.buffer.read(), "stdin"))
        elif not p.is_file():
            raise UserError(f"no such file: {p}")
        else:
            payloads.append((p.read_bytes(), p.name))
        if not payloads[-1][0].strip():
            # nothing to store or quarantine (as the HTTP API answers 400 "empty body"); this said
            # "unknown format 'auto'" before (issue 12)
            raise UserError(f"empty file: {p}" if str(p) != "-" else "empty file: nothing on standard input")
    rt = _runtime()
    accepted = []
    for data, name in payloads:
        # even an unreadable file is stored and quarantined with its reason, never refused unseen
        accepted += accept(rt, data, format.value, name)
    # identical bytes accepted before are that earlier inbox row: processed once, reported as such
    with session(rt.engine, write=False) as s:
        done = {r["id"] for r in views.inbox_status(s, [a.inbox_id for a in accepted]) if r["state"] == "processed"}
    repeated = [a.inbox_id for a in accepted if not a.new and a.inbox_id in done]
    inbox_ids = list(dict.fromkeys(a.inbox_id for a in accepted if a.inbox_id not in repeated))
    if rt.settings.embedded:
        counts = jobs.run_inline_ingest(rt, inbox_ids, day)
        result: dict[str, Any] = counts.as_dict()
    else:
        for inbox_id in inbox_ids:
            jobs.ingest_batch.delay(inbox_id, day.isoformat() if day else None)
        result = output.wait_for_inbox(rt, inbox_ids) if wait else {"queued_batches": len(inbox_ids)}
    result["batches"] = len(accepted)
    if repeated:
        result["repeated_batches"] = len(repeated)
    output.print_counts(result, as_json)


@app.command()
def reassess(
    patient: Annotated[Optional[str], typer.Option("--patient", help="one patient id")] = None,
    all_: Annotated[bool, typer.Option("--all", help="the nightly run: the patients due (valid_until reached, "
                                                     "new events; everyone on IMN_FULL_REASSESS_WEEKDAY)")] = False,
    full: Annotated[bool, typer.Option("--full", help="every active patient, due or not")] = False,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD (default today)")] = None,
) -> None:
    """Reassess one patient, the patients due (--all) or every patient (--full) as of a date, and
    reconcile their alerts."""
    from tasks import jobs
    from tasks.reassess import nightly_mode
    from tasks.reassess import reassess as reassess_now

    many = all_ or full
    if bool(patient) == many:
        raise UserError("give exactly one of --patient ID, --all or --full")
    day = _parse_day(as_of, "--as-of")
    rt = _runtime()
    day = day or rt.settings.today()
    if many:
        mode = nightly_mode(rt, day, full)
        if rt.settings.embedded:
            c = jobs.run_inline_reassess_all(rt, day, full=mode == "full")
            typer.echo(f"reassessed {c.patients} patients ({'all' if mode == 'full' else 'due'}) as of {day}: "
                       f"fired {c.fired}, escalated {c.escalated}, "
                       f"resolved {c.resolved}, reopened {c.reopened}, updated {c.updated}")
        else:
            jobs.reassess_all.delay(day.isoformat(), mode)
            typer.echo(f"queued reassessment of {'all' if mode == 'full' else 'due'} patients as of {day}")
        return
    assert patient is not None
    output.require_patient(rt, patient)
    c = reassess_now(rt, [patient], day)
    jobs.deliver_inline(rt) if rt.settings.embedded else jobs.enqueue_due_notifications(rt)
    typer.echo(f"reassessed {patient} as of {day}: fired {c.fired}, escalated {c.escalated}, "
               f"resolved {c.resolved}, reopened {c.reopened}, updated {c.updated}")


@app.command()
def alerts(
    patient: Annotated[Optional[str], typer.Option("--patient")] = None,
    status: Annotated[Optional[Status], typer.Option("--status")] = None,
    rule: Annotated[Optional[str], typer.Option("--rule", help="a rule id")] = None,
    severity: Annotated[Optional[Severity], typer.Option("--severity")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="exact JSON array")] = False,
) -> None:
    """List alerts (critical first, newest first)."""
    from storage import views
    from storage.db import session

    _check_rule(rule)
    rt = _runtime()
    with session(rt.engine, write=False) as s:
        rows = views.list_alerts(s, patient_id=patient, status=status.value if status else None, rule=rule,
                                 severity=severity.value if severity else None, limit=limit)
    output.print_alerts(rows, as_json)


@app.command()
def alert(alert_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One alert with its evidence and audit history."""
    from storage import views
    from storage.db import session

    rt = _runtime()
    with session(rt.engine, write=False) as s:
        row = views.alert_detail(s, alert_id)
    if row is None:
        raise UserError(f"no alert {alert_id}")
    output.print_alert_detail(row, as_json)


def _act(alert_id: int, action: str, **kwargs: Any) -> None:
    from storage import repository as repo
    from storage.db import session

    rt = _runtime()
    try:
        with session(rt.engine) as s:
            getattr(repo, action)(s, alert_id, **kwargs)
    except repo.AlertActionError as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"alert {alert_id}: {action} done")


@app.command()
def ack(alert_id: int, by: Annotated[str, typer.Option("--by", help="who acknowledges")],
        comment: Annotated[Optional[str], typer.Option("--comment")] = None) -> None:
    """Acknowledge an alert."""
    _act(alert_id, "acknowledge", actor=by, comment=comment)


@app.command()
def snooze(alert_id: int, until: Annotated[str, typer.Option("--until", help="YYYY-MM-DD or ISO date-time")],
           by: Annotated[str, typer.Option("--by")],
           comment: Annotated[Optional[str], typer.Option("--comment")] = None) -> None:
    """Snooze an alert until a date; it fires again after that if the condition persists."""
    try:
        when = datetime.fromisoformat(until)
    except ValueError:
        raise UserError(f"--until must be YYYY-MM-DD or an ISO date-time, not {until!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    _act(alert_id, "snooze", until=when, actor=by, comment=comment)


@app.command()
def resolve(alert_id: int, comment: Annotated[str, typer.Option("--comment", help="why (required)")],
            by: Annotated[str, typer.Option("--by")]) -> None:
    """Resolve an alert by hand, with a comment."""
    _act(alert_id, "resolve", actor=by, comment=comment)


@app.command()
def assign(alert_id: int, to: Annotated[str, typer.Option("--to")], by: Annotated[str, typer.Option("--by")]) -> None:
    """Assign an alert to a clinician."""
    _act(alert_id, "assign", assignee=to, actor=by)


@app.command()
def patient(
    patient_id: Annotated[str, typer.Argument(metavar="ID")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="assess as of this date (default today)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Timeline summary, remission state, risk category, anti-PLA2R kinetics and open alerts of one patient."""
    from monitor import assess
    from monitor.kinetics import titer_kinetics
    from storage import repository as repo
    from storage import views
    from storage.db import session

    day = _parse_day(as_of, "--as-of")
    rt = _runtime()
    with session(rt.engine, write=False) as s:
        stored = views.patient_view(s, patient_id)
        if stored is None:
            raise UserError(f"no patient {patient_id}")
        timeline = repo.load_timeline(s, patient_id)
    last = stored.get("last_as_of")  # the date the patient was last assessed for (ISO text or date)
    day = day or (date.fromisoformat(last) if isinstance(last, str) else last) or rt.settings.today()
    output.print_patient(stored, assess(timeline, day), timeline, as_json, titer_kinetics(timeline, day))


@app.command()
def report(
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD (default: the latest nightly assessment)")] = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="also write a self-contained HTML report here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Clinic outcome report: per regimen, remission at 6/12/24 months (Kaplan-Meier), relapse, time to
    immunological remission and alerts per patient-year, beside the published trial figures."""
    from tasks.report import clinic_report

    day = _parse_day(as_of, "--as-of")
    if html is not None and not html.parent.is_dir():
        raise UserError(f"no such directory for --html: {html.parent}")
    rt = _runtime()
    result = clinic_report(rt, day)
    if html is not None:
        from feed.report_plot import render_remission_curves
        from feed.report_view import render_standalone_html

        html.write_text(render_standalone_html(result, render_remission_curves(result)), encoding="utf-8")
    output.print_report(result, as_json)
    if html is not None and not as_json:
        typer.echo(f"HTML report written to {html}")


@app.command()
def quarantine(limit: Annotated[Optional[int], typer.Option("--limit", min=1)] = None,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Inputs that could not be accepted, with line, field, value and reason."""
    from storage import views
    from storage.db import session

    rt = _runtime()
    with session(rt.engine, write=False) as s:
        rows = views.list_quarantine(s, limit=limit)
    output.print_quarantine(rows, as_json)


@app.command()
def demo(
    patients: Annotated[int, typer.Option(min=1, help="synthetic patients")] = 200,
    years: Annotated[float, typer.Option(min=0.5, max=10)] = 3.0,
    seed: Annotated[int, typer.Option()] = 20261126,
    step_days: Annotated[int, typer.Option(min=1, help="simulated days between nightly runs (1 = every night)")] = 14,
    data_dir: Annotated[Path, typer.Option(help="where the demo database and files go")] = Path("imn-demo"),
    full_nightly: Annotated[bool, typer.Option("--full-nightly",
                                               help="reassess every patient each night (the old way)")] = False,
) -> None:
    """Run a synthetic cohort end to end through the real ingest path and print a summary."""
    from cli.demo import run_demo

    run_demo(patients=patients, years=years, seed=seed, step_days=step_days, data_dir=data_dir,
             full_nightly=full_nightly)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic)."""
    from storage.db import upgrade
    from tasks import runtime

    rt = runtime.get()
    upgrade(rt.engine)
    typer.echo(f"schema at head on {rt.engine.url.render_as_string(hide_password=True)}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run a Celery worker (needs IMN_BROKER_URL)."""
    from tasks import app as celery_app

    rt = _runtime()
    if rt.settings.embedded:
        raise UserError("a worker needs a broker: set IMN_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    celery_app.app.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
                                "-Q", "imn", "--without-gossip", "--without-mingle"])


@app.command()
def scheduler() -> None:
    """Run the nightly reassessment cron and the sweeper (APScheduler)."""
    from tasks.scheduler import build_scheduler

    rt = _runtime()
    st = rt.settings
    typer.echo(f"nightly reassessment at {st.nightly_hour:02d}:{st.nightly_minute:02d} {st.timezone}; "
               f"sweeper every {st.sweep_interval_s}s")
    build_scheduler().start()


@app.command()
def mllp(host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
         port: Annotated[int, typer.Option(min=0, max=65535)] = 2575) -> None:
    """Listen for HL7 v2 messages over MLLP: store, acknowledge, then queue each one."""
    import asyncio

    from cli.mllp import serve

    rt = _runtime()
    typer.echo(f"MLLP listener on {host}:{port} (database {rt.engine.url.render_as_string(hide_password=True)})")
    asyncio.run(serve(rt, host, port))


@app.command()
def sweep() -> None:
    """Re-drive lost work once: unprocessed inbox rows, pending reassessments, due notifications."""
    from tasks import jobs

    rt = _runtime()
    typer.echo(json.dumps(jobs.sweep_once(rt)))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - one line for operational failures too (db down, ...)
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            typer.echo(f"error: invalid configuration: {exc.errors()[0].get('loc')}: {exc.errors()[0].get('msg')}", err=True)
            sys.exit(2)
        logging.getLogger("imn.cli").debug("failure", exc_info=True)
        typer.echo(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        sys.exit(1)


# --- the HTTP feed and its API keys -------------------------------------------------------------

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP feed.")
app.add_typer(keys_app, name="keys")


class Role(str, Enum):
    ingest = "ingest"
    clinician = "clinician"
    admin = "admin"


@app.command()
def api(host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535)] = 8000) -> None:
    """Serve the HTTP feed (FastAPI on uvicorn): ingestion, alerts, patients, stream, FHIR, metrics."""
    import uvicorn

    from feed import create_app

    rt = _runtime()
    typer.echo(f"HTTP feed on http://{host}:{port} (database {rt.engine.url.render_as_string(hide_password=True)}, "
               f"{'embedded' if rt.settings.embedded else 'broker'} mode); OpenAPI at /docs")
    # proxy headers are honoured by the app, from IMN_TRUSTED_PROXIES only (uvicorn would trust 127.0.0.1)
    uvicorn.run(create_app(rt), host=host, port=port, log_level="info", proxy_headers=False)


@keys_app.command("create")
def keys_create(role: Annotated[Role, typer.Option("--role", help="ingest | clinician | admin")],
                name: Annotated[Optional[str], typer.Option("--name", help="who uses it (written to the audit trail)")] = None) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from storage import api_keys
    from storage.db import session

    rt = _runtime()
    try:
        with session(rt.engine) as s:
            token, key = api_keys.create_key(s, name or f"{role.value}-key", role.value)
    except api_keys.ApiKeyError as exc:
        raise UserError(str(exc)) from None
    typer.echo(token)
    typer.echo(f"key {key.id} ({key.prefix}…) for {key.name!r}, role {key.role}: store it now, it is not shown again",
               err=True)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List API keys (never the keys themselves)."""
    from storage import api_keys
    from storage.db import session

    rt = _runtime()
    with session(rt.engine, write=False) as s:
        rows = [k.as_dict() for k in api_keys.list_keys(s)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no API keys")
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        typer.echo(f"{r['id']:>4}  {r['prefix']}…  {r['role']:<9}  {r['name']}  created {r['created_at']}  {state}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="the key's id or prefix")]) -> None:
    """Revoke an API key (it stops working at once)."""
    from storage import api_keys
    from storage.db import session

    rt = _runtime()
    try:
        with session(rt.engine) as s:
            k = api_keys.revoke(s, key)
    except api_keys.ApiKeyError as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"key {k.id} ({k.prefix}…, {k.name}) revoked at {k.revoked_at.isoformat() if k.revoked_at else ''}")
