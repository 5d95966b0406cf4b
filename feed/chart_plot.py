"""Drawing a patient's course as one PNG: render_chart(timeline, alerts, as_of) -> bytes.

This module draws; feed/chart_route.py serves the result at GET /patients/{id}/chart.png (as
feed/report_plot.py draws what feed/report.py serves). Pure: no I/O besides the returned bytes
(matplotlib's Agg backend, an explicit Figure, no pyplot state shared between threads).

chart_figure reads what is shown once (ChartData), sizes the figure (make_layout), then calls one
function per section: draw_title, draw_therapy_strip, draw_titer_panel, draw_second_panel,
draw_alert_markers, draw_time_axis, draw_legend. Panels, top to bottom:

- therapy strip: anti-CD20 courses (monitor.therapy.anti_cd20_courses), calcineurin-inhibitor
  windows, cyclophosphamide, glucocorticoids as bars (an open course runs to as_of); the same spans
  are shaded lightly behind the data panels;
- anti-PLA2R (RU/mL, left axis, log scale when the titres span a wide range) and proteinuria
  (g/d, right axis: 24-h collections, UPCR on days without one, as the rules read it), with the
  KDIGO reference lines 14/20 RU/mL and 3.5 g/d;
- serum albumin (g/L) and CsA/tacrolimus troughs (ng/mL), when any were measured.

The anti-PLA2R decline of the current course (monitor.kinetics) is drawn over the titers by
draw_kinetics: fitted line, 95 % band, projection to 14 and 2 RU/mL with its interval.

Alerts are vertical markers at their raise time labelled with the rule id (critical red, warning
orange, info grey; resolved ones dotted).

Layout, top to bottom: the title, then the legend in a band of its own (as many rows as its entries
need), then the panels; the figure grows by the legend's rows, so the two never overlap however
many series, therapies and alert kinds a patient has. Reference lines and their labels use the
monitor's own thresholds and its display formatting (monitor.display).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from monitor.display import value_text
from monitor.events import CALCINEURIN_INHIBITORS, LabResult, MedicationEvent
from monitor.kinetics import TiterKinetics, titer_kinetics
from monitor.remission import NEPHROTIC_G_PER_DAY
from monitor.rules.albumin_low_thrombosis import ALBUMIN_WARNING_BELOW_G_L
from monitor.severity import MOST_SEVERE_FIRST
from monitor.therapy import anti_cd20_courses
from monitor.timeline import Timeline
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML, ANTI_PLA2R_POSITIVE_FROM_RU_ML

# the monitor's own thresholds (each lives once, with its source, where the rules read it)
# negative < 14, positive >= 20 RU/mL
PLA2R_THRESHOLDS = (ANTI_PLA2R_NEGATIVE_BELOW_RU_ML, ANTI_PLA2R_POSITIVE_FROM_RU_ML)
ALBUMIN_LOW_G_PER_L = ALBUMIN_WARNING_BELOW_G_L  # thrombosis prophylaxis considered below 25 g/L
TITLE_BAND_IN = 0.5  # inches above the legend for the title
LEGEND_ROW_IN = 0.2  # inches per legend row at fontsize 8 (about 0.17 drawn)
LEGEND_COLUMNS = 5  # entries per legend row: the longest labels fit a fifth of 1100 px

# (row label, the drugs it shows, colour); the drug classes are monitor.events' own
THERAPY_ROWS: tuple[tuple[str, frozenset[str], str], ...] = (
    ("anti-CD20", frozenset(), "#7b3fa0"),  # from anti_cd20_courses (ANTI_CD20 agents grouped in courses)
    ("CNI", CALCINEURIN_INHIBITORS, "#d9822b"),
    ("alkylating", frozenset({"cyclophosphamide", "chlorambucil"}), "#c23b3b"),
    ("MMF", frozenset({"mycophenolate"}), "#1b8a9a"),
    ("ACTH", frozenset({"acth"}), "#8a6d1b"),
    ("belimumab", frozenset({"belimumab"}), "#5d6db5"),
    ("steroids", frozenset({"glucocorticoid"}), "#3c8d4f"),
)
# supportive care (ACE inhibitor, ARB) and thrombosis prophylaxis are not drawn: the strip shows the
# immunosuppressive courses of the seed review, every one of them (tests/unit/test_vocabulary.py)
THERAPY_COLOURS = {label: colour for label, _, colour in THERAPY_ROWS}
# one colour per severity of monitor.severity (tests/unit/test_vocabulary.py checks none is missing)
SEVERITY_COLOURS: dict[str, str] = {"critical": "#c0392b", "warning": "#e67e22", "info": "#7f8c8d"}
UNKNOWN_SEVERITY_COLOUR = "#7f8c8d"
C_PLA2R, C_PROT, C_ALB, C_CSA, C_TAC = "#1f5fa8", "#b8860b", "#2e7d32", "#8e44ad", "#d35400"
C_FIT = "#0b7a75"  # the fitted anti-PLA2R decline and its projection
MIN_BAND_DAYS = 4  # a single infusion still shows as a visible band


def _naive(d: date | datetime) -> datetime:
    """Naive UTC datetimes for matplotlib (dates at midnight)."""
    if isinstance(d, datetime):
        return d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d
    return datetime.combine(d, time())


def _parse_when(v: Any) -> datetime | None:
    if isinstance(v, (datetime, date)):
        return _naive(v)
    if isinstance(v, str) and v:
        try:
            return _naive(datetime.fromisoformat(v))
        except ValueError:
            return None
    return None


def alert_time(alert: dict[str, Any], as_of: date) -> datetime | None:
    """Where an alert sits on the clinical time axis: at the newest dated evidence behind it (the
    result that made it fire), else at its raise time; never after as_of. (raised_at is wall-clock
    time: results loaded late or assessed for a past date would otherwise all pile up at today.)"""
    dated = [w for e in alert.get("evidence") or []
             if (w := _parse_when(e.get("effective_at") or e.get("start"))) is not None]
    when = max(dated) if dated else _parse_when(alert.get("raised_at"))
    if when is None:
        return None
    return min(when, _naive(as_of) + timedelta(hours=23))


def _course_end(m: MedicationEvent, as_of: date) -> date:
    if m.frequency == "once":
        return m.start
    return min(m.end, as_of) if m.end is not None else as_of


def therapy_spans(timeline: Timeline, as_of: date) -> dict[str, list[tuple[date, date, str]]]:
    """{row label: [(start, end, label)]} of the therapies shown, in THERAPY_ROWS order."""
    out: dict[str, list[tuple[date, date, str]]] = {}
    for c in anti_cd20_courses(timeline, as_of):
        out.setdefault("anti-CD20", []).append((c.first_dose, c.last_dose, f"{c.agent} x{len(c.doses)}"))
    for label, drugs, _ in THERAPY_ROWS[1:]:
        for m in timeline.medications:
            if m.drug in drugs and m.start <= as_of:
                out.setdefault(label, []).append((m.start, _course_end(m, as_of), m.drug))
    return {label: out[label] for label, _, _ in THERAPY_ROWS if label in out}


Series = tuple[list[datetime], list[float]]  # (dates, values) as matplotlib takes them


def _xy(series: Iterable[LabResult]) -> Series:
    xs, ys = [], []
    for r in series:
        xs.append(_naive(r.effective_at))
        ys.append(r.value)
    return xs, ys


def kinetics_extent(kinetics: TiterKinetics) -> list[datetime]:
    """The dates the kinetics overlay reaches beyond the data: projected crossings and their intervals."""
    out = []
    for c in kinetics.crossings:
        if c.state == "projected":
            out += [_naive(d) for d in (c.on, c.latest) if d is not None]
    return out


def draw_kinetics(ax: Any, kinetics: TiterKinetics, as_of: date) -> None:
    """The anti-PLA2R decline fitted by monitor.kinetics on the titer axis: the fitted line with its
    95 % band (dashed beyond the last value: a projection), an outlier left out of the fit crossed
    out, and each projected crossing of 14 and 2 RU/mL as a marker with its 95 % interval."""
    fit = kinetics.fit
    if fit is None or fit.slope >= 0:
        return
    last = max(p.day for p in kinetics.points if p.role == "fitted")
    ends = [c.latest or c.on for c in kinetics.crossings if c.state == "projected" and c.on]
    horizon = max([last, as_of, *[d for d in ends if d is not None]])
    days = [fit.origin + timedelta(days=i) for i in range(0, (horizon - fit.origin).days + 1, 2)]
    if not days:
        return
    xs = [_naive(d) for d in days]
    band = [fit.band_on(d) for d in days]
    ax.fill_between(xs, [b[0] for b in band], [b[1] for b in band], color=C_FIT, alpha=0.10, lw=0)
    observed = [i for i, d in enumerate(days) if d <= last]
    half = kinetics.half_life_days or 0.0
    ax.plot([xs[i] for i in observed], [fit.value_on(days[i]) for i in observed], "-", color=C_FIT, lw=1.4,
            label=f"anti-PLA2R fit (half-life {half:.0f} d)")
    ahead = [i for i, d in enumerate(days) if d >= last]
    ax.plot([xs[i] for i in ahead], [fit.value_on(days[i]) for i in ahead], "--", color=C_FIT, lw=1.4)
    if kinetics.outlier is not None:
        ax.plot([_naive(kinetics.outlier.day)], [max(kinetics.outlier.value, 1.0)], "x", color="#c0392b", ms=9,
                mew=2, label="outlier (not fitted)")
    for c in kinetics.crossings:
        if c.state != "projected" or c.on is None:
            continue
        when = _naive(c.on)
        lo = _naive(c.earliest) if c.earliest else when
        hi = _naive(c.latest) if c.latest else _naive(horizon)
        ax.errorbar([when], [c.target], xerr=[[when - lo], [hi - when]], fmt="v", color=C_FIT, ms=7,
                    capsize=4, lw=1.2)
        ax.annotate(f"< {c.target:g}: ~{c.on.isoformat()}" + ("" if c.latest else " (upper bound open)"),
                    (when, c.target), xytext=(4, 6), textcoords="offset points", fontsize=7, color=C_FIT)


@dataclass(frozen=True)
class ChartData:
    """What the chart shows, read once from the timeline up to as_of: each series as (dates, values),
    the therapy rows, the alerts placed on the time axis, the anti-PLA2R kinetics."""

    patient_id: str
    as_of: date
    pla2r: Series
    prot: Series
    alb: Series
    csa: Series
    tac: Series
    spans: dict[str, list[tuple[date, date, str]]]
    marks: list[tuple[datetime, dict[str, Any]]]
    kinetics: TiterKinetics

    @classmethod
    def read(cls, timeline: Timeline, alerts: list[dict[str, Any]], as_of: date) -> ChartData:
        tl = timeline.until(as_of)
        return cls(timeline.patient_id, as_of, _xy(tl.series("anti_pla2r")), _xy(tl.proteinuria()),
                   _xy(tl.series("serum_albumin")), _xy(tl.series("csa_trough")), _xy(tl.series("tac_trough")),
                   therapy_spans(tl, as_of), [(w, a) for a in alerts if (w := alert_time(a, as_of)) is not None],
                   titer_kinetics(tl, as_of))

    @property
    def has_second_panel(self) -> bool:
        """Albumin or a CNI trough was measured: the lower panel is drawn."""
        return bool(self.alb[0] or self.csa[0] or self.tac[0])

    def window(self) -> tuple[datetime, datetime]:
        """The time axis: everything shown up to as_of (and the projections ahead), at least 60 days,
        with a 3 % margin on both sides."""
        points = [x for s in (self.pla2r, self.prot, self.alb, self.csa, self.tac) for x in s[0]]
        points += [_naive(d) for rows in self.spans.values() for (a, b, _) in rows for d in (a, b)]
        points += [w for w, _ in self.marks]
        end = max([_naive(self.as_of + timedelta(days=1)), *kinetics_extent(self.kinetics)])
        start = min(points) if points else end - timedelta(days=365)
        start = min(start, end - timedelta(days=60))
        pad = (end - start) * 0.03
        return start - pad, end + pad

    def alert_severities(self) -> list[str]:
        """The severities of the alerts shown, most severe first (one legend entry each)."""
        shown = {a.get("severity") for _, a in self.marks}
        return [sev for sev in MOST_SEVERE_FIRST if sev in shown]


@dataclass(frozen=True)
class Layout:
    """The figure and its axes: the therapy strip, the anti-PLA2R/proteinuria panel and, when there is
    anything to show in it, the albumin/trough panel; heights in inches for the title and legend band."""

    fig: Figure
    therapy: Any
    titer: Any
    second: Any | None
    height_in: float
    top_in: float

    @property
    def data_axes(self) -> list[Any]:
        return [self.titer] + ([self.second] if self.second is not None else [])


def render_chart(timeline: Timeline, alerts: list[dict[str, Any]], as_of: date,
                 width_px: int = 1100, dpi: int = 100) -> bytes:
    """The patient's chart as PNG bytes (see the module docstring)."""
    fig = chart_figure(timeline, alerts, as_of, width_px, dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def chart_figure(timeline: Timeline, alerts: list[dict[str, Any]], as_of: date,
                 width_px: int = 1100, dpi: int = 100) -> Figure:
    """The patient's chart as a matplotlib Figure (render_chart saves it as PNG): one function per
    section, drawn in this order (later artists lie on top of earlier ones)."""
    data = ChartData.read(timeline, alerts, as_of)
    x0, x1 = data.window()
    layout = make_layout(data, width_px, dpi)
    draw_title(layout, data)
    draw_therapy_strip(layout, data.spans, x0, x1)
    handles = draw_titer_panel(layout.titer, data)
    if layout.second is not None:
        handles += draw_second_panel(layout.second, data)
    draw_alert_markers(layout, data.marks, x0, x1)
    draw_time_axis(layout, x0, x1, as_of)
    draw_legend(layout, handles, data)
    layout.fig.subplots_adjust(left=0.12, right=0.93, top=1 - layout.top_in / layout.height_in,
                               bottom=0.45 / layout.height_in)
    return layout.fig


def make_layout(data: ChartData, width_px: int, dpi: int) -> Layout:
    """The figure sized for its panels and its legend: the legend's entries (the series present, the
    therapy rows, the severities of the alerts shown) are known before drawing, and the band above
    the panels gets as many rows as they need."""
    second = data.has_second_panel
    rows = [0.22 + 0.13 * max(len(data.spans), 1), 3.0] + ([1.8] if second else [])
    shown_series = (data.pla2r, data.prot, *((data.alb, data.csa, data.tac) if second else ()))
    n_legend = sum(bool(s[0]) for s in shown_series) + len(data.spans) + len(data.alert_severities())
    legend_in = LEGEND_ROW_IN * math.ceil(n_legend / LEGEND_COLUMNS) if n_legend else 0.0
    top_in = TITLE_BAND_IN + legend_in + 0.35  # title, legend, and the therapy strip's own label
    height_in = top_in + 0.45 + sum(rows) * 1.25
    fig = Figure(figsize=(width_px / dpi, height_in), dpi=dpi)
    gs = fig.add_gridspec(len(rows), 1, height_ratios=rows, hspace=0.12)
    ax_t = fig.add_subplot(gs[0])
    ax1 = fig.add_subplot(gs[1], sharex=ax_t)
    ax2 = fig.add_subplot(gs[2], sharex=ax_t) if second else None
    return Layout(fig, ax_t, ax1, ax2, height_in, top_in)


def draw_title(layout: Layout, data: ChartData) -> None:
    title = f"Patient {data.patient_id} — as of {data.as_of.isoformat()}"
    layout.fig.suptitle(title, x=0.01, y=1 - 0.12 / layout.height_in, ha="left", va="top", fontsize=13,
                        fontweight="bold")


def draw_therapy_strip(layout: Layout, spans: dict[str, list[tuple[date, date, str]]],
                       x0: datetime, x1: datetime) -> None:
    """One Gantt row per therapy kind (a label inside a wide bar, beside a narrow one), and the same
    spans shaded lightly behind the data panels."""
    ax_t = layout.therapy
    labels = list(spans)
    if not labels:
        # said inside the strip: as a row label it is wider than the left margin and was clipped
        ax_t.text(0.5, 0.5, "no therapy recorded", transform=ax_t.transAxes, ha="center", va="center",
                  fontsize=9, color="#555")
    wide = (x1 - x0) * 0.12
    for i, label in enumerate(labels):
        y = len(labels) - 1 - i
        for a, b, text in spans.get(label, []):
            left = _naive(a)
            right = max(_naive(b) + timedelta(days=1), left + timedelta(days=MIN_BAND_DAYS))
            ax_t.barh(y, right - left, left=left, height=0.7, color=THERAPY_COLOURS[label], alpha=0.85)
            inside = right - left > wide
            ax_t.text(left + (right - left) / 2 if inside else right, y, f" {text}", va="center",
                      ha="center" if inside else "left", fontsize=8, color="white" if inside else "#333")
            for ax in layout.data_axes:
                ax.axvspan(left, right, color=THERAPY_COLOURS[label], alpha=0.08, lw=0)
    ax_t.set_yticks(range(len(labels)), list(reversed(labels)), fontsize=9)
    ax_t.set_ylim(-0.6, max(len(labels), 1) - 0.4)
    ax_t.tick_params(axis="x", labelbottom=False)
    ax_t.set_title("therapy", loc="right", fontsize=9, color="#555")
    for side in ("top", "right"):
        ax_t.spines[side].set_visible(False)


def draw_titer_panel(ax1: Any, data: ChartData) -> list[Any]:
    """anti-PLA2R on the left axis (log when the titers span more than 50-fold) with its fitted decline
    and the 14/20 RU/mL lines; proteinuria on a right axis with the 3.5 g/d line. Returns the legend
    handles of the series drawn."""
    pla2r, prot = data.pla2r, data.prot
    ax1.set_ylabel("anti-PLA2R (RU/mL)", color=C_PLA2R)
    ax1.tick_params(axis="y", colors=C_PLA2R)
    if pla2r[0]:
        lo, hi = max(min(pla2r[1]), 1.0), max(pla2r[1])
        if hi / lo > 50:
            ax1.set_yscale("log")
            ax1.plot(pla2r[0], [max(v, 1.0) for v in pla2r[1]], "o-", color=C_PLA2R, lw=2, ms=5,
                     label="anti-PLA2R")
            ax1.set_ylim(0.8, hi * 1.6)
        else:
            ax1.plot(pla2r[0], pla2r[1], "o-", color=C_PLA2R, lw=2, ms=5, label="anti-PLA2R")
            ax1.set_ylim(0, max(hi, PLA2R_THRESHOLDS[1]) * 1.2)
        draw_kinetics(ax1, data.kinetics, data.as_of)
        # 14 below its line and 20 above its line: close together on a log axis, they no longer overlap
        for thr, style, side in zip(PLA2R_THRESHOLDS, (":", "--"), ("top", "bottom"), strict=True):
            ax1.axhline(thr, color=C_PLA2R, ls=style, lw=0.9, alpha=0.55)
            ax1.annotate(f"{value_text(thr, 'anti_pla2r')} RU/mL", (0.002, thr),
                         xycoords=("axes fraction", "data"), fontsize=7, color=C_PLA2R, alpha=0.8, va=side)
    else:
        ax1.set_yticks([])
    axp = ax1.twinx()
    axp.set_ylabel("proteinuria (g/d)", color=C_PROT)
    axp.tick_params(axis="y", colors=C_PROT)
    if prot[0]:
        axp.plot(prot[0], prot[1], "s-", color=C_PROT, lw=2, ms=5, label="proteinuria")
        axp.set_ylim(0, max(max(prot[1]), NEPHROTIC_G_PER_DAY) * 1.2)
    else:
        axp.set_ylim(0, NEPHROTIC_G_PER_DAY * 1.5)
    axp.axhline(NEPHROTIC_G_PER_DAY, color=C_PROT, ls="--", lw=0.9, alpha=0.6)
    axp.annotate(f"{value_text(NEPHROTIC_G_PER_DAY, 'proteinuria_24h')} g/d", (0.998, NEPHROTIC_G_PER_DAY),
                 xycoords=("axes fraction", "data"), fontsize=7, color=C_PROT, ha="right", va="bottom")
    if not pla2r[0] and not prot[0]:
        ax1.text(0.5, 0.5, "no anti-PLA2R or proteinuria results", transform=ax1.transAxes, ha="center",
                 color="#777")
    return [h for ax in (ax1, axp) for h in ax.get_legend_handles_labels()[0]]


def draw_second_panel(ax2: Any, data: ChartData) -> list[Any]:
    """Serum albumin (left axis, with the 25 g/L line) and the CsA/tacrolimus troughs on a right axis.
    Returns the legend handles of the series drawn."""
    alb, csa, tac = data.alb, data.csa, data.tac
    ax2.set_ylabel("albumin (g/L)", color=C_ALB)
    ax2.tick_params(axis="y", colors=C_ALB)
    handles: list[Any] = []
    if alb[0]:
        handles += ax2.plot(alb[0], alb[1], "D-", color=C_ALB, lw=1.8, ms=4, label="albumin")
        ax2.axhline(ALBUMIN_LOW_G_PER_L, color=C_ALB, ls="--", lw=0.9, alpha=0.55)
        ax2.set_ylim(0, max(max(alb[1]), 45) * 1.1)
    else:
        ax2.set_yticks([])
    if csa[0] or tac[0]:
        axc = ax2.twinx()
        axc.set_ylabel("CNI trough (ng/mL)", color="#555")
        if csa[0]:
            handles += axc.plot(csa[0], csa[1], "^-", color=C_CSA, lw=1.5, ms=5, label="CsA trough")
        if tac[0]:
            handles += axc.plot(tac[0], tac[1], "v-", color=C_TAC, lw=1.5, ms=5, label="tacrolimus trough")
        axc.set_ylim(0, max(csa[1] + tac[1]) * 1.25)
    return handles


def draw_alert_markers(layout: Layout, marks: list[tuple[datetime, dict[str, Any]]],
                       x0: datetime, x1: datetime) -> None:
    """A vertical line per alert across every panel (dotted once resolved), coloured by severity; the
    rule ids written once per cluster (alerts within 1.5 % of the axis share one label)."""
    close = (x1 - x0) * 0.015
    groups: list[tuple[datetime, list[str], str]] = []
    for when, a in sorted(marks, key=lambda m: m[0]):
        colour = SEVERITY_COLOURS.get(str(a.get("severity")), UNKNOWN_SEVERITY_COLOUR)
        resolved = a.get("status") == "resolved"
        for ax in [layout.therapy, *layout.data_axes]:
            ax.axvline(when, color=colour, lw=1.4, ls=":" if resolved else "-", alpha=0.5 if resolved else 0.9)
        rule = str(a.get("rule", "alert"))
        if groups and when - groups[-1][0] <= close:
            if rule not in groups[-1][1]:
                groups[-1][1].append(rule)
        else:
            groups.append((when, [rule], colour))
    for when, rules, colour in groups:
        layout.titer.annotate(" · ".join(rules), (when, 0.99), xycoords=("data", "axes fraction"),
                              rotation=90, ha="right", va="top", fontsize=8, color=colour,
                              bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def draw_time_axis(layout: Layout, x0: datetime, x1: datetime, as_of: date) -> None:
    """Dates under the lowest panel only, vertical grid lines, and as_of as a dash-dotted line."""
    data_axes = layout.data_axes
    last = data_axes[-1]
    last.set_xlim(x0, x1)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    last.xaxis.set_major_locator(locator)
    last.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in data_axes[:-1]:
        ax.tick_params(axis="x", labelbottom=False)
    for ax in data_axes:
        ax.grid(True, axis="x", color="#ddd", lw=0.6)
        ax.axvline(_naive(as_of), color="#444", lw=0.8, ls="-.", alpha=0.4)


def draw_legend(layout: Layout, series_handles: list[Any], data: ChartData) -> None:
    """One legend in its own band under the title, left-aligned with it: the series, the therapy rows,
    one entry per alert severity shown."""
    legend = list(series_handles)
    legend += [Patch(color=THERAPY_COLOURS[label], alpha=0.85, label=label) for label in data.spans]
    legend += [Patch(color=SEVERITY_COLOURS[sev], label=f"{sev} alert") for sev in data.alert_severities()]
    if legend:
        layout.fig.legend(handles=legend, loc="upper left", ncol=min(len(legend), LEGEND_COLUMNS), fontsize=8,
                          frameon=False, bbox_to_anchor=(0.005, 1 - TITLE_BAND_IN / layout.height_in),
                          borderaxespad=0.0, columnspacing=1.6, handlelength=2.2)
