"""How the outcome report reads to a person: display strings shared by the web page, the standalone
HTML file (`imn-monitor report --html FILE`) and the CLI table. Estimates in whole percent (their
intervals are wide; a decimal would claim a precision the data do not have); published figures as
published."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from monitor.outcome_report import CAVEAT, DEFINITIONS, Estimate, Median, OutcomeReport, RegimenOutcome
from monitor.published import PublishedFigure

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENDPOINT_WORDS = {"remission": "remission (PR or CR)", "complete_remission": "complete remission",
                  "relapse": "relapse after remission"}


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}%"


def estimate(e: Estimate | None) -> str:
    """'60% (48–71; 42 followed)', or '– (0 followed)' when not estimable."""
    if e is None:
        return "–"
    if e.percent is None:
        return f"– ({e.at_risk} followed)"
    ci = f"{e.low:.0f}–{e.high:.0f}" if e.low is not None and e.high is not None else "CI n/a"
    return f"{e.percent:.0f}% ({ci}; {e.at_risk} followed)"


def cell(e: Estimate | None) -> dict[str, str]:
    """An estimate for a table cell: the figure, then a small line with its interval and follow-up."""
    if e is None:
        return {"main": "–", "sub": ""}
    if e.percent is None:
        return {"main": "–", "sub": f"{e.at_risk} followed that long"}
    ci = f"{e.low:.0f}–{e.high:.0f}" if e.low is not None and e.high is not None else "CI n/a"
    return {"main": f"{e.percent:.0f}%", "sub": f"95% CI {ci} · {e.at_risk} followed"}


def short(e: Estimate | None) -> str:
    """'23% (13–39)' or '–'."""
    if e is None or e.percent is None:
        return "–"
    return f"{e.percent:.0f}%" + (f" ({e.low:.0f}–{e.high:.0f})" if e.low is not None and e.high is not None else "")


def median(m: Median | None) -> str:
    if m is None:
        return "–"
    if m.days is None:
        return "not reached" + (f" (CI from {m.low:.0f} d)" if m.low is not None else "")
    high = f"{m.high:.0f}" if m.high is not None else "not bounded"
    low = f"{m.low:.0f}" if m.low is not None else "?"
    return f"{m.days:.0f} d ({low}–{high})"


def published(p: PublishedFigure) -> str:
    when = f"at {p.months:g} months" if p.months is not None else "over the course of the disease"
    if p.note and "median" in p.note:
        when = f"at a median {p.months:g} months"
    return f"{p.source}: {p.arm}, {ENDPOINT_WORDS[p.endpoint]} {p.percent:g}% {when}"


def regimen_row(r: RegimenOutcome) -> dict[str, Any]:
    rate = r.alerts_per_patient_year
    serious = r.serious_alerts_per_patient_year
    return {
        "regimen": r.regimen, "label": r.label, "definition": r.definition,
        "courses": f"{r.courses} ({r.patients} patients, {r.first_line} first-line)" if r.regimen != "supportive"
                   else f"{r.courses} patients",
        "evaluable": f"{r.evaluable}" + (" — excluded: " + ", ".join(f"{k} {v}" for k, v in sorted(r.excluded.items()))
                                         if r.excluded else ""),
        "remission": [estimate(e) for e in r.remission],
        "remission_cells": [cell(e) for e in r.remission],
        "complete_cell": cell(r.complete_remission[1]) if len(r.complete_remission) > 1 else cell(None),
        "courses_cell": ({"main": str(r.courses), "sub": f"{r.patients} patients · {r.first_line} first-line"}
                         if r.regimen != "supportive" else {"main": str(r.courses), "sub": "patients"}),
        "evaluable_cell": {"main": str(r.evaluable),
                           "sub": "; ".join(f"{k}: {v}" for k, v in sorted(r.excluded.items()))},
        "relapse_cell": ({"main": f"{r.relapsed} of {r.remissions}",
                          "sub": f"KM by 12 mo {short(r.relapse[0])} · by 24 mo {short(r.relapse[1])}"}
                         if r.remissions else {"main": "–", "sub": "no remission yet"}),
        "immunological_cell": ({"main": f"{r.immunological_remissions} of {r.titer_positive}",
                                "sub": f"median {median(r.immunological_median)} · by 6 mo "
                                       f"{short(r.immunological_at_6_months)}"}
                               if r.titer_positive else {"main": "–", "sub": "none started ≥ 14 RU/mL"}),
        "alerts_cell": ({"main": "–", "sub": ""} if rate is None else
                        {"main": f"{rate:.2f}", "sub": f"{serious or 0:.2f} warning/critical · "
                                                       f"{r.patient_years:.0f} patient-years"}),
        "complete_remission": estimate(r.complete_remission[1]) if len(r.complete_remission) > 1 else "–",
        "relapse": (f"{r.relapsed} of {r.remissions} remitted; by 12 mo {estimate(r.relapse[0])}, "
                    f"by 24 mo {estimate(r.relapse[1])}" if r.remissions else "no remission yet"),
        "immunological": (f"{r.immunological_remissions} of {r.titer_positive}; median {median(r.immunological_median)}; "
                          f"by 6 mo {estimate(r.immunological_at_6_months)}" if r.titer_positive
                          else "no course started with anti-PLA2R ≥ 14"),
        "alerts": ("–" if rate is None else f"{rate:.2f} ({serious or 0:.2f} warning/critical; "
                                            f"{r.patient_years:.0f} patient-years)"),
        "published": [published(p) for p in r.published],
        "citations": sorted({(p.source, p.citation) for p in r.published}),
    }


def context(report: OutcomeReport) -> dict[str, Any]:
    return {"report": report, "rows": [regimen_row(r) for r in report.regimens], "caveat": CAVEAT,
            "definitions": DEFINITIONS, "not_used": [r for r in report.as_dict()["not_used"]],
            "gathered": report.sources}


def render_standalone_html(report: OutcomeReport, png: bytes) -> str:
    """A self-contained HTML file (the plot embedded as a data: URI, styles inline)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    return env.get_template("report_file.html").render(
        **context(report), plot_src="data:image/png;base64," + base64.b64encode(png).decode(),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
