"""One module per alert rule (the contract: docs/architecture.md, "The rule contract"); RULES is the
registry assess() runs, in this order. Rule ids are part of the API contract: docs/clinical-rules.md
lists each with its thresholds and sources."""

from monitor.rules import (
    albumin_low_thrombosis,
    cni_trough_high,
    course_non_response,
    csa_renal_impairment,
    csa_trough_low,
    ctx_cumulative_dose,
    cytopenia,
    egfr_decline,
    immunological_relapse,
    monitoring_overdue,
    relapse,
    rtx_b_cell_not_depleted,
    rtx_non_response,
    rtx_redose_due,
    tac_trough_low,
    titer_falling_supportive,
    titer_rising,
)

RULES = (
    relapse, immunological_relapse, titer_rising, rtx_non_response, rtx_b_cell_not_depleted,
    csa_trough_low, cni_trough_high, tac_trough_low, albumin_low_thrombosis, egfr_decline,
    ctx_cumulative_dose, monitoring_overdue,
    # every therapy of the seed review (issue 11)
    cytopenia, course_non_response, rtx_redose_due, csa_renal_impairment, titer_falling_supportive,
)
RULE_IDS: tuple[str, ...] = tuple(r.RULE_ID for r in RULES)
