"""Each vocabulary has one definition in monitor/, and every reader agrees with it.

Severity: monitor/severity.py orders the severities; the read side's SQL sort (storage/views.py,
feed/queries.py, with its keyset cursor), the web page's sort, the chart's colours, the CLI's styles,
the FHIR priorities and the page's CSS must follow it. Alert statuses: monitor/alerts.py. Drug
classes: monitor/events.py. The SQL is run, not inspected: an in-memory SQLite alerts table.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from monitor import severity
from monitor.alerts import ALERT_STATUSES, OPEN_STATUSES
from monitor.events import ANTI_CD20, CALCINEURIN_INHIBITORS, DRUGS
from monitor.findings import Finding
from monitor.severity import MOST_SEVERE_FIRST, SEVERITIES, SEVERITY_RANK

TEMPLATES = Path(__file__).resolve().parents[2] / "feed" / "templates"
UNKNOWN = "bogus"  # a value outside the vocabulary: it must sort after every known severity


def test_the_severities_are_ordered_from_least_to_most_severe() -> None:
    assert SEVERITIES == ("info", "warning", "critical")
    assert [SEVERITY_RANK[s] for s in SEVERITIES] == sorted(SEVERITY_RANK.values())
    assert len(set(SEVERITY_RANK.values())) == len(SEVERITIES)
    assert MOST_SEVERE_FIRST == ("critical", "warning", "info")
    assert severity.rank(None) == severity.rank(UNKNOWN) < severity.rank("info")
    assert sorted([UNKNOWN, *SEVERITIES], key=severity.most_severe_first) == [*MOST_SEVERE_FIRST, UNKNOWN]
    # a finding's severity is typed by the same vocabulary
    assert get_args(get_type_hints(Finding)["severity"]) == SEVERITIES


def test_the_lifecycle_and_inhibition_rank_severities_as_the_vocabulary_does() -> None:
    from monitor import alerts, inhibitions

    for lower, higher in pairwise(SEVERITIES):
        assert alerts.rank(lower) < alerts.rank(higher)
        # relapse inhibits titer_rising only when at least as severe
        assert inhibitions.can_inhibit("relapse", higher, "titer_rising", lower)
        assert not inhibitions.can_inhibit("relapse", lower, "titer_rising", higher)


@pytest.fixture
def db() -> Any:
    """An in-memory alerts table with one alert per severity (and one unknown), raised at the same
    time, inserted in shuffled order so that only the severity sort can put them in order."""
    from storage.models import AlertRow

    engine = create_engine("sqlite://")
    table = AlertRow.__table__  # type: ignore[attr-defined]
    table.create(engine)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    severities = [*SEVERITIES, UNKNOWN] * 2
    random.Random(13).shuffle(severities)
    with engine.begin() as c:
        for i, sev in enumerate(severities):
            c.execute(insert(table).values(
                fingerprint=f"P{i}/r/e", patient_id=f"P{i}", rule="titer_rising", episode="e", severity=sev,
                status="firing", message="m", evidence=[], reference="ref", raised_at=now, updated_at=now,
                as_of=date(2025, 6, 1)))
    yield engine
    engine.dispose()


def _most_severe_first_with_ties(n: int) -> list[str]:
    return [s for s in (*MOST_SEVERE_FIRST, UNKNOWN) for _ in range(n)]


def test_the_read_sides_sql_sorts_severities_in_the_vocabularys_order(db: Any) -> None:
    from storage import views

    with Session(db) as s:
        assert [a["severity"] for a in views.list_alerts(s)] == _most_severe_first_with_ties(2)


def test_the_feeds_keyset_pages_sort_severities_in_the_vocabularys_order(db: Any) -> None:
    from feed import queries

    flt = queries.AlertFilter()
    with Session(db) as s:
        for order, expected in (("desc", _most_severe_first_with_ties(2)),
                                ("asc", list(reversed(_most_severe_first_with_ties(2))))):
            page = queries.alert_page(s, flt, "severity", order, 100, None)
            assert [a["severity"] for a in page["items"]] == expected
            # one alert per page: each cursor carries monitor's rank, and the walk keeps the order
            seen, cursor = [], None
            while True:
                page = queries.alert_page(s, flt, "severity", order, 1, cursor)
                seen += [a["severity"] for a in page["items"]]
                if (cursor := page["next_cursor"]) is None:
                    break
            assert seen == expected


def test_the_web_page_groups_patients_by_the_vocabularys_order() -> None:
    from feed.web import _groups

    def alert(i: int, pid: str, sev: str, inhibited: bool = False) -> dict[str, Any]:
        return {"id": i, "patient_id": pid, "group": f"patient:{pid}", "severity": sev,
                "inhibited_by": {"id": 99} if inhibited else None}

    alerts = [alert(1, "A", "info"), alert(2, "B", "warning"), alert(3, "B", "critical", inhibited=True),
              alert(4, "C", "critical"), alert(5, "C", "info"), alert(6, "D", "critical", inhibited=True)]
    groups = _groups(alerts)
    # the patient with the most severe *active* alert first; a group of inhibited alerts only, last
    assert [g["patient_id"] for g in groups] == ["C", "B", "A", "D"]
    assert [a["severity"] for a in groups[0]["alerts"]] == ["critical", "info"]
    assert [a["id"] for a in groups[1]["alerts"]] == [2, 3]  # active before inhibited


def test_every_severity_has_its_colour_style_priority_and_css() -> None:
    from cli.output import SEVERITY_STYLE
    from feed.chart_plot import SEVERITY_COLOURS
    from feed.fhir import PRIORITY

    for name, table in (("chart colours", SEVERITY_COLOURS), ("CLI styles", SEVERITY_STYLE),
                        ("FHIR priorities", PRIORITY)):
        assert set(table) == set(SEVERITIES), name
    # FHIR priorities rise with severity: PL < PM < PH
    assert [PRIORITY[s][0] for s in SEVERITIES] == ["PL", "PM", "PH"]
    css = (TEMPLATES / "base.html").read_text()
    for sev in SEVERITIES:
        assert f".counts .{sev} " in css, sev  # the page's counts line is coloured per severity
    # every severity-coloured card or badge names a severity of the vocabulary
    assert set(re.findall(r"\.(?:alert|badge)\.(\w+)", css)) - {"inhibited"} <= set(SEVERITIES)


def test_the_statuses_and_the_choices_offered_come_from_the_lifecycle() -> None:
    import storage.models
    from feed.routes import alerts as routes

    assert set(OPEN_STATUSES) < set(ALERT_STATUSES) and "resolved" not in OPEN_STATUSES
    assert storage.models.OPEN_STATUSES is OPEN_STATUSES and storage.models.ALERT_STATUSES is ALERT_STATUSES
    assert {m.value for m in routes.StatusFilter} == {"open", *ALERT_STATUSES}
    assert [m.value for m in routes.Severity] == list(SEVERITIES)
    css = (TEMPLATES / "base.html").read_text()
    assert set(re.findall(r"\.status\.(\w+)", css)) <= set(ALERT_STATUSES)


def test_the_chart_reads_the_drug_classes_of_the_event_vocabulary() -> None:
    from feed.chart_plot import THERAPY_ROWS

    rows = {label: drugs for label, drugs, _ in THERAPY_ROWS}
    assert rows["CNI"] == CALCINEURIN_INHIBITORS
    assert all(drugs <= set(DRUGS) for drugs in rows.values())
    assert ANTI_CD20 <= set(DRUGS) and CALCINEURIN_INHIBITORS <= set(DRUGS)
    # every immunosuppressive drug of the vocabulary has a row (anti-CD20 agents: the course row)
    drawn = ANTI_CD20.union(*rows.values())
    not_drawn = {"ace_inhibitor", "arb", "anticoagulant", "antiplatelet"}
    assert set(DRUGS) - not_drawn <= drawn, set(DRUGS) - not_drawn - drawn
