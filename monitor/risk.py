"""KDIGO 2021 risk category (placeholder signature; implemented in its own change)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from monitor.rules.base import RuleContext

Category = Literal["unknown", "low", "moderate", "high", "very_high"]


@dataclass(frozen=True)
class RiskAssessment:
    category: Category
    reasons: tuple[str, ...] = ()
    very_high_activity: bool = False  # anti-PLA2R > 150 RU/mL, reported beside the category

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "reasons": list(self.reasons),
                "very_high_activity": self.very_high_activity}


def risk_category(ctx: "RuleContext") -> RiskAssessment:
    return RiskAssessment("unknown", ("not implemented yet",))
