"""How the CLI shows things: rich tables for a person, exact JSON with --json."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from monitor.assess import Assessment
from monitor.display import evidence_number, evidence_unit, immunological_text, latest_text, value_text
from monitor.kinetics import TiterKinetics
from monitor.timeline import Timeline

console = Console(highlight=False)
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def print_counts(counts: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _json(counts)
        return
    keys = ("accepted", "duplicate", "corrected", "retracted", "quarantined", "patients", "batches",
            "repeated_batches", "queued_batches", "still_queued_batches")
    typer.echo(", ".join(f"{k} {counts[k]}" for k in keys if k in counts))


def print_alerts(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _json(rows)
        return
    if not rows:
        typer.echo("no alerts")
        return
    # two lines per alert (what, then the message cut to the terminal's width): readable at 80
    # columns; `imn-monitor alert ID` shows the message whole with its evidence
    width = max(console.width - 4, 40)
    for r in rows:
        style = SEVERITY_STYLE.get(r["severity"], "")
        # before the date, so that an 80-column terminal still shows it
        muted = f"(inhibited by #{r['inhibited_by']['id']})  " if r.get("inhibited_by") else ""
        console.print(f"#{r['id']:<5} [{style}]{r['severity']:<8}[/] {r['status']:<12} {r['patient_id']}  "
                      f"[bold]{r['rule']}[/]  {muted}raised {str(r['raised_at'])[:10]}", overflow="ellipsis",
                      no_wrap=True)
        message = r["message"] if len(r["message"]) <= width else r["message"][:width - 1] + "\u2026"
        console.print(f"    {message}", markup=False, highlight=False, no_wrap=True, overflow="ellipsis")


def evidence_lines(evidence: list[dict[str, Any]]) -> list[str]:
    """Evidence items as text, values through monitor.display (the lab's precision, the reported value
    beside a converted one); --json keeps every value at full precision."""
    lines = []
    for e in evidence:
        name = e.get("analyte") or e.get("medication") or e.get("derived")
        value, unit = evidence_number(e), evidence_unit(e)
        extra = e.get("note")
        lines.append(f"{str(e.get('effective_at'))[:10]}  {name} {value} {unit}".rstrip()
                     + (f"  ({extra})" if extra else ""))
    return lines


def print_alert_detail(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _json(row)
        return
    console.print(f"[bold]alert {row['id']}[/] {row['rule']} [{SEVERITY_STYLE.get(row['severity'], '')}]"
                  f"{row['severity']}[/] {row['status']} — patient {row['patient_id']}")
    console.print(row["message"])
    console.print("[bold]evidence[/]")
    for line in evidence_lines(row.get("evidence") or []):
        console.print(f"  {line}")
    console.print(f"[bold]source[/] {row['reference']}")
    for a in row.get("audit") or []:
        console.print(f"  {str(a.get('at'))[:19]} {a.get('actor')}: {a.get('action')} "
                      f"{a.get('from_status') or ''}->{a.get('to_status') or ''} {a.get('comment') or ''}")


def print_patient(stored: dict[str, Any], assessment: Assessment, timeline: Timeline, as_json: bool,
                  kinetics: TiterKinetics | None = None) -> None:
    summary = assessment.summary()
    if kinetics is not None:
        summary["anti_pla2r_kinetics"] = kinetics.as_dict()
    out = {**summary, "open_alerts": stored.get("open_alerts", []), "events": stored.get("events", {}),
           "timeline": [
               {"analyte": r.analyte, "value": r.value, "unit": r.unit, "effective_at": r.effective_at.isoformat()}
               for r in timeline.labs
           ],
           "medications": [
               {"drug": m.drug, "dose": m.dose, "unit": m.unit, "frequency": m.frequency,
                "start": m.start.isoformat(), "end": m.end.isoformat() if m.end else None}
               for m in timeline.medications
           ]}
    if as_json:
        _json(out)
        return
    rem = summary["remission"]
    risk = summary["risk"]
    console.print(f"[bold]patient {assessment.patient_id}[/] as of {assessment.as_of}")
    peak = rem["episode_peak_g_per_day"]
    console.print(f"remission: {rem['state']} since {rem['since']} (episode from {rem['episode_start']}, "
                  f"peak {value_text(peak, 'proteinuria_24h') if peak is not None else '-'} g/d)")
    console.print(f"risk: {risk['category']}" + (" — very high immunological activity" if risk["very_high_activity"] else "")
                  + (f" ({'; '.join(risk['reasons'])})" if risk["reasons"] else ""))
    console.print(f"immunological state: {immunological_text(summary.get('immunological_state'))}")
    console.print(f"active therapies: {', '.join(summary['active_therapies']) or 'none'}")
    t = Table(title="latest results")
    for col in ("analyte", "value", "date"):
        t.add_column(col)
    for k, v in summary["latest"].items():
        t.add_row(k, latest_text(k, v), v["effective_at"][:10])
    console.print(t)
    if kinetics is not None:
        console.print(f"[bold]anti-PLA2R kinetics[/]: {kinetics.message}", highlight=False)
    for c in summary.get("courses", []):
        outcome = (f"{c['remission_kind']} remission {c['remission']}" if c.get("remission")
                   else c.get("excluded") or f"no remission by {c['follow_up_end']}")
        console.print(f"  course: {c['regimen']} from {c['start']}: {outcome}", highlight=False)
    if stored.get("open_alerts"):
        console.print("[bold]open alerts[/]")
        for a in stored["open_alerts"]:
            console.print(f"  #{a['id']} [{SEVERITY_STYLE.get(a['severity'], '')}]{a['severity']}[/] {a['rule']}: {a['message']}")
    else:
        console.print("no open alerts")


def print_report(report: Any, as_json: bool) -> None:
    """The outcome report: one table of the clinic's figures, then the published ones per regimen."""
    from feed.report_view import context

    if as_json:
        _json(report.as_dict())
        return
    ctx = context(report)
    console.print(f"[bold]clinic outcome report[/] as of {report.as_of}: {report.patients} patients, "
                  f"{report.courses} immunosuppressive courses")
    lead, _, rest = ctx["caveat"].partition(": ")
    console.print(f"[bold]{lead}.[/] {rest[:1].upper()}{rest[1:]}", highlight=False)
    for r in ctx["rows"]:  # one block per regimen: readable at 80 columns, unlike a 10-column table
        console.print()
        console.print(f"[bold]{r['label']}[/]: {r['courses']}; evaluable {r['evaluable']}", highlight=False)
        lines = [
            ("remission (PR or CR), Kaplan-Meier", " · ".join(f"{m} mo {e}" for m, e in zip((6, 12, 24), r["remission"]))),
            ("complete remission at 12 months", r["complete_remission"]),
            ("relapse after remission", r["relapse"]),
            ("immunological remission", r["immunological"]),
            ("alerts per patient-year", r["alerts"]),
            ("published", "; ".join(r["published"]) or "no published figure in our sources"),
        ]
        for label, text in lines:
            console.print(f"  {label}: {text}", markup=False, highlight=False)
    console.print()
    if ctx["not_used"]:
        console.print(f"not used in this clinic: {', '.join(ctx['not_used'])}")
    g = ctx["gathered"]
    console.print(f"outcomes read from the nightly assessments for {g.get('stored', 0)} patients, recomputed for "
                  f"{g.get('recomputed', 0)}; definitions and sources: --json, --html, docs/outcome-report.md")


def print_quarantine(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _json(rows)
        return
    if not rows:
        typer.echo("quarantine is empty")
        return
    t = Table()
    for col in ("id", "source", "line", "field", "value", "reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r["id"]), str(r.get("source_name") or ""), str(r.get("line") or ""), r["field"],
                  str(r["value"])[:40], r["reason"])
    console.print(t)
