"""Properties of assess() over arbitrary valid histories (strategies in tests/strategies.py)."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.assess import Assessment, assess
from monitor.findings import SEVERITY_RANK
from monitor.timeline import Timeline
from tests.strategies import AnyEvent, events, histories, patient_ids

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
as_ofs = st.dates(date(2019, 6, 1), date(2027, 6, 30))
CATEGORIES = {"unknown", "low", "moderate", "high", "very_high"}


def assessed(pid: str, evs: list[AnyEvent], as_of: date) -> Assessment:
    return assess(Timeline.build(pid, evs), as_of)


def same(a: Assessment, b: Assessment) -> None:
    assert a.findings == b.findings
    assert a.summary() == b.summary()


@SETTINGS
@given(histories(), as_ofs)
def test_assess_never_raises_and_findings_are_well_formed(history: tuple[str, list[AnyEvent]],
                                                         as_of: date) -> None:
    pid, evs = history
    a = assessed(pid, evs, as_of)
    summary = a.summary()
    json.dumps(summary)  # JSON-ready
    assert summary["risk"]["category"] in CATEGORIES
    assert a.risk.reasons  # every category says why
    for f in a.findings:
        assert f.severity in SEVERITY_RANK
        assert f.fingerprint.startswith(f"{pid}/{f.rule}/")
        assert f.message.strip() and f.reference.strip()
        assert f.evidence
    fingerprints = [f.fingerprint for f in a.findings]
    assert len(fingerprints) == len(set(fingerprints)), "one finding per fingerprint"


@SETTINGS
@given(histories(), as_ofs, st.randoms(use_true_random=False))
def test_input_order_does_not_matter(history: tuple[str, list[AnyEvent]], as_of: date,
                                     rnd: random.Random) -> None:
    pid, evs = history
    shuffled = evs[:]
    rnd.shuffle(shuffled)
    same(assessed(pid, evs, as_of), assessed(pid, shuffled, as_of))


@SETTINGS
@given(histories(), as_ofs, st.data())
def test_duplicated_events_do_not_matter(history: tuple[str, list[AnyEvent]], as_of: date,
                                         data: st.DataObject) -> None:
    pid, evs = history
    if evs:
        again = data.draw(st.lists(st.sampled_from(evs), max_size=len(evs)))
    else:
        again = []
    same(assessed(pid, evs, as_of), assessed(pid, [*evs, *again], as_of))


@st.composite
def history_with_later_events(draw: st.DrawFn) -> tuple[str, list[AnyEvent], list[AnyEvent], date]:
    pid = draw(patient_ids)
    as_of = draw(as_ofs)
    earlier = st.dates(as_of - timedelta(days=1500), as_of)
    later = st.dates(as_of + timedelta(days=1), as_of + timedelta(days=800))
    known = draw(st.lists(events(pid, earlier), max_size=30))
    # later events with their own identities (a later *version* of a known identity, e.g. a
    # correction moving a result's date, legitimately replaces it), and no demographics (undated)
    future = draw(st.lists(events(pid, later, identities=False).filter(lambda e: e.type != "patient"),
                           max_size=10))
    return pid, known, future, as_of


@SETTINGS
@given(history_with_later_events())
def test_events_after_as_of_do_not_change_the_assessment(
        case: tuple[str, list[AnyEvent], list[AnyEvent], date]) -> None:
    pid, known, future, as_of = case
    same(assessed(pid, known, as_of), assessed(pid, [*known, *future], as_of))


@SETTINGS
@given(histories(max_size=25), st.data(), as_ofs)
def test_other_patients_events_do_not_matter(history: tuple[str, list[AnyEvent]], data: st.DataObject,
                                             as_of: date) -> None:
    pid, evs = history
    others = data.draw(st.lists(events(f"{pid}-2"), max_size=10))
    same(assessed(pid, evs, as_of), assessed(pid, [*others, *evs], as_of))
