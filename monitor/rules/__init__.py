"""One module per alert rule; ids are part of the contract (design.md, "Alert rules")."""

from monitor.rules import (
    albumin_low_thrombosis,
    cni_trough_high,
    csa_trough_low,
    ctx_cumulative_dose,
    egfr_decline,
    immunological_relapse,
    monitoring_overdue,
    relapse,
    rtx_b_cell_not_depleted,
    rtx_non_response,
    tac_trough_low,
    titer_rising,
)

RULES = (
    relapse, immunological_relapse, titer_rising, rtx_non_response, rtx_b_cell_not_depleted,
    csa_trough_low, cni_trough_high, tac_trough_low, albumin_low_thrombosis, egfr_decline,
    ctx_cumulative_dose, monitoring_overdue,
)
RULE_IDS: tuple[str, ...] = tuple(r.RULE_ID for r in RULES)
