"""`imn-monitor`: the command-line entry point.

Parses arguments, builds the runtime once (tasks.bootstrap: commands that write migrate the schema
first, commands that only read check it and never migrate), and calls the use cases of tasks.service
or the read side. User mistakes are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import ExitStack
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import IO, Annotated, Any, Optional

import typer

from cli import output
from cli.demo import DEFAULT_STEP_DAYS
from cli.errors import UserError
from monitor.findings import SEVERITY_RANK
from monitor.interop import formats
from monitor.rules import RULE_IDS
from storage.models import ALERT_STATUSES

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Longitudinal monitor for idiopathic membranous nephropathy.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")


__all__ = ["UserError", "app", "main"]

# choices derived from their one definition (storage's statuses, the engine's severities, the
# registry of input formats)
Status = Enum("Status", {k: k for k in ALERT_STATUSES}, type=str)  # type: ignore[misc]
Severity = Enum("Severity", {k: k for k in SEVERITY_RANK}, type=str)  # type: ignore[misc]
Format = Enum("Format", {k: k for k in ("auto", *formats.names())}, type=str)  # type: ignore[misc]


def _runtime(writes: bool = True):  # type: ignore[no-untyped-def]
    """This process's runtime. A command that writes migrates the schema to head first; one that
    only reads checks it and says what to run when it is missing or behind, never migrating a
    database (a read must not change it, and may run with a role that cannot)."""
    from tasks import bootstrap

    return bootstrap.current("upgrade" if writes else "check")


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
    """Accept lab results and treatment events; prints accepted, duplicate, corrected, quarantined.

    Files are read as they are stored (NDJSON and CSV batch by batch): a large file is never whole
    in memory."""
    from tasks import service
    from tasks.ingest import nonblank

    day = _parse_day(as_of, "--as-of")
    for p in paths:
        if str(p) != "-" and not p.is_file():
            raise UserError(f"no such file: {p}")
    with ExitStack() as files:
        payloads: list[tuple[IO[bytes], str]] = []
        for p in paths:
            raw = sys.stdin.buffer if str(p) == "-" else files.enter_context(p.open("rb"))
            stream = nonblank(raw)
            if stream is None:
                # nothing to store or quarantine (as the HTTP API answers 400 "empty body"); this said
                # "unknown format 'auto'" before (issue 12)
                raise UserError(f"empty file: {p}" if str(p) != "-" else "empty file: nothing on standard input")
            payloads.append((stream, "stdin" if str(p) == "-" else p.name))
        rt = _runtime()
        submitted = service.submit(rt, payloads, format.value, day)
    # with a broker, workers process the batches: wait for them (or not, --no-wait); embedded, they
    # are processed already. Identical bytes accepted before are that earlier inbox row, reported
    # as repeated, not processed again.
    result: dict[str, Any] = (service.ingest_counts(rt, submitted.todo, timeout_s=600.0 if wait else 0.0)
                              if wait or rt.settings.embedded else {"queued_batches": len(submitted.todo)})
    result["batches"] = len(submitted.batches)
    if submitted.repeated:
        result["repeated_batches"] = len(submitted.repeated)
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
    from tasks import service
    from tasks.reassess import nightly_mode

    many = all_ or full
    if bool(patient) == many:
        raise UserError("give exactly one of --patient ID, --all or --full")
    day = _parse_day(as_of, "--as-of")
    rt = _runtime()
    day = day or rt.settings.today()
    if many:
        which = "all" if nightly_mode(rt, day, full) == "full" else "due"
        c = service.reassess_everyone(rt, day, full)
        if c is None:
            typer.echo(f"queued reassessment of {which} patients as of {day}")
        else:
            typer.echo(f"reassessed {c.patients} patients ({which}) as of {day}: fired {c.fired}, "
                       f"escalated {c.escalated}, resolved {c.resolved}, reopened {c.reopened}, updated {c.updated}")
        return
    assert patient is not None
    if not service.patient_exists(rt, patient):
        raise UserError(f"no patient {patient}")
    c = service.reassess_patient(rt, patient, day)
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
    rt = _runtime(writes=False)
    with session(rt.engine, write=False) as s:
        rows = views.list_alerts(s, patient_id=patient, status=status.value if status else None, rule=rule,
                                 severity=severity.value if severity else None, limit=limit)
    output.print_alerts(rows, as_json)


@app.command()
def alert(alert_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One alert with its evidence and audit history."""
    from storage import views
    from storage.db import session

    rt = _runtime(writes=False)
    with session(rt.engine, write=False) as s:
        row = views.alert_detail(s, alert_id)
    if row is None:
        raise UserError(f"no alert {alert_id}")
    output.print_alert_detail(row, as_json)


def _act(alert_id: int, action: str, **kwargs: Any) -> None:
    from storage import repository as repo
    from tasks import service

    rt = _runtime()
    try:
        service.act(rt, alert_id, action, **kwargs)
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
    from tasks import service

    day = _parse_day(as_of, "--as-of")
    rt = _runtime(writes=False)
    found = service.patient_summary(rt, patient_id, day)
    if found is None:
        raise UserError(f"no patient {patient_id}")
    output.print_patient(found.stored, found.assessment, found.timeline, as_json, found.kinetics)


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
    rt = _runtime(writes=False)
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

    rt = _runtime(writes=False)
    with session(rt.engine, write=False) as s:
        rows = views.list_quarantine(s, limit=limit)
    output.print_quarantine(rows, as_json)


@app.command()
def demo(
    patients: Annotated[int, typer.Option(min=1, help="synthetic patients")] = 200,
    years: Annotated[float, typer.Option(min=0.5, max=10)] = 3.0,
    seed: Annotated[int, typer.Option()] = 20261126,
    step_days: Annotated[int, typer.Option(min=1, help="simulated days between nightly runs (1 = every night)")] = DEFAULT_STEP_DAYS,
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
    rt = _runtime()
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

        from storage.db import SchemaNotCurrent

        if isinstance(exc, SchemaNotCurrent):
            typer.echo(f"error: {exc}", err=True)
            sys.exit(1)
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
        port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
        workers: Annotated[int, typer.Option(min=1, max=64, help="server processes (the API keeps no state: "
                                             "each builds its runtime from the same settings)")] = 1) -> None:
    """Serve the HTTP feed (FastAPI on uvicorn): ingestion, alerts, patients, stream, FHIR, metrics."""
    import uvicorn

    from feed import create_app

    rt = _runtime()  # migrates once here, before any worker starts
    typer.echo(f"HTTP feed on http://{host}:{port} (database {rt.engine.url.render_as_string(hide_password=True)}, "
               f"{'embedded' if rt.settings.embedded else 'broker'} mode, {workers} process(es)); OpenAPI at /docs")
    # proxy headers are honoured by the app, from IMN_TRUSTED_PROXIES only (uvicorn would trust 127.0.0.1)
    if workers == 1:
        uvicorn.run(create_app(rt), host=host, port=port, log_level="info", proxy_headers=False)
        return
    # several processes sharing the listening socket: uvicorn imports the factory in each one, which
    # builds that process's runtime from the same settings (environment, .env)
    rt.engine.dispose()
    uvicorn.run("feed.app:create_app", factory=True, workers=workers, host=host, port=port, log_level="info",
                proxy_headers=False)


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

    rt = _runtime(writes=False)
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
