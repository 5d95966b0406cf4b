"""FHIR R4 (validated with fhir.resources.R4B) to events: Bundle, Observation, DiagnosticReport
(its contained Observations), Patient and MedicationAdministration / MedicationStatement /
MedicationRequest.

Each resource is validated on its own, so one invalid entry is quarantined with the validator's
message and the rest of the Bundle still lands. References are resolved within the payload
(fullUrl such as urn:uuid:..., Type/id, contained #id). JSON with duplicate keys is refused
(json_text); a dateTime without an offset is read in the context's zone, as in every format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from monitor.analytes import ANALYTES, RefusedCodeError, normalise_unit
from monitor.interop import json_text
from monitor.interop.base import (
    NOT_UTF8,
    Event,
    ParseResult,
    Rejected,
    coded_analyte,
    decode,
    has_unstorable,
    retraction_placeholder,
    to_event,
)
from monitor.interop.codemap import CodeMap
from monitor.interop.fhir_refs import Index, patient_id_of, resolve
from monitor.interop.hl7v2 import NOT_MONITORED
from monitor.interop.units import canonical_spelling
from monitor.validation import ValidationContext

BUNDLE_TYPES = frozenset(
    {
        "collection",
        "batch",
        "transaction",
        "searchset",
        "message",
        "history",
        "batch-response",
        "transaction-response",
        "document",
    }
)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# resources that give context (or are resolved by reference) but are no event of their own
CONTEXT_TYPES = frozenset(
    {
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Encounter",
        "Specimen",
        "ServiceRequest",
        "Location",
        "Device",
        "Provenance",
        "OperationOutcome",
        "MessageHeader",
        "Medication",
        "Composition",
        "Condition",
    }
)
OBSERVATION_STATUS = {
    "final": "final",
    "amended": "corrected",
    "corrected": "corrected",
    "entered-in-error": "entered-in-error",
    "preliminary": "preliminary",
    "registered": "preliminary",
}
# medication statuses every resource type shares: a record of a drug given/taken, or a retraction
_MEDICATION_RECORDED = {
    "completed": "final",
    "stopped": "final",
    "on-hold": "final",
    "unknown": "final",
    "entered-in-error": "entered-in-error",
}
MEDICATION_STATUS = {
    "MedicationAdministration": {"in-progress": "final", **_MEDICATION_RECORDED},
    "MedicationStatement": {"active": "final", **_MEDICATION_RECORDED},
    "MedicationRequest": {"active": "final", **_MEDICATION_RECORDED, "cancelled": "entered-in-error"},
}


@dataclass(frozen=True)
class _Payload:
    """What every resource of one payload is read with."""

    index: Index
    code_map: CodeMap
    context: ValidationContext | None


def parse_fhir(
    data: bytes | str, code_map: CodeMap | None = None, context: ValidationContext | None = None
) -> ParseResult:
    code_map = code_map or CodeMap.empty()
    result = ParseResult([], [], "fhir")
    text = decode(data)
    if has_unstorable(text):
        result.rejected.append(Rejected(None, "(payload)", "", f"FHIR JSON is {NOT_UTF8}", text))
        return result
    items = _items(text, result)
    index = Index.build([res for _, res, url in items], [url for _, res, url in items])
    payload = _Payload(index, code_map, context)
    for position, resource, _url in items:
        try:
            outcome = _resource(resource, position, payload)
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, RecursionError) as exc:
            outcome = [
                Rejected(position, "(resource)", "", f"resource could not be read: {exc}", _dump(resource))
            ]
        for item in outcome:
            (result.rejected if isinstance(item, Rejected) else result.events).append(item)  # type: ignore[arg-type]
    return result


def _items(text: str, result: ParseResult) -> list[tuple[int | None, dict[str, Any], str]]:
    """(position, resource, fullUrl) for a Bundle's entries, a single resource, or FHIR NDJSON lines."""
    try:
        doc = json_text.loads(text)
    except json_text.DuplicateKey as exc:
        if _looks_like_lines(text):
            return _ndjson_items(text, result)  # bulk data: only the line with the duplicate is refused
        result.rejected.append(Rejected(None, exc.key, "", str(exc), text))
        return []
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return _ndjson_items(text, result)
        result.rejected.append(
            Rejected(
                None,
                "(payload)",
                text[:80],
                f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                text,
            )
        )
        return []
    except (ValueError, RecursionError) as exc:
        result.rejected.append(Rejected(None, "(payload)", text[:80], f"invalid JSON: {exc}", text))
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        result.rejected.append(
            Rejected(None, "resourceType", "", "not a FHIR resource (a JSON object with resourceType)", text)
        )
        return []
    if doc["resourceType"] != "Bundle":
        return [(None, doc, "")]
    kind = doc.get("type")
    if not isinstance(kind, str) or kind not in BUNDLE_TYPES:
        result.rejected.append(
            Rejected(
                None,
                "Bundle.type",
                str(kind),
                f"unknown Bundle type (expected one of {', '.join(sorted(BUNDLE_TYPES))})",
                text,
            )
        )
        return []
    entries = doc.get("entry", [])
    if not isinstance(entries, list):
        result.rejected.append(Rejected(None, "Bundle.entry", "", "Bundle.entry must be a list", text))
        return []
    items: list[tuple[int | None, dict[str, Any], str]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            result.rejected.append(
                Rejected(i, f"entry[{i}]", _dump(entry)[:80], "entry is not an object", _dump(entry))
            )
            continue
        resource = entry.get("resource")
        method = (
            (entry.get("request") or {}).get("method") if isinstance(entry.get("request"), dict) else None
        )
        if method == "DELETE":
            result.rejected.append(
                Rejected(
                    i,
                    f"entry[{i}].request",
                    "DELETE",
                    "a DELETE entry names no result "
                    "to retract: send the resource with status entered-in-error",
                    _dump(entry),
                )
            )
            continue
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            if resource is None and isinstance(entry.get("response"), dict):
                continue  # a transaction-response entry without the resource: nothing to read
            result.rejected.append(
                Rejected(i, f"entry[{i}].resource", "", "entry has no FHIR resource", _dump(entry))
            )
            continue
        url = entry.get("fullUrl")
        items.append((i, resource, url if isinstance(url, str) else ""))
    return items


def _looks_like_lines(text: str) -> bool:
    lines = [ln.strip() for ln in text.strip().split("\n")]
    return len(lines) > 1 and all(ln.startswith("{") for ln in lines if ln)


def _ndjson_items(text: str, result: ParseResult) -> list[tuple[int | None, dict[str, Any], str]]:
    """FHIR bulk data: one resource per line (line numbers 1-based)."""
    items: list[tuple[int | None, dict[str, Any], str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            res = json_text.loads(line)
        except json_text.DuplicateKey as exc:
            result.rejected.append(Rejected(number, exc.key, "", str(exc), line))
            continue
        except (ValueError, RecursionError) as exc:
            result.rejected.append(Rejected(number, "(line)", line[:80], f"invalid JSON: {exc}", line))
            continue
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            result.rejected.append(Rejected(number, "resourceType", line[:80], "not a FHIR resource", line))
            continue
        items.append((number, res, ""))
    return items


def _dump(obj: Any) -> str:
    try:
        return json.dumps(obj, default=str)[:4096]
    except (ValueError, TypeError, RecursionError):
        return repr(obj)[:4096]


# FHIR dateTime elements this module reads. A value without an offset is invalid R4 (fhir.resources
# refuses it); senders do send it, and every other format reads such times in IMN_TIMEZONE, so
# FHIR does too: the offset of the context's zone at that local time is written in before validation.
_DATETIME_KEYS = frozenset({"effectiveDateTime", "effectiveInstant", "issued", "start", "end", "authoredOn"})
_NAIVE_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")


def _zoned(obj: Any, context: ValidationContext | None) -> Any:
    """`obj` with every naive dateTime under _DATETIME_KEYS given the context's zone (a copy where
    anything changed; the resource itself is kept as received for the quarantine's raw text).
    Without a context the zone is UTC, as for every format."""
    if isinstance(obj, list):
        items = [_zoned(v, context) for v in obj]
        return items if any(a is not b for a, b in zip(items, obj, strict=True)) else obj
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] | None = None
    for key, value in obj.items():
        if key in _DATETIME_KEYS and isinstance(value, str) and _NAIVE_DATETIME.fullmatch(value):
            try:
                zone = context.zone if context is not None else UTC
                new: Any = datetime.fromisoformat(value).replace(tzinfo=zone).isoformat()
            except ValueError:
                new = value  # an impossible date: the validator names it
        else:
            new = _zoned(value, context)
        if new is not value:
            out = out if out is not None else dict(obj)
            out[key] = new
    return out if out is not None else obj


def _validated(resource: dict[str, Any], position: int | None, context: ValidationContext | None) -> Any | Rejected:
    from fhir.resources.R4B import get_fhir_model_class

    kind = resource["resourceType"]
    try:
        model = get_fhir_model_class(kind)
    except (ValueError, KeyError, ImportError, AttributeError):
        return Rejected(
            position, "resourceType", kind, f"{kind!r} is not an R4 resource type", _dump(resource)
        )
    try:
        return model.model_validate(_zoned(resource, context))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0] if errors else {}
        loc = ".".join(str(p) for p in first.get("loc", ())) or kind
        shown = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or kind}: {e.get('msg')}" for e in errors[:5]
        )
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        value = first.get("input")
        return Rejected(
            position,
            loc,
            _dump(value)[:80] if value is not None else "",
            f"FHIR R4 validation failed: {shown}{more}",
            _dump(resource),
        )
    except (ValueError, TypeError, RecursionError) as exc:
        return Rejected(position, kind, "", f"FHIR R4 validation failed: {exc}", _dump(resource))


def _resource(resource: dict[str, Any], position: int | None, payload: _Payload) -> list[Event | Rejected]:
    kind = resource["resourceType"]
    handler = {
        "Observation": _observation,
        "DiagnosticReport": _report,
        "Patient": _patient,
        "MedicationAdministration": _medication,
        "MedicationStatement": _medication,
        "MedicationRequest": _medication,
    }.get(kind)
    if handler is None:
        if kind in CONTEXT_TYPES:
            return []
        return [
            Rejected(
                position,
                "resourceType",
                kind,
                f"resource type {kind!r} is not read by this monitor "
                "(Observation, DiagnosticReport, Patient, Medication* are)",
                _dump(resource),
            )
        ]
    # a DiagnosticReport's contained Observations are validated one by one (_report), so that one
    # bad result does not take the report's other results with it
    checked = {k: v for k, v in resource.items() if k != "contained"} if kind == "DiagnosticReport" else resource
    model = _validated(checked, position, payload.context)
    if isinstance(model, Rejected):
        return [replace(model, raw=_dump(resource))]
    out: list[Event | Rejected] = []
    # a contained Patient (referenced as "#id") is a demographic record of its own
    for contained in resource.get("contained") or []:
        if isinstance(contained, dict) and contained.get("resourceType") == "Patient" and kind != "Patient":
            out.extend(_patient(contained, position, payload, validate=True))
    out.extend(handler(model, position, payload, raw=resource))
    return out


def _patient(
    res: Any,
    position: int | None,
    payload: _Payload,
    validate: bool = False,
    raw: dict[str, Any] | None = None,
) -> list[Event | Rejected]:
    if validate:
        raw = res
        res = _validated(res, position, payload.context)
        if isinstance(res, Rejected):
            return [res]
    record: dict[str, Any] = {"type": "patient", "patient_id": patient_id_of(raw or {})}
    birth = res.birthDate
    if isinstance(birth, date):
        record["birth_date"] = birth
    if res.gender:
        record["sex"] = res.gender
    return [to_event(record, position, _dump(raw), payload.context)]


def _identity(res: Any) -> tuple[str | None, str | None]:
    """source/source_id: the first identifier (system, value), else meta.source and Type/id."""
    for ident in res.identifier or []:
        if ident.value:
            return (ident.system or None), ident.value
    if res.id:
        meta_source = res.meta.source if res.meta is not None else None
        return meta_source or "fhir", f"{res.get_resource_type()}/{res.id}"
    return None, None


def _subject(res: Any, attr: str, index: Index, container: dict[str, Any]) -> str | Rejected:
    ref = getattr(res, attr, None)
    if ref is None:
        return Rejected(None, attr, "", f"{attr} is missing: whose result is this?", "")
    found, why = resolve(ref, index, container)
    if found is None:
        return Rejected(None, f"{attr}.reference", ref.reference or "", why, "")
    return found


def _when(value: Any) -> datetime | date | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    return None  # partial dates ("2025", "2025-01") are too imprecise for a timeline


@dataclass(frozen=True)
class _InReport:
    """What a DiagnosticReport gives the Observations it contains: the container that their "#id"
    references resolve in, its subject and effective time for an Observation that states neither
    (as HL7 v2's PID and OBR-7 do for their OBX), and its identity to qualify their local ids."""

    container: dict[str, Any]
    subject: str | Rejected
    when: datetime | date | None
    source: str | None
    source_id: str | None


def _observation(
    obs: Any,
    position: int | None,
    payload: _Payload,
    raw: dict[str, Any],
    report: _InReport | None = None,
) -> list[Event | Rejected]:
    dump = _dump(raw)
    code_map = payload.code_map

    def reject(field: str, value: str, reason: str) -> list[Event | Rejected]:
        return [Rejected(position, field, value, reason, dump)]

    status = OBSERVATION_STATUS.get(obs.status)
    if status is None:
        return reject(
            "status",
            obs.status,
            "observation status means there is no result (only final, amended, "
            "corrected, preliminary, registered, entered-in-error are read)",
        )
    source, source_id = _identity(obs) if report is None else _contained_identity(obs, report)
    try:
        key = _analyte(obs, code_map, source)
    except RefusedCodeError as exc:  # e.g. CD19 % (8117-4): never read as the count
        codes = ", ".join(f"{c.system or '?'}|{c.code}" for c in (obs.code.coding or []))
        return reject("code", codes[:80], str(exc))
    if key is None:
        codes = ", ".join(f"{c.system or '?'}|{c.code}" for c in (obs.code.coding or [])) or (
            obs.code.text or ""
        )
        return reject(
            "code",
            codes[:80],
            f"{NOT_MONITORED}: {codes or 'no code'} is neither a catalogue LOINC code nor in the code map",
        )
    if report is not None and obs.subject is None:
        patient = report.subject  # the report says whose results it holds
    else:
        patient = _subject(obs, "subject", payload.index, report.container if report else raw)
    if isinstance(patient, Rejected):
        return reject(patient.field, patient.value, patient.reason)
    qty = obs.valueQuantity
    comparator = None
    if qty is None or qty.value is None:
        if status != "entered-in-error":
            why = (
                f"no value (dataAbsentReason: {_concept_text(obs.dataAbsentReason)})"
                if obs.dataAbsentReason
                else "no valueQuantity: only numeric results are read"
            )
            return reject("valueQuantity", "", why)
        value, unit = retraction_placeholder(key)  # a retraction needs no value
    else:
        value, comparator = float(Decimal(qty.value)), qty.comparator
        unit = _unit(qty, key, code_map, source)
        if not unit:
            return reject("valueQuantity.unit", "", "valueQuantity has no unit (unit or UCUM code)")
    when = (
        _when(obs.effectiveDateTime)
        or (_when(obs.effectivePeriod.start) if obs.effectivePeriod else None)
        or _when(obs.effectiveInstant)
        or (report.when if report is not None else None)
        or _when(obs.issued)
    )
    if when is None:
        return reject(
            "effectiveDateTime",
            str(obs.effectiveDateTime or ""),
            "no effective time precise to the day "
            "(effectiveDateTime, effectivePeriod.start, effectiveInstant or issued)",
        )
    record: dict[str, Any] = {
        "type": "lab",
        "patient_id": patient,
        "analyte": key,
        "value": value,
        "unit": unit,
        "comparator": comparator,
        "effective_at": when,
        "status": status,
        "source": _cut(source),
        "source_id": _cut(source_id),
        "recorded_at": obs.issued if isinstance(obs.issued, datetime) else None,
    }
    return [to_event(record, position, dump, payload.context)]


def _contained_identity(obs: Any, report: _InReport) -> tuple[str | None, str | None]:
    """A contained Observation's own identifier; else its local id qualified by the report's
    identity ("#o1" alone is only unique inside one report); else none (a content hash)."""
    for ident in obs.identifier or []:
        if ident.value:
            return (ident.system or None), ident.value
    if obs.id and report.source_id:
        return report.source, f"{report.source_id}#{obs.id}"
    return None, None


def _report(
    dr: Any, position: int | None, payload: _Payload, raw: dict[str, Any]
) -> list[Event | Rejected]:
    """A DiagnosticReport's results: its contained Observations are read here (once each, whether
    or not `result` lists them). A `result` reference to an Observation elsewhere in the payload is
    left to that entry, which is read on its own (so nothing is counted twice); a reference to one
    that is neither contained nor in the payload is quarantined: the report names a result that
    did not arrive."""
    dump = _dump(raw)
    source, source_id = _identity(dr)
    subject = (
        _subject(dr, "subject", payload.index, raw)
        if dr.subject is not None
        else Rejected(None, "subject", "", "neither the Observation nor its DiagnosticReport has a subject", "")
    )
    effective = _when(dr.effectiveDateTime) or (_when(dr.effectivePeriod.start) if dr.effectivePeriod else None)
    report = _InReport(raw, subject, effective, source, source_id)
    contained = [c for c in raw.get("contained") or [] if isinstance(c, dict)]
    local_ids = {c.get("id") for c in contained if c.get("resourceType") == "Observation"}
    out: list[Event | Rejected] = []
    for i, ref in enumerate(dr.result or []):
        target = ref.reference or ""
        if target.startswith("#") and target[1:] in local_ids:
            continue
        if not target.startswith("#") and _payload_observation(target, payload.index):
            continue
        where = "contained in the report" if target.startswith("#") else "an entry of this payload"
        out.append(Rejected(position, f"result[{i}].reference", target,
                            f"the report's result {target or '(empty reference)'!r} is not {where}: "
                            "that result was not read (send the Observation in the same Bundle or contained)",
                            dump))
    for k, res in enumerate(contained):
        if res.get("resourceType") != "Observation":
            continue  # a contained Patient is read by _resource; Specimen and the like give context
        model = _validated(res, position, payload.context)
        outcome = [model] if isinstance(model, Rejected) else _observation(model, position, payload, res, report)
        out.extend(replace(r, field=f"contained[{k}].{r.field}", raw=dump) if isinstance(r, Rejected) else r
                   for r in outcome)
    return out


def _payload_observation(target: str, index: Index) -> bool:
    res = index.by_url.get(target)
    if res is None and "/" in target and not target.startswith("urn:"):
        res = index.by_url.get("/".join(target.rstrip("/").split("/")[-2:]))  # absolute URL -> Type/id
    return res is not None and res.get("resourceType") == "Observation"


def _cut(text: str | None) -> str | None:
    return text[:200] if text else None


def _analyte(obs: Any, code_map: CodeMap, source: str | None) -> str | None:
    return coded_analyte(
        [(c.code, c.system) for c in obs.code.coding or []],
        lambda system: system == LOINC,
        lambda code, system: code_map.analyte(code, system, source),
    )


def _unit(qty: Any, key: str, code_map: CodeMap, source: str | None) -> str:
    """The first of UCUM code and display unit that the analyte accepts, else the first given (so that
    the rejection names what was sent)."""
    accepted = {normalise_unit(u) for u in ANALYTES[key].units}
    candidates = [u for u in ((qty.code if qty.system in (UCUM, None) else None), qty.unit) if u]
    spelled = [canonical_spelling(u, code_map, source, qty.system) for u in candidates]
    return next((u for u in spelled if normalise_unit(u) in accepted), spelled[0] if spelled else "")


def _concept_text(concept: Any) -> str:
    if concept is None:
        return ""
    if concept.text:
        return concept.text
    return next((c.display or c.code or "" for c in concept.coding or []), "")


def _medication(
    res: Any, position: int | None, payload: _Payload, raw: dict[str, Any]
) -> list[Event | Rejected]:
    from monitor.interop.fhir_meds import medication_record

    dump = _dump(raw)
    kind = res.get_resource_type()
    status = MEDICATION_STATUS[kind].get(res.status)
    if status is None:
        return [
            Rejected(
                position,
                "status",
                res.status,
                f"{kind} status {res.status!r} means no drug was given or is being taken",
                dump,
            )
        ]
    patient = _subject(res, "subject", payload.index, raw)
    if isinstance(patient, Rejected):
        return [Rejected(position, patient.field, patient.value, patient.reason, dump)]
    source, source_id = _identity(res)
    record = medication_record(res, payload.index, payload.code_map, source)
    if isinstance(record, tuple):
        field, value, reason = record
        return [Rejected(position, field, value, reason, dump)]
    record.update(
        {
            "type": "medication",
            "patient_id": patient,
            "status": status,
            "source": _cut(source),
            "source_id": _cut(source_id),
        }
    )
    return [to_event(record, position, dump, payload.context)]
