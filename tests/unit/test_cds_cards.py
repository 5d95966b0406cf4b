"""CDS Hooks cards from alerts (monitor/cds.py): pure, no server."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import cds
from monitor.events import LabResult
from monitor.interop.codemap import CodeMap
from monitor.rules import RULE_IDS

LINK = cds.PatientLink("https://imn.example.org/ui/patients/P1", "absolute")


def alert(aid: int, rule: str = "relapse", severity: str = "critical", status: str = "firing",
          inhibited_by: int | None = None, message: str = "Something happened. More text.",
          evidence: list[dict[str, Any]] | None = None, reference: str = "KDIGO 2021 guideline ch.3") -> dict[str, Any]:
    return {"id": aid, "patient_id": "P1", "rule": rule, "severity": severity, "status": status,
            "message": message, "evidence": evidence or [], "reference": reference,
            "raised_at": f"2025-01-0{aid % 9 + 1}T00:00:00+00:00", "acknowledged_by": None, "snoozed_until": None,
            "inhibited_by": {"id": inhibited_by, "fingerprint": f"fp{inhibited_by}"} if inhibited_by else None}


def test_every_rule_has_a_title() -> None:
    assert set(RULE_IDS) <= set(cds.RULE_TITLES)
    assert all(len(t) < 60 for t in cds.RULE_TITLES.values())


@given(st.integers(min_value=1, max_value=2**53 - 1))
def test_card_uuid_round_trips(aid: int) -> None:
    card = cds.card_uuid(aid)
    assert cds.alert_id_of_card(card) == aid
    import uuid

    assert uuid.UUID(card).version == 8


@pytest.mark.parametrize("junk", ["", "nope", "00000000-0000-0000-0000-000000000000",
                                  "1a4e0a1e-47c5-4000-8000-000000000005", "6f1c1b5e-7b0a-4c55-9c57-2b8f8c1f6a10"])
def test_other_uuids_are_no_alert(junk: str) -> None:
    assert cds.alert_id_of_card(junk) is None


@given(st.text(min_size=0, max_size=600), st.sampled_from(RULE_IDS))
def test_summary_is_below_140_characters(message: str, rule: str) -> None:
    ev = [{"analyte": "egfr", "value": 45.0, "unit": "mL/min/1.73m2", "effective_at": "2025-01-01"}]
    text = cds.summary(rule, message, ev)
    assert 0 < len(text) < 140


def test_summary_prefers_the_first_sentence_then_title_and_latest_value() -> None:
    assert cds.summary("relapse", "Short sentence 2.5 g/d. Then more.") == "Short sentence 2.5 g/d."
    long = "A " + "very " * 40 + "long first sentence. Second."
    ev = [{"analyte": "proteinuria_24h", "value": 5.0, "unit": "g/d", "effective_at": "2025-08-01"},
          {"analyte": "proteinuria_24h", "value": 5.234, "unit": "g/d", "effective_at": "2025-08-10"}]
    assert cds.summary("relapse", long, ev) == ("Relapse: proteinuria back in the nephrotic range "
                                                "(24-hour urine protein 5.23 g/d, 2025-08-10)")
    assert cds.summary("relapse", long) == "Relapse: proteinuria back in the nephrotic range"


def test_inhibited_alerts_fold_into_their_inhibitor() -> None:
    cards = cds.alert_cards([alert(1), alert(2, "titer_rising", "warning", inhibited_by=1),
                             alert(3, "albumin_low_thrombosis", "warning"),
                             alert(4, "titer_rising", "warning", inhibited_by=99),  # inhibitor not open: shown
                             alert(5, status="resolved")], LINK)
    assert [cds.alert_id_of_card(c["uuid"]) for c in cards] == [1, 3, 4]
    assert "alert 2" in cards[0]["detail"] and "muted by this alert" in cards[0]["detail"]
    assert "muted" not in cards[1]["detail"]
    assert [c["indicator"] for c in cards] == ["critical", "warning", "warning"]
    assert all(c["links"] == [LINK.as_dict()] for c in cards)


def test_evidence_table_at_lab_precision_and_escaped() -> None:
    ev = [{"analyte": "egfr", "value": 59.96, "unit": "mL/min/1.73m2", "effective_at": "2025-01-01",
           "note": "a|b *c* d_e"},
          {"medication": "cyclosporine", "value": 100, "unit": "mg", "effective_at": "2025-01-02"}]
    table = cds.evidence_table(ev)
    # eGFR is reported in whole numbers, but 59.96 must not be shown as 60 (the rule's limit)
    assert "| 59.96 mL/min/1.73 m\u00b2 |" in table
    assert "a\\|b \\*c\\* d\\_e" in table
    assert "| cyclosporine | 100 mg | 2025-01-02 |" in table
    assert table.count("\n") == 3


def test_guideline_source_is_the_first_linked_guideline_of_the_reference() -> None:
    src = cds.guideline_source("2023 review section 2; KDIGO 2012 CKD guideline; KDIGO 2021 ch.3")
    assert src == {"label": "imn-monitor \u00b7 KDIGO 2012 CKD guideline",
                   "url": "https://kdigo.org/guidelines/ckd-evaluation-and-management/"}
    assert cds.guideline_source("a local protocol") == {"label": "imn-monitor"}


def _order(oid: str, **kw: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": oid, "status": "draft", **kw}


def test_draft_orders_reads_selected_monitored_drugs() -> None:
    bundle = {"resourceType": "Bundle", "entry": [
        {"resource": _order("a", medicationCodeableConcept={"text": "Ciclosporin 25 mg capsule"},
                            authoredOn="2025-03-01",
                            dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {"start": "2025-03-05"}}}}])},
        {"resource": _order("b", medicationReference={"reference": "#m"}, authoredOn="2025-03-02",
                            contained=[{"resourceType": "Medication", "id": "m",
                                        "code": {"coding": [{"display": "Tacrolimus 1 MG"}]}}])},
        {"resource": _order("c", medicationCodeableConcept={"text": "paracetamol"})},
        {"resource": _order("d", medicationCodeableConcept={"text": "cyclosporine"})},
        {"resource": {"resourceType": "ServiceRequest", "id": "e"}},
        "junk",
    ]}
    sel = ["MedicationRequest/a", "MedicationRequest/b", "MedicationRequest/c"]
    orders = cds.draft_orders(bundle, sel, CodeMap.empty(), date(2025, 6, 1))
    assert orders == [cds.DraftOrder("MedicationRequest/a", "cyclosporine", date(2025, 3, 5)),
                      cds.DraftOrder("MedicationRequest/b", "tacrolimus", date(2025, 3, 2))]
    everything = cds.draft_orders(bundle, [], CodeMap.empty(), date(2025, 6, 1))
    assert everything[-1] == cds.DraftOrder("MedicationRequest/d", "cyclosporine", date(2025, 6, 1))
    assert cds.draft_orders(None, sel, CodeMap.empty(), date(2025, 6, 1)) == []


def test_contained_medications_belong_to_their_own_order() -> None:
    def contained(oid: str, name: str) -> dict[str, Any]:
        return {"resource": _order(oid, medicationReference={"reference": "#m"}, authoredOn="2025-03-02",
                                   contained=[{"resourceType": "Medication", "id": "m", "code": {"text": name}}])}

    bundle = {"resourceType": "Bundle", "entry": [contained("a", "tacrolimus"), contained("b", "cyclosporine"),
                                                  {"resource": _order("c", medicationReference={"reference": "Medication/x"})},
                                                  {"resource": {"resourceType": "Medication", "id": "x",
                                                                "code": {"coding": [{"display": "Rituximab 500 mg"}]}}}]}
    assert [(o.reference, o.drug) for o in cds.draft_orders(bundle, [], CodeMap.empty(), date(2025, 6, 1))] == [
        ("MedicationRequest/a", "tacrolimus"), ("MedicationRequest/b", "cyclosporine"),
        ("MedicationRequest/c", "rituximab")]


def _egfr(value: float, day: date) -> LabResult:
    return LabResult(patient_id="P1", analyte="egfr", value=value, unit="mL/min/1.73m2", effective_at=day)


def test_renal_impairment_card_only_for_cyclosporine_below_60() -> None:
    low = [_egfr(48.4, date(2025, 2, 20))]
    order = cds.DraftOrder("MedicationRequest/a", "cyclosporine", date(2025, 3, 1))
    card = cds.renal_impairment_card(order, low, LINK)
    assert card is not None and card["indicator"] == "warning"
    assert card["summary"] == "Cyclosporine ordered with eGFR 48 mL/min/1.73 m\u00b2 on 2025-02-20 (below 60)"
    assert cds.renal_impairment_card(cds.DraftOrder("x", "tacrolimus", date(2025, 3, 1)), low, LINK) is None
    assert cds.renal_impairment_card(order, [_egfr(61, date(2025, 2, 20))], LINK) is None
    assert cds.renal_impairment_card(order, [_egfr(40, date(2024, 10, 1))], LINK) is None  # > 90 days before


def test_alert_text_is_not_read_as_markdown() -> None:
    a = alert(1, message="> 3.5 g/d in rule csa_renal_impairment [see *notes*].", reference="ref <b>x</b>")
    detail = cds.alert_card(a, LINK)["detail"]
    assert detail.startswith("\\> 3.5 g/d in rule csa\\_renal\\_impairment \\[see \\*notes\\*\\].")
    assert "ref \\<b\\>x\\</b\\>" in detail
