"""Reference resolution inside one FHIR payload: fullUrl (urn:uuid:..., absolute), Type/id, #contained."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Index:
    by_url: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: list[dict[str, Any]], full_urls: list[str]) -> Index:
        index = cls()
        for res, url in zip(resources, full_urls, strict=True):
            kind, rid = res.get("resourceType"), res.get("id")
            if url:
                index.by_url.setdefault(url, res)
            if isinstance(kind, str) and isinstance(rid, str):
                index.by_url.setdefault(f"{kind}/{rid}", res)
        return index


def patient_id_of(patient: dict[str, Any]) -> str:
    """A Patient's id for events: its medical record number (identifier typed MR), else its first
    identifier, else its logical id. Every format must land the same person on the same id."""
    idents = [i for i in patient.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
    for ident in idents:
        codings = (
            ((ident.get("type") or {}).get("coding") or []) if isinstance(ident.get("type"), dict) else []
        )
        if any(isinstance(c, dict) and c.get("code") == "MR" for c in codings):
            return str(ident["value"])
    if idents:
        return str(idents[0]["value"])
    return str(patient.get("id") or "")


def resolve(ref: Any, index: Index, container: dict[str, Any]) -> tuple[str | None, str]:
    """(patient id, "") for a reference to a Patient, or (None, why it cannot be resolved)."""
    target = ref.reference or ""
    if not target:
        ident = ref.identifier
        if ident is not None and ident.value:
            return ident.value, ""  # a logical reference by identifier (the MRN itself)
        return None, "reference is empty (no reference and no identifier)"
    if target.startswith("#"):
        for res in container.get("contained") or []:
            if isinstance(res, dict) and res.get("id") == target[1:]:
                return _patient_or_error(res, target)
        return None, f"contained resource {target!r} is not in the resource's contained list"
    res = index.by_url.get(target)
    if res is None and "/" in target and not target.startswith("urn:"):
        res = index.by_url.get("/".join(target.rstrip("/").split("/")[-2:]))  # absolute URL -> Type/id
    if res is not None:
        return _patient_or_error(res, target)
    if target.startswith("urn:"):
        return None, f"reference {target!r} is not a fullUrl in this Bundle"
    parts = target.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1], ""  # a Patient outside the payload: its logical id is all we know
    return None, f"reference {target!r} does not point to a Patient"


def _patient_or_error(res: dict[str, Any], target: str) -> tuple[str | None, str]:
    if res.get("resourceType") != "Patient":
        return None, f"reference {target!r} points to a {res.get('resourceType')}, not a Patient"
    pid = patient_id_of(res)
    return (pid, "") if pid else (None, f"Patient {target!r} has neither identifier nor id")
