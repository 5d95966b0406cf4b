"""Pure helpers of storage.event_store: no database needed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.events import parse_event
from monitor.timeline import event_version_key, version_key
from storage.event_store import event_from_payload

T0 = datetime(2025, 6, 1, tzinfo=UTC)
analytes = st.sampled_from([("anti_pla2r", "U/mL", 1, 500), ("proteinuria_24h", "mg/d", 10, 20000),
                            ("serum_albumin", "g/dL", 1, 5), ("upcr", "mg/mmol", 1, 1000),
                            ("cd19_count", "10^9/L", 0.0, 0.5), ("csa_trough", "ng/mL", 20, 400)])


@st.composite
def labs(draw):  # type: ignore[no-untyped-def]
    key, unit, lo, hi = draw(analytes)
    raw = {"type": "lab", "patient_id": draw(st.from_regex(r"[A-Z][0-9]{1,4}", fullmatch=True)), "analyte": key,
           "unit": unit, "value": draw(st.floats(lo, hi, allow_nan=False)),
           "effective_at": (T0 - timedelta(seconds=draw(st.integers(0, 10**8)))).isoformat(),
           "status": draw(st.sampled_from(["final", "preliminary", "corrected", "entered-in-error"])),
           "comparator": draw(st.sampled_from([None, "<", ">="]))}
    if draw(st.booleans()):
        raw["recorded_at"] = (T0 + timedelta(microseconds=draw(st.integers(0, 10**12)))).isoformat()
    if draw(st.booleans()):
        raw |= {"source": "lis", "source_id": str(draw(st.integers(1, 10**6)))}
    return parse_event(raw)


@st.composite
def meds(draw):  # type: ignore[no-untyped-def]
    start = (T0 - timedelta(days=draw(st.integers(0, 3000)))).date()
    raw = {"type": "medication", "patient_id": "P1", "drug": draw(st.sampled_from(["rituximab", "cyclosporine", "ctx"])),
           "dose": draw(st.floats(0, 2000, allow_nan=False)), "unit": draw(st.sampled_from(["mg", "g", "mg/kg"])),
           "frequency": draw(st.sampled_from(["once", "bid", "q4w"])), "start": start.isoformat()}
    if draw(st.booleans()):
        raw["end"] = (start + timedelta(days=draw(st.integers(0, 400)))).isoformat()
    return parse_event(raw)


@st.composite
def patients(draw):  # type: ignore[no-untyped-def]
    raw = {"type": "patient", "patient_id": "P1", "sex": draw(st.sampled_from([None, "female", "male"])),
           "weight_kg": draw(st.one_of(st.none(), st.floats(1, 400))),
           # birth dates from 1900 on: earlier ones are refused (monitor.validation)
           "birth_date": draw(st.one_of(st.none(), st.dates(min_value=date(1900, 1, 1)).map(lambda d: d.isoformat())))}
    return parse_event(raw)


@settings(max_examples=150, deadline=None)
@given(st.one_of(labs(), meds(), patients()))
def test_trusted_reconstruction_equals_validation(event) -> None:  # type: ignore[no-untyped-def]
    payload = event.model_dump(mode="json")
    trusted = event_from_payload(event.type, payload, trusted=True)
    validated = event_from_payload(event.type, payload, trusted=False)
    assert trusted == validated == event
    assert trusted.model_dump() == event.model_dump()
    assert trusted.identity == event.identity and trusted.content_hash == event.content_hash


@settings(max_examples=100, deadline=None)
@given(st.one_of(labs(), meds(), patients()))
def test_version_key_of_stored_columns_equals_the_event_s(event) -> None:  # type: ignore[no-untyped-def]
    # storage computes is_current from the stored status/recorded_at columns with the same function
    # the timeline applies to events (one definition), so the stored payload must give the same key
    stored = event_from_payload(event.type, event.model_dump(mode="json"), trusted=True)
    from_columns = version_key(stored.model_dump().get("status"), getattr(stored, "recorded_at", None),
                               event.content_hash)
    assert from_columns == event_version_key(event)
