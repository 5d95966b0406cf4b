"""The outcome report's remission curves as one PNG: render_remission_curves(report) -> bytes.

One small panel per regimen the clinic used (the same axes everywhere, so panels compare): the
Kaplan-Meier cumulative incidence of remission (PR or CR) from time zero with its 95 % band, the
6/12/24-month estimates marked, and the published figures for the same regimen as labelled diamonds
(open: at a median follow-up or over the course of the disease rather than a fixed time point).
Pure: matplotlib's Agg backend, an explicit Figure (no pyplot state shared between threads).
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from monitor.outcome_report import DAYS_PER_MONTH, OutcomeReport, RegimenOutcome

C_CURVE, C_PUBLISHED = "#1f5fa8", "#b3261e"
X_MAX_MONTHS = 36
COLUMNS = 3


def _panel(ax, r: RegimenOutcome) -> None:  # type: ignore[no-untyped-def]
    ax.set_title(f"{r.label.split(' (')[0]}\n{r.courses} course{'s' if r.courses != 1 else ''}, {r.evaluable} evaluable",
                 fontsize=9, loc="left")
    ax.set_xlim(0, X_MAX_MONTHS)
    ax.set_ylim(0, 100)
    ax.set_xticks(range(0, X_MAX_MONTHS + 1, 6))
    ax.set_yticks(range(0, 101, 25))
    ax.grid(True, color="#e3e3e3", lw=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    c = r.remission_curve
    if c is None or not c.days:
        ax.text(0.5, 0.5, "no evaluable course", transform=ax.transAxes, ha="center", va="center",
                color="#777", fontsize=9)
    else:
        months = [d / DAYS_PER_MONTH for d in c.days]
        ax.fill_between(months, c.low, c.high, step="post", color=C_CURVE, alpha=0.15, lw=0)
        ax.step(months, c.percent, where="post", color=C_CURVE, lw=1.8, label="this clinic (95% CI)")
        for e in r.remission:
            if e.percent is not None:
                ax.plot([e.months], [e.percent], "o", color=C_CURVE, ms=4)
    shown = [p for p in r.published if p.endpoint == "remission"]
    for k, p in enumerate(shown):
        at = p.months if p.months is not None else X_MAX_MONTHS - 1
        fixed = p.months is not None and "median" not in p.note
        ax.plot([at], [p.percent], "D", ms=6, color=C_PUBLISHED, mfc=C_PUBLISHED if fixed else "white",
                mew=1.4, label="published")
        # labels alternate above and below their marker: trials often report near-equal figures
        below = k % 2 == 1 or p.percent > 85
        ax.annotate(f"{p.source} {p.percent:g}%", (at, p.percent), xytext=(5, -11 if below else 4),
                    textcoords="offset points", fontsize=7, color=C_PUBLISHED)


def render_remission_curves(report: OutcomeReport, width_px: int = 1100, dpi: int = 100) -> bytes:
    """PNG bytes of the remission curves per regimen (module docstring)."""
    regimens = list(report.regimens)
    rows = max(1, math.ceil(len(regimens) / COLUMNS))
    fig = Figure(figsize=(width_px / dpi, 0.9 + 2.7 * rows), dpi=dpi)
    fig.suptitle(f"Remission (PR or CR) after the start of each course — as of {report.as_of.isoformat()}",
                 x=0.01, ha="left", fontsize=12, fontweight="bold")
    fig.text(0.01, 1 - 0.5 / (0.9 + 2.7 * rows), "Kaplan-Meier cumulative incidence with 95% band (blue); "
             "published figures (red diamonds; open = median follow-up or no fixed time). "
             "An observational cohort, not a randomised trial.", fontsize=8, color="#444")
    if not regimens:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no treatment course recorded", ha="center", va="center", color="#777")
    for i, r in enumerate(regimens):
        ax = fig.add_subplot(rows, COLUMNS, i + 1)
        _panel(ax, r)
        if i % COLUMNS == 0:
            ax.set_ylabel("in remission (%)", fontsize=8)
        if i >= len(regimens) - COLUMNS:
            ax.set_xlabel("months from time zero", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.subplots_adjust(left=0.06, right=0.98, top=1 - 1.25 / (0.9 + 2.7 * rows), bottom=0.5 / (0.9 + 2.7 * rows),
                        hspace=0.75, wspace=0.22)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
