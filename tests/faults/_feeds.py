"""Synthetic feeds for the fault tests (deterministic, sized so a fault lands mid-run)."""

from __future__ import annotations

import json
from pathlib import Path


def lab(pid: str, analyte: str, value: float, unit: str, at: str, sid: str) -> dict:
    return {"type": "lab", "patient_id": pid, "analyte": analyte, "value": value, "unit": unit,
            "effective_at": at, "source": "lis", "source_id": sid}


def cohort(patients: int, history: int = 6, prefix: str = "F", recent: str = "2025-08-25") -> list[dict]:
    """`patients` patients, each with `history` quiet albumin results in 2024 and, on 2025-08-25,
    severe hypoalbuminaemia with nephrotic proteinuria (on `recent`): one critical
    albumin_low_thrombosis alert each once assessed on or after that date (and none before)."""
    events: list[dict] = []
    for p in range(patients):
        pid = f"{prefix}-{p:04d}"
        events.append({"type": "patient", "patient_id": pid, "birth_date": "1966-05-04",
                       "sex": "male" if p % 2 else "female"})
        for i in range(history):
            events.append(lab(pid, "serum_albumin", 36 + (i + p) % 6, "g/L", f"2024-{1 + i % 12:02d}-10", f"{pid}-h{i}"))
        events.append(lab(pid, "serum_albumin", 15 + p % 3, "g/L", recent, f"{pid}-alb"))
        events.append(lab(pid, "proteinuria_24h", 9.0, "g/d", recent, f"{pid}-prot"))
    return events


def write(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def big_feed(tmp: Path, patients: int = 100, per_patient: int = 40) -> tuple[Path, int]:
    """`patients` patients with `per_patient` albumin results each (2021 onwards), written to
    tmp/big.ndjson; returns the file and its number of lines."""
    events: list[dict] = []
    for p in range(patients):
        pid = f"K-{p:03d}"
        events.append({"type": "patient", "patient_id": pid, "birth_date": "1970-01-01", "sex": "male"})
        for i in range(per_patient):
            events.append(lab(pid, "serum_albumin", 30 + (i * 7 + p) % 15, "g/L",
                              f"20{21 + i // 12}-{1 + i % 12:02d}-15", f"{pid}-{i}"))
    return write(tmp / "big.ndjson", events), len(events)
