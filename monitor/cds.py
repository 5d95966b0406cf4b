"""CDS Hooks 2.0 documents built from the monitor's alerts: the discovery document and the cards.

Pure: no I/O, no clock. tasks/cds.py loads the alerts (and the timeline for an order) and calls these;
feed/cds_hooks.py only receives the request and returns what comes back.

- One card per open alert that is not inhibited, most severe first. An inhibited alert is named in the
  detail of the card of the alert that mutes it (monitor/inhibitions.py): it is redundant, not hidden.
- A card's `uuid` carries the alert's id (card_uuid / alert_id_of_card), so the EHR's feedback on a
  card finds its alert without a table of the cards handed out.
- summary < 140 characters (the specification's limit), indicator = the alert's severity, detail =
  markdown with the message and the evidence values at the precision a laboratory reports
  (monitor.display), source = the monitor and the first guideline of the alert's reference that has a
  public link.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from monitor import display
from monitor.analytes import ANALYTES
from monitor.events import LabResult
from monitor.findings import SEVERITY_RANK
from monitor.interop.codemap import CodeMap
from monitor.rules import csa_renal_impairment

PATIENT_VIEW = "imn-monitor-patient-view"
ORDER_SELECT = "imn-monitor-order-select"
SOURCE_LABEL = "imn-monitor"
# the specification: "one-sentence, <140-character summary message"
SUMMARY_MAX_CHARS = 139
ELLIPSIS = "\u2026"

# prefetch templates (CDS Hooks 2.0, "Prefetch template"): the EHR may send them; nothing needs them
# (the monitor reads its own data), but the Patient's identifiers map the EHR's patient to the
# monitor's when an MRN system is configured (tasks/ehr_identity.py)
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&category=laboratory&_sort=-date&_count=50",
}

# a short name per rule for card summaries (a test checks every registered rule has one)
RULE_TITLES: Mapping[str, str] = {
    "relapse": "Relapse: proteinuria back in the nephrotic range",
    "immunological_relapse": "Immunological relapse: anti-PLA2R positive again",
    "titer_rising": "Anti-PLA2R titer rising",
    "rtx_non_response": "No response 6 months after anti-CD20",
    "rtx_b_cell_not_depleted": "B cells not depleted after anti-CD20",
    "csa_trough_low": "Cyclosporine trough low",
    "cni_trough_high": "Calcineurin-inhibitor trough high",
    "tac_trough_low": "Tacrolimus trough low",
    "albumin_low_thrombosis": "Low albumin: thrombosis risk",
    "egfr_decline": "eGFR declining",
    "ctx_cumulative_dose": "Cumulative cyclophosphamide dose",
    "monitoring_overdue": "Monitoring overdue",
    "cytopenia": "Low white-cell or neutrophil count",
    "course_non_response": "No response to the immunosuppressive course",
    "rtx_redose_due": "Anti-CD20 redosing may be due",
    "csa_renal_impairment": "Cyclosporine with impaired kidney function",
    "titer_falling_supportive": "Anti-PLA2R falling on supportive care",
}

# guidelines the rules cite, by the words their references use -> a stable public link; the first one
# a reference names (in the order of the reference's text) is the card's source
GUIDELINE_LINKS: Sequence[tuple[str, str, str]] = (
    ("KDIGO 2021", "KDIGO 2021 Glomerular Diseases guideline", "https://doi.org/10.1016/j.kint.2021.05.021"),
    ("KDIGO 2012 CKD", "KDIGO 2012 CKD guideline", "https://kdigo.org/guidelines/ckd-evaluation-and-management/"),
    ("KDIGO 2012 GN", "KDIGO 2012 Glomerulonephritis guideline", "https://kdigo.org/guidelines/"),
    ("MENTOR", "MENTOR trial (Fervenza, NEJM 2019)", "https://doi.org/10.1056/NEJMoa1814427"),
    ("Fervenza FC et al. NEJM 2019", "MENTOR trial (Fervenza, NEJM 2019)", "https://doi.org/10.1056/NEJMoa1814427"),
    ("CTCAE", "NCI CTCAE v5.0",
     "https://ctep.cancer.gov/protocolDevelopment/electronic_applications/ctc.htm"),
)

INDICATORS = {"critical": "critical", "warning": "warning", "info": "info"}

# override reasons offered with every card (CDS Hooks 2.0 overrideReasons); the chosen one becomes the
# comment of the alert's acknowledgement
OVERRIDE_SYSTEM = "https://imn-monitor.invalid/cds/override-reason"
OVERRIDE_REASONS: Sequence[Mapping[str, str]] = (
    {"system": OVERRIDE_SYSTEM, "code": "already-addressed", "display": "Already addressed"},
    {"system": OVERRIDE_SYSTEM, "code": "clinically-appropriate", "display": "Clinically appropriate as is"},
    {"system": OVERRIDE_SYSTEM, "code": "will-review-later", "display": "Will review later"},
)

# card uuids: an RFC 9562 version-8 UUID whose top 48 bits say "imn-monitor alert" and whose low 62
# bits are the alert id (ids stay below 2**53)
_ALERT_TAG = 0x1A4E_0A1E_47C5
_ID_BITS = 62


def card_uuid(alert_id: int) -> str:
    if not 0 < alert_id < 2**53:
        raise ValueError(f"alert id {alert_id} out of range")
    value = (_ALERT_TAG << 80) | (0x8 << 76) | (0b10 << 62) | alert_id
    return str(uuid.UUID(int=value))


def alert_id_of_card(card: str) -> int | None:
    """The alert id a card uuid of card_uuid carries; None for any other uuid (an order card, junk)."""
    try:
        value = uuid.UUID(card).int
    except (ValueError, AttributeError, TypeError):
        return None
    if value >> 80 != _ALERT_TAG or (value >> 76) & 0xF != 0x8 or (value >> 62) & 0b11 != 0b10:
        return None
    alert_id = value & ((1 << _ID_BITS) - 1)
    return alert_id if 0 < alert_id < 2**53 else None


@dataclass(frozen=True)
class PatientLink:
    """Where the card's link opens the patient: an absolute URL of the page, or the SMART launch URL
    (type "smart": the EHR launches it with iss and launch)."""

    url: str
    type: str  # absolute | smart
    label: str = "Open in imn-monitor"

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "url": self.url, "type": self.type}


def discovery() -> dict[str, Any]:
    """The GET /cds-services document."""
    return {"services": [
        {"hook": "patient-view", "id": PATIENT_VIEW, "title": "imn-monitor: open alerts",
         "description": ("Open alerts of imn-monitor (membranous nephropathy monitoring) for the patient whose "
                         "chart is opened, with their evidence and sources."),
         "prefetch": dict(PREFETCH)},
        {"hook": "order-select", "id": ORDER_SELECT, "title": "imn-monitor: cyclosporine and kidney function",
         "description": (f"Warns when cyclosporine is ordered for a patient whose latest eGFR in the "
                         f"{csa_renal_impairment.LOOKBACK_DAYS} days up to the planned start is below "
                         f"{csa_renal_impairment.EGFR_IMPAIRED_BELOW:g} mL/min/1.73 m2 "
                         f"(rule {csa_renal_impairment.RULE_ID})."),
         "prefetch": dict(PREFETCH)},
    ]}


# ----------------------------------------------------------------------------------- text helpers


def _truncate(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + ELLIPSIS


def _first_sentence(message: str) -> str:
    for i, ch in enumerate(message):
        # ". " ends a sentence; "2.5 g" and "e.g. " do not (a digit or lower-case word follows)
        if ch == "." and message[i + 1:i + 2] == " " and message[i + 2:i + 3][:1].isupper():
            return message[: i + 1]
    return message


def _latest_lab(evidence: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    labs = [e for e in evidence if e.get("analyte") is not None and e.get("value") is not None]
    # the latest result; of results of one day, the first the rule listed
    return max(reversed(labs), key=lambda e: str(e.get("effective_at") or ""), default=None)


def summary(rule: str, message: str, evidence: Iterable[Mapping[str, Any]] = ()) -> str:
    """The message's first sentence when it fits (the rule's own words, with its values); else the
    rule's title with the latest result of the evidence; else the title alone."""
    first = " ".join(_first_sentence(message).split())
    if first and len(first) <= SUMMARY_MAX_CHARS:
        return first
    title = RULE_TITLES.get(rule, rule)
    latest = _latest_lab(evidence)
    if latest is not None:
        value = f"{display.evidence_number(latest)} {display.evidence_unit(latest)}".strip()
        with_value = f"{title} ({_evidence_name(latest)} {value}, {str(latest.get('effective_at'))[:10]})"
        if len(with_value) <= SUMMARY_MAX_CHARS:
            return with_value
    return _truncate(title)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|"})


def _esc(text: Any) -> str:
    """Text shown as it is in markdown: its punctuation escaped ("> 3.5 g/d" is no quote, "a_b" no
    emphasis; CommonMark lets any ASCII punctuation be escaped)."""
    return str(text).translate(_MD_SPECIAL)


def _md(text: Any) -> str:
    """A table cell: escaped, on one line (a line break would end the table)."""
    return _esc(" ".join(str(text).split()))


def _evidence_name(e: Mapping[str, Any]) -> str:
    if e.get("analyte") is not None:
        spec = ANALYTES.get(str(e["analyte"]))
        return spec.label if spec is not None else str(e["analyte"])
    if e.get("medication") is not None:
        return str(e["medication"])
    return str(e.get("derived") or "").replace("_", " ")


def evidence_table(evidence: Iterable[Mapping[str, Any]]) -> str:
    rows = ["| Evidence | Value | Date | Note |", "|---|---|---|---|"]
    for e in evidence:
        value = f"{display.evidence_number(e)} {display.evidence_unit(e)}".strip()
        rows.append(f"| {_md(_evidence_name(e))} | {_md(value)} | {_md(str(e.get('effective_at') or '')[:10])} "
                    f"| {_md(e.get('note') or '')} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def guideline_source(reference: str) -> dict[str, str]:
    """The card's source: the monitor, and the first guideline of the reference with a public link."""
    found: list[tuple[int, str, str]] = []
    for words, label, url in GUIDELINE_LINKS:
        at = reference.find(words)
        if at >= 0:
            found.append((at, label, url))
    if not found:
        return {"label": SOURCE_LABEL}
    _, label, url = min(found)
    return {"label": f"{SOURCE_LABEL} \u00b7 {label}", "url": url}


def _detail(alert: Mapping[str, Any], muted: Sequence[Mapping[str, Any]]) -> str:
    parts = [_esc(alert.get("message") or "")]
    table = evidence_table(alert.get("evidence") or ())
    if table:
        parts.append(table)
    if alert.get("reference"):
        parts.append(f"**Source:** {_esc(alert['reference'])}")
    if muted:
        lines = [f"- {_esc(RULE_TITLES.get(m['rule'], m['rule']))} (alert {m['id']}, {_esc(m['severity'])}): "
                 f"{_esc(_first_sentence(str(m.get('message') or '')))}" for m in muted]
        parts.append("**Also open, muted by this alert** (redundant while it is open):\n" + "\n".join(lines))
    status = alert.get("status")
    if status == "acknowledged" and alert.get("acknowledged_by"):
        parts.append(f"_Acknowledged by {_esc(alert['acknowledged_by'])}._")
    elif status == "snoozed" and alert.get("snoozed_until"):
        parts.append(f"_Snoozed until {_esc(alert['snoozed_until'])}._")
    return "\n\n".join(parts)


def alert_card(alert: Mapping[str, Any], link: PatientLink,
               muted: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """One alert (as storage.serialize.alert_as_dict shows it) as a card."""
    return {
        "uuid": card_uuid(int(alert["id"])),
        "summary": summary(str(alert["rule"]), str(alert.get("message") or ""), alert.get("evidence") or ()),
        "indicator": INDICATORS.get(str(alert.get("severity")), "info"),
        "detail": _detail(alert, muted),
        "source": guideline_source(str(alert.get("reference") or "")),
        "overrideReasons": [dict(r) for r in OVERRIDE_REASONS],
        "links": [link.as_dict()],
    }


def alert_cards(alerts: Iterable[Mapping[str, Any]], link: PatientLink) -> list[dict[str, Any]]:
    """Cards of a patient's open alerts: inhibited ones go into their inhibitor's detail, not a card of
    their own (an inhibitor that is not among the open alerts given leaves the alert its own card)."""
    open_alerts = [a for a in alerts if a.get("status") != "resolved" and a.get("id") is not None]
    by_id = {int(a["id"]): a for a in open_alerts}
    muted: dict[int, list[Mapping[str, Any]]] = {}
    shown = []
    for a in open_alerts:
        by = (a.get("inhibited_by") or {}).get("id")
        if by is not None and int(by) in by_id:
            muted.setdefault(int(by), []).append(a)
        else:
            shown.append(a)
    shown.sort(key=lambda a: (-SEVERITY_RANK.get(str(a.get("severity")), 0), str(a.get("raised_at") or ""),
                              int(a["id"])))
    return [alert_card(a, link, muted.get(int(a["id"]), ())) for a in shown]


# ------------------------------------------------------------------------------------ order-select


@dataclass(frozen=True)
class DraftOrder:
    """A draft medication order of the EHR, as far as the monitor reads it."""

    reference: str  # "MedicationRequest/<id>": what the card is about
    drug: str  # a monitor drug key (monitor.events.DRUGS)
    start: date  # the planned start (boundsPeriod.start, else authoredOn, else the hook's day)


def renal_impairment_card(order: DraftOrder, egfr: Sequence[LabResult], link: PatientLink) -> dict[str, Any] | None:
    """A warning card when the order is cyclosporine and csa_renal_impairment's own check
    (renal_impairment_at) finds the latest eGFR of the 90 days up to the planned start below 60."""
    if order.drug != csa_renal_impairment.DRUG:
        return None
    latest = csa_renal_impairment.renal_impairment_at(egfr, order.start)
    if latest is None:
        return None
    limit = csa_renal_impairment.EGFR_IMPAIRED_BELOW
    value = display.lab_text(latest, (limit,))
    on = latest.effective_date.isoformat()
    detail = "\n\n".join([
        (f"The latest eGFR in the {csa_renal_impairment.LOOKBACK_DAYS} days up to the planned start "
         f"({order.start.isoformat()}) is **{_md(value)}** on {on}, below {limit:g} (CKD category G3a or worse). "
         "Cyclosporine's nephrotoxicity weighs more with impaired kidney function; the seed review advises "
         "avoiding it in membranous nephropathy then, and names 6 months of alternating glucocorticoid and an "
         "alkylating agent as the alternative."),
        f"**Source:** {_esc(csa_renal_impairment.REFERENCE)}",
        f"_Rule {_esc(csa_renal_impairment.RULE_ID)} of imn-monitor, applied to the draft order {_esc(order.reference)}._",
    ])
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"imn-monitor:order:{order.reference}:{order.start}:{on}")),
        "summary": _truncate(f"Cyclosporine ordered with eGFR {value} on {on} (below {limit:g})"),
        "indicator": "warning",
        "detail": detail,
        "source": guideline_source(csa_renal_impairment.REFERENCE),
        "overrideReasons": [dict(r) for r in OVERRIDE_REASONS],
        "links": [link.as_dict()],
    }


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object, or {} for anything else (a hook never fails on a part it cannot read)."""
    return value if isinstance(value, dict) else {}


def _day_of(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _planned_start(req: Mapping[str, Any]) -> date | None:
    for dosage in req.get("dosageInstruction") or []:
        bounds = _obj(_obj(_obj(_obj(dosage).get("timing")).get("repeat")).get("boundsPeriod"))
        start = _day_of(bounds.get("start"))
        if start is not None:
            return start
    return _day_of(req.get("authoredOn"))


def _medication_names(req: Mapping[str, Any], bundle_meds: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    concept = _obj(req.get("medicationCodeableConcept"))
    if not concept:
        target = str(_obj(req.get("medicationReference")).get("reference") or "")
        # "#id": a Medication contained in this order; "Medication/id": one in the Bundle
        own = {f"#{c['id']}": c for c in req.get("contained") or []
               if isinstance(c, dict) and c.get("resourceType") == "Medication" and c.get("id")}
        concept = _obj(_obj(own.get(target) or bundle_meds.get(target)).get("code"))
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    codes = [str(c.get("code")) for c in codings if c.get("code")]
    texts = [str(t) for t in (concept.get("text"), *(c.get("display") for c in codings)) if t]
    return codes, texts


def draft_orders(draft_orders: Any, selections: Any, code_map: CodeMap, today: date) -> list[DraftOrder]:
    """The selected MedicationRequests of an order-select hook's draftOrders Bundle whose drug is one of
    the monitor's (RxNorm or local codes through the code map, names through the drug aliases); no
    selections = every order. Anything unreadable is skipped: a hook never fails on an order it
    cannot read. The planned start: the first dosage's boundsPeriod.start, else authoredOn, else today."""
    resources = [_obj(e).get("resource") for e in _obj(draft_orders).get("entry") or []]
    found = [r for r in resources if isinstance(r, dict)]
    bundle_meds = {f"Medication/{r['id']}": r for r in found if r.get("resourceType") == "Medication" and r.get("id")}
    chosen = {s for s in selections or [] if isinstance(s, str)}
    out = []
    for res in found:
        if res.get("resourceType") != "MedicationRequest":
            continue
        ref = f"MedicationRequest/{res.get('id')}"
        if chosen and ref not in chosen:
            continue
        codes, texts = _medication_names(res, bundle_meds)
        drug = code_map.resolve_drug(codes, texts)
        if drug is None:
            continue
        out.append(DraftOrder(ref, drug, _planned_start(res) or today))
    return out
