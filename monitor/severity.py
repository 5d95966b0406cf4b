"""The severity vocabulary: the one place that names the severities and orders them.

A rule's finding is `info`, `warning` or `critical` (docs/clinical-rules.md gives each rule's). Every
other place that lists, ranks or sorts severities reads this module: the lifecycle (an escalation is a
higher rank), inhibition (a source mutes only a target no more severe), the read side's SQL ordering
(storage/views.py, feed/queries.py build their CASE from SEVERITY_RANK), the web page's sort and
counts, the chart's colours and the CLI's styles (tests/unit/test_vocabulary.py pins them to it).
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["info", "warning", "critical"]
# least to most severe: the order is the meaning (a rank is the position here)
SEVERITIES: tuple[Severity, ...] = Severity.__args__  # type: ignore[attr-defined]
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
# the order in which a clinician reads them: critical first
MOST_SEVERE_FIRST: tuple[Severity, ...] = tuple(reversed(SEVERITIES))
UNKNOWN_RANK = -1  # a value outside the vocabulary (never written by the engine) sorts below info


def rank(severity: str | None) -> int:
    """The severity's rank (higher is more severe); UNKNOWN_RANK for None or anything unknown."""
    return SEVERITY_RANK.get(severity, UNKNOWN_RANK) if severity is not None else UNKNOWN_RANK


def most_severe_first(severity: str | None) -> int:
    """A sort key putting critical first and unknown values last (`sorted(xs, key=...)`)."""
    return -rank(severity)
