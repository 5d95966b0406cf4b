"""monitor.display: values shown to people at the precision a laboratory reports, and never on the
other side of a threshold than the value itself (docs/clinical-rules.md, "Display precision")."""

from __future__ import annotations

import pytest

from monitor.analytes import ANALYTES
from monitor.display import (
    decision_limits,
    evidence_number,
    evidence_unit,
    lab_text,
    latest_text,
    number,
    value_text,
)
from tests.unit.rules.builders import PID, assess_on, day, findings_of, lab, med


@pytest.mark.parametrize(("value", "decimals", "limits", "text"), [
    (80.4622, 0, (), "80"),
    (1.24644, 2, (), "1.25"),
    (5.76103, 2, (), "5.76"),
    (3.0, 2, (), "3"),  # trailing zeros dropped
    (0.0, 1, (), "0"),
    (99.95, 0, (100,), "99.95"),  # not "100" beside "below 100"
    (99.4, 0, (100,), "99"),
    (100.0, 0, (100,), "100"),  # exactly on the limit: shown as it is
    (100.04, 0, (100,), "100.04"),  # not "100": it is above
    (24.96, 0, (20, 25), "24.96"),
    (19.96, 0, (20, 25), "19.96"),
    (3.504, 2, (3.5,), "3.504"),
    (59.6, 0, (60,), "59.6"),
    (60.4, 0, (60,), "60.4"),
    (0.29996, 2, (0.3,), "0.29996"),
])
def test_number(value: float, decimals: int, limits: tuple[float, ...], text: str) -> None:
    assert number(value, decimals, limits) == text


def test_precision_lives_in_the_catalogue() -> None:
    decimals = {k: a.decimals for k, a in ANALYTES.items()}
    assert decimals["serum_creatinine"] == 0 and decimals["upcr"] == 2 and decimals["proteinuria_24h"] == 2
    assert decimals["csa_trough"] == 0 and decimals["tac_trough"] == 1 and decimals["egfr"] == 0
    assert value_text(80.4622, "serum_creatinine") == "80"
    assert value_text(1.24644, "upcr") == "1.25"


def test_every_decision_limit_of_an_analyte_is_kept_whatever_the_context() -> None:
    # the rules declare theirs (DISPLAY_LIMITS); remission, risk and trends are registered here
    assert {100.0, 190.0} <= decision_limits("csa_trough")
    assert {20.0, 25.0, 30.0, 35.0} <= decision_limits("serum_albumin")
    assert {2.0, 14.0, 20.0, 50.0, 150.0} <= decision_limits("anti_pla2r")
    assert {0.3, 3.5, 8.0} <= decision_limits("upcr")
    assert 60.0 in decision_limits("egfr") and 60.0 in decision_limits("egfr_mdrd")
    assert 25.0 in decision_limits("proteinuria_reduction")
    assert value_text(99.95, "csa_trough") == "99.95" and value_text(24.96, "serum_albumin") == "24.96"


def test_lab_text_shows_the_reported_value_beside_a_converted_one() -> None:
    r = lab(PID, "serum_creatinine", 0.91, "mg/dL", 0)
    assert lab_text(r) == "80 \u00b5mol/L (0.91 mg/dL)"
    assert lab_text(lab(PID, "anti_pla2r", 2, "RU/mL", 0, comparator="<")) == "<2 RU/mL"


# ------------------------------------------------------------------ through the rules' messages


def _csa(trough: float) -> list[object]:
    return [med(PID, "cyclosporine", 0, 100, "mg", frequency="bid"), lab(PID, "csa_trough", trough, "ng/mL", 30)]


def test_a_csa_trough_of_99_95_never_reads_100_in_a_below_100_alert() -> None:
    [f] = findings_of("csa_trough_low", _csa(99.95), day(31))
    assert "trough 99.95 ng/mL on" in f.message and "100 ng/mL on" not in f.message
    [f] = findings_of("csa_trough_low", _csa(98.4), day(31))
    assert "trough 98 ng/mL on" in f.message  # the lab's precision away from the threshold


@pytest.mark.parametrize(("albumin", "shown", "severity"), [
    (24.96, "24.96 g/L", "warning"), (19.96, "19.96 g/L", "critical"), (22.4, "22 g/L", "warning"),
])
def test_albumin_is_never_shown_on_the_other_side_of_20_or_25(albumin: float, shown: str, severity: str) -> None:
    [f] = findings_of("albumin_low_thrombosis", [lab(PID, "serum_albumin", albumin, "g/L", 10)], day(10))
    assert f.severity == severity and f"Serum albumin {shown} on" in f.message


def test_a_cd19_count_just_above_5_is_not_shown_as_5() -> None:
    events = [med(PID, "rituximab", 0, 1000, "mg"), lab(PID, "cd19_count", 5.04, "cells/uL", 21)]
    [f] = findings_of("rtx_b_cell_not_depleted", events, day(21))
    assert "CD19 5.04 cells/\u00b5L" in f.message


def test_a_relative_threshold_is_kept_too() -> None:
    # 67.5 is exactly 25% below 90: shown as 67.5, not 68 (which would be a 24% fall)
    events = [lab(PID, "proteinuria_24h", 2.0, "g/d", 390), lab(PID, "serum_albumin", 40, "g/L", 390),
              lab(PID, "egfr", 90, "mL/min/1.73m2", 300), lab(PID, "egfr", 67.5, "mL/min/1.73m2", 390)]
    reasons = " ".join(assess_on(events, day(390)).risk.reasons)
    assert "to 67.5 mL/min/1.73 m\u00b2" in reasons


def test_a_reduction_just_under_25_percent_reads_below_25() -> None:
    # 8 -> 6.032 g/d: a 24.6% reduction is a treatment failure, and must not read "reduced by 25%"
    events = [lab(PID, "proteinuria_24h", 8.0, "g/d", -10), med(PID, "rituximab", 0, 1000, "mg"),
              lab(PID, "proteinuria_24h", 6.032, "g/d", 120)]
    [f] = findings_of("rtx_non_response", events, day(183))
    assert "reduced by 24.6%" in f.message


# ------------------------------------------------------------------ stored dicts (page, CLI)


@pytest.mark.parametrize(("item", "number_text", "unit_text"), [
    ({"analyte": "serum_creatinine", "value": 80.4622, "unit": "umol/L"}, "80", "\u00b5mol/L"),
    ({"analyte": "csa_trough", "value": 99.95, "unit": "ng/mL", "reported": "83.11 nmol/L"}, "99.95",
     "ng/mL (83.11 nmol/L)"),
    ({"analyte": "upcr", "value": 3.72, "unit": "g/d", "reported": "372 mg/mmol"}, "3.72",
     "g/d (\u2248, from 372 mg/mmol)"),
    ({"derived": "proteinuria_reduction", "value": 12.023, "unit": "%"}, "12", "%"),
    ({"derived": "proteinuria_reduction", "value": 24.6, "unit": "%"}, "24.6", "%"),
    ({"derived": "egfr_baseline", "value": 80.25, "unit": "mL/min/1.73m2"}, "80", "mL/min/1.73 m\u00b2"),
    ({"medication": "rituximab", "value": 375.0, "unit": "mg/m2"}, "375", "mg/m2"),
    ({"analyte": "anti_pla2r", "value": None, "unit": "RU/mL"}, "", "RU/mL"),
])
def test_evidence_cells(item: dict[str, object], number_text: str, unit_text: str) -> None:
    assert evidence_number(item) == number_text and evidence_unit(item) == unit_text


def test_latest_text() -> None:
    assert latest_text("serum_creatinine", {"value": 80.4622, "unit": "umol/L"}) == "80 \u00b5mol/L"
    assert latest_text("upcr", {"value": 1.24644, "unit": "g/g"}) == "1.25 g/g"
    assert latest_text("anti_pla2r", {"value": 2.0, "unit": "RU/mL", "comparator": "<"}) == "<2 RU/mL"


def test_another_spelling_of_the_same_unit_is_not_shown_as_a_conversion() -> None:
    r = lab(PID, "serum_creatinine", 101, "\u00b5mol/L", 0)  # stored as umol/L, the lab's spelling kept
    assert r.reported_unit == "\u00b5mol/L" and lab_text(r) == "101 \u00b5mol/L"
    assert evidence_unit({"analyte": "serum_creatinine", "value": 101.0, "unit": "umol/L",
                          "reported": "101 \u00b5mol/L"}) == "\u00b5mol/L"
    assert latest_text("serum_creatinine", {"value": 101.0, "unit": "umol/L", "reported_value": 101,
                                            "reported_unit": "\u00b5mol/L"}) == "101 \u00b5mol/L"
