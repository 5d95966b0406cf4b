"""Notification groups and subscription routing (monitor/notifications.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from monitor import notifications as n

AT = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def alert(rule: str, severity: str, pid: str = "P1") -> dict:
    return {"id": 1, "patient_id": pid, "rule": rule, "severity": severity}


def test_a_group_document_carries_every_change_of_the_pass() -> None:
    doc = n.group_document("P1", "reassessment", date(2025, 6, 1), AT,
                           [("fired", alert("relapse", "critical")), ("resolved", alert("csa_trough_low", "warning"))])
    assert doc == {"kind": "alert_group", "version": 1, "group": "patient:P1", "patient_id": "P1",
                   "cause": "reassessment", "as_of": "2025-06-01", "at": AT.isoformat(),
                   "changes": [{"change": "fired", "alert": alert("relapse", "critical")},
                               {"change": "resolved", "alert": alert("csa_trough_low", "warning")}]}
    with pytest.raises(ValueError, match="unknown cause"):
        n.group_document("P1", "whim", None, AT, [])


def test_the_dedupe_key_depends_on_the_changes_not_their_order() -> None:
    a = n.dedupe_key("P1", [(1, "fired", 1), (2, "resolved", 3)])
    assert a == n.dedupe_key("P1", [(2, "resolved", 3), (1, "fired", 1)])
    assert a != n.dedupe_key("P1", [(1, "fired", 1), (2, "resolved", 4)])
    assert a != n.dedupe_key("P2", [(1, "fired", 1), (2, "resolved", 3)]) and len(a) <= 200


def test_routing_keeps_the_matching_changes_only() -> None:
    doc = n.group_document("P1", "reassessment", None, AT,
                           [("fired", alert("relapse", "critical")), ("fired", alert("csa_trough_low", "warning"))])
    assert n.route({}, doc) == doc
    crit = n.route({"severities": ["critical"]}, doc)
    assert crit is not None and [c["alert"]["rule"] for c in crit["changes"]] == ["relapse"]
    assert crit["group"] == "patient:P1" and len(doc["changes"]) == 2  # the original is untouched
    assert n.route({"patients": ["P2"]}, doc) is None
    assert n.route({"rules": ["csa_trough_low"], "severities": ["critical"]}, doc) is None


def test_filters_are_checked_and_normalised() -> None:
    assert n.normalise_filters({"rules": ["b", "a", "a"], "patients": [], "severities": None}) == {"rules": ["a", "b"]}
    for bad, why in (({"colour": ["red"]}, "unknown filter"), ({"rules": "relapse"}, "list of strings"),
                     ({"severities": ["urgent"]}, "unknown severities")):
        with pytest.raises(n.FilterError, match=why):
            n.normalise_filters(bad)
