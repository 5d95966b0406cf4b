"""Inhibition: an open alert that makes another alert of the same patient redundant mutes it.

As in Prometheus Alertmanager, an inhibition rule names source alerts and target alerts that must
share labels (here always the patient): while a source alert of the patient is open (firing,
acknowledged or snoozed), the patient's open target alerts are *inhibited*. An inhibited alert stays
visible (page, API, CLI: `inhibited_by`) and keeps its own lifecycle, but sends no notification; when
its last inhibitor closes it becomes active again and notifies once if it is still firing
(monitor/alerts.py applies this; docs/architecture.md, "Alert lifecycle").

Adding an inhibition means adding one row to INHIBITIONS below (with the reason a nephrologist would
accept and where it comes from) and a test in tests/unit/test_inhibitions.py.

Two guards hold for every row, whatever it says:
- a source never mutes a target that is more severe than itself at the time (an inhibition removes
  redundancy; it must never hide something more urgent than what stays visible);
- the table has no cycles (two alerts muting each other would both go silent): a unit test checks it.

Considered and deliberately *not* declared (so nobody adds them without new evidence):
- `albumin_low_thrombosis` critical over warning: the rule raises one alert per episode whose
  severity moves up and down with the latest albumin, so the two severities never coexist.
- `rtx_non_response` / `course_non_response` over `monitoring_overdue`: the overdue alert asks for the
  missing proteinuria or titer that the non-response judgement depends on; muting it would hide the
  request for the very data the decision needs.
- `egfr_decline` and `cni_trough_high`: the eGFR alert asks whether a calcineurin inhibitor is toxic
  and the trough alert says its level is high; together they make that case, neither repeats the other.
- `relapse` over `rtx_non_response`: different questions (a relapse after a remission vs a course that
  has not produced one); no source says one answers the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.severity import SEVERITY_RANK


@dataclass(frozen=True)
class Inhibition:
    """While an open alert of rule `source` exists for a patient, that patient's open alerts of the
    rules in `targets` are inhibited (muted, still shown)."""

    id: str
    source: str
    targets: frozenset[str]
    reason: str
    basis: str  # where the reason comes from


INHIBITIONS: tuple[Inhibition, ...] = (
    Inhibition(
        id="relapse_over_titer",
        source="relapse",
        targets=frozenset({"titer_rising", "immunological_relapse"}),
        reason=("A proteinuric relapse is the clinical event that a rising or reappearing anti-PLA2R titer "
                "announces months ahead; once the relapse alert is open, the titer alerts ask for nothing "
                "it does not (a positive titer near the relapse already makes it critical)."),
        basis="KDIGO 2021 ch.3 (titer tracks activity and precedes proteinuria); seed review; "
              "docs/clinical-rules.md rows relapse, titer_rising, immunological_relapse",
    ),
    Inhibition(
        id="immunological_relapse_over_titer_rising",
        source="immunological_relapse",
        targets=frozenset({"titer_rising"}),
        reason=("Both alerts read the same latest anti-PLA2R >= 20 RU/mL; immunological_relapse is the more "
                "specific reading of it (the titer had become negative after treatment), so titer_rising "
                "would repeat the same result."),
        basis=("docs/clinical-rules.md rows immunological_relapse and titer_rising (definitions); "
               "KDIGO 2021 ch.3"),
    ),
    Inhibition(
        id="rtx_non_response_over_redose",
        source="rtx_non_response",
        targets=frozenset({"rtx_redose_due"}),
        reason=("Both judge the same anti-CD20 course at 6 months. When the course counts as not responding "
                "(titer still >= 14 RU/mL or proteinuria down < 25%), what to do next is the non-response "
                "alert's question; a reminder to repeat the course as MENTOR did for responders would "
                "answer it in advance, at a lower severity."),
        basis="MENTOR (Fervenza 2019: < 25% reduction at 6 months = failure; redosing of responders); "
              "KDIGO 2021 ch.3",
    ),
)

BY_ID: dict[str, Inhibition] = {i.id: i for i in INHIBITIONS}
# target rule -> the inhibitions that can mute it (one lookup per open alert during reconciliation)
_BY_TARGET: dict[str, tuple[Inhibition, ...]] = {}
for _i in INHIBITIONS:
    for _t in sorted(_i.targets):
        _BY_TARGET[_t] = (*_BY_TARGET.get(_t, ()), _i)


def rules_mentioned() -> set[str]:
    """Every rule id the table names (a test checks each is a registered rule)."""
    return {i.source for i in INHIBITIONS} | {t for i in INHIBITIONS for t in i.targets}


def between(source_rule: str, target_rule: str) -> Inhibition | None:
    """The inhibition by which an alert of `source_rule` mutes one of `target_rule`, if any."""
    for inhibition in _BY_TARGET.get(target_rule, ()):
        if inhibition.source == source_rule:
            return inhibition
    return None


def can_inhibit(source_rule: str, source_severity: str, target_rule: str, target_severity: str) -> bool:
    """The table says so, and the source is at least as severe as the target (module docstring)."""
    if between(source_rule, target_rule) is None:
        return False
    return SEVERITY_RANK.get(source_severity, 0) >= SEVERITY_RANK.get(target_severity, 0)


def may_be_inhibited(rule: str) -> bool:
    return rule in _BY_TARGET


def has_cycle(rows: Iterable[Inhibition] = INHIBITIONS) -> bool:
    """Whether some rule, following source -> target edges, reaches itself."""
    edges: dict[str, set[str]] = {}
    for i in rows:
        edges.setdefault(i.source, set()).update(i.targets)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    return any(reaches(rule, rule, {rule}) for rule in edges)
