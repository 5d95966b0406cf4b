"""The synthetic cohort generator (synthetic/): determinism, the NDJSON contract, the archetype mix,
and whether each archetype's course raises the alerts it was modelled to raise.

The rule checks replay every patient the way the worker sees it: assess() on each date a result or
dose arrives and every 14 days in between (the nightly run), and collect the rules found on any of
those dates with their highest severity.
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest

from monitor import rules as rules_pkg
from monitor.assess import assess
from monitor.egfr import egfr_series
from monitor.events import parse_event
from monitor.findings import SEVERITY_RANK
from monitor.remission import remission_history
from monitor.rules import RULE_IDS, RULES
from monitor.rules.base import RuleContext
from monitor.therapy import anti_cd20_courses
from monitor.timeline import Timeline
from synthetic import (
    ARCHETYPES,
    archetype_for,
    archetype_of,
    assignments,
    generate_cohort,
    generate_patient,
    iter_cohort,
)

START = date(2023, 1, 1)
YEARS = 3.0
PATIENTS_PER_ARCHETYPE = 8
MOST = 0.75  # "most of its patients": at least 6 of 8
NIGHTLY_EVERY_DAYS = 14
NOTHING = sorted(name for name, a in ARCHETYPES.items() if not a.expected_rules)


# ---- determinism and contract ---------------------------------------------------------------------
def test_same_arguments_give_identical_output() -> None:
    assert generate_cohort(40, START, YEARS, seed=7) == generate_cohort(40, START, YEARS, seed=7)


def test_a_different_seed_gives_a_different_cohort() -> None:
    a, b = generate_cohort(40, START, YEARS, seed=7), generate_cohort(40, START, YEARS, seed=8)
    assert a != b
    assert [e for e in a if e["type"] == "lab"][:20] != [e for e in b if e["type"] == "lab"][:20]


def test_iter_cohort_yields_the_same_events_per_patient() -> None:
    flat = [e for events in iter_cohort(30, START, YEARS) for e in events]
    assert flat == generate_cohort(30, START, YEARS)
    for events in iter_cohort(30, START, YEARS):
        assert events[0]["type"] == "patient"
        assert {e["patient_id"] for e in events} == {events[0]["patient_id"]}


def test_patient_k_does_not_depend_on_the_cohort_size() -> None:
    small = list(iter_cohort(50, START, YEARS))
    large = list(iter_cohort(200, START, YEARS))
    assert large[:50] == small


@functools.cache
def _cohort_200() -> list[dict[str, Any]]:
    return generate_cohort(200, START, YEARS)


def test_every_event_validates_against_the_contract() -> None:
    problems = []
    for e in _cohort_200():
        try:
            parse_event(e)
        except ValueError as exc:
            problems.append(f"{e}: {exc}")
    assert not problems, "\n".join(problems[:10])


def test_events_are_ordered_by_patient_then_clinical_time_with_unique_source_ids() -> None:
    events = _cohort_200()
    seen_patients: list[str] = []
    last_day: dict[str, str] = {}
    ids = Counter()
    for e in events:
        pid = e["patient_id"]
        if e["type"] == "patient":
            assert pid not in seen_patients
            seen_patients.append(pid)
            continue
        assert pid == seen_patients[-1], "events of a patient are contiguous, after its patient record"
        day = e.get("effective_at") or e["start"]
        assert day >= last_day.get(pid, ""), f"{pid}: {day} after {last_day.get(pid)}"
        last_day[pid] = day
        assert e["source"] == "synthetic"
        ids[e["source_id"]] += 1
    assert len(seen_patients) == 200
    assert [k for k, n in ids.items() if n > 1] == []


def test_values_are_plain_json_scalars() -> None:
    for e in _cohort_200()[:2000]:
        for v in e.values():
            assert isinstance(v, (str, int, float)), e


def test_units_are_a_realistic_mix() -> None:
    pairs = {(e["analyte"], e["unit"]) for e in _cohort_200() if e["type"] == "lab"}
    for wanted in [("upcr", "mg/mmol"), ("upcr", "mg/g"), ("proteinuria_24h", "g/24h"),
                   ("serum_albumin", "g/dL"), ("serum_albumin", "g/L"), ("serum_creatinine", "mg/dL"),
                   ("serum_creatinine", "umol/L"), ("csa_trough", "nmol/L"), ("tac_trough", "ng/mL"),
                   ("cd19_count", "10^9/L"), ("anti_pla2r", "RU/mL")]:
        assert wanted in pairs, wanted


def test_blood_counts_are_drawn_on_cyclophosphamide_weekly_for_8_weeks_then_every_2_months() -> None:
    seen = 0
    for k in range(16):
        events = generate_patient(20_000 + k, START, YEARS, archetype="modified_ponticelli" if k % 2 else
                                  "cyclophosphamide_leukopenia")
        starts = sorted(date.fromisoformat(e["start"]) for e in events
                        if e["type"] == "medication" and e["drug"] == "cyclophosphamide")
        ends = sorted(date.fromisoformat(e["end"]) for e in events
                      if e["type"] == "medication" and e["drug"] == "cyclophosphamide")
        wbc = [date.fromisoformat(e["effective_at"]) for e in events if e["type"] == "lab" and e["analyte"] == "wbc"]
        neutrophils = [e for e in events if e["type"] == "lab" and e["analyte"] == "neutrophils"]
        if not starts:
            continue  # the course starts after the simulated period
        seen += 1
        assert len(neutrophils) == len(wbc) and wbc[0] == starts[0]
        gaps = [(b - a).days for a, b in pairwise(wbc)]
        assert gaps[:7] == [7] * 7 and max(gaps) <= 60
        assert wbc[-1] <= ends[-1] + timedelta(days=30)
    assert seen >= 12
    # in a cohort, exactly the patients given cyclophosphamide have blood counts
    counted = treated = 0
    for events in iter_cohort(200, START, YEARS):
        on_ctx = any(e["type"] == "medication" and e["drug"] == "cyclophosphamide" for e in events)
        has_counts = any(e["type"] == "lab" and e["analyte"] in ("wbc", "neutrophils") for e in events)
        assert has_counts == on_ctx, events[0]["patient_id"]
        counted += has_counts
        treated += on_ctx
    assert counted == treated > 0


def test_cd19_is_drawn_two_to_four_weeks_after_anti_cd20() -> None:
    for events in iter_cohort(200, START, YEARS):
        doses = [date.fromisoformat(e["start"]) for e in events
                 if e["type"] == "medication" and e["drug"] in ("rituximab", "obinutuzumab")]
        for e in events:
            if e["type"] == "lab" and e["analyte"] == "cd19_count":
                day = date.fromisoformat(e["effective_at"])
                gaps = [(day - d).days for d in doses if d <= day]
                assert gaps and (14 <= min(gaps) <= 28 or min(gaps) > 60), (e["patient_id"], gaps)


# ---- archetypes ---------------------------------------------------------------------------------------
def test_every_rule_is_expected_of_some_archetype() -> None:
    expected = set().union(*(a.expected_rules for a in ARCHETYPES.values()))
    assert expected == set(RULE_IDS), f"never expected: {set(RULE_IDS) - expected}; unknown: {expected - set(RULE_IDS)}"
    for a in ARCHETYPES.values():
        assert a.critical_rules <= a.expected_rules, a.name


def test_weights_and_codes() -> None:
    assert abs(sum(a.weight for a in ARCHETYPES.values()) - 1.0) < 1e-9
    codes = [a.code for a in ARCHETYPES.values()]
    assert len(set(codes)) == len(codes)
    assert sum(ARCHETYPES[n].weight for n in NOTHING) >= 0.5


def test_quiet_patients_are_at_least_40_percent_of_a_cohort_of_200() -> None:
    counts = Counter(archetype_of(e["patient_id"]) for e in _cohort_200() if e["type"] == "patient")
    assert counts["quiet"] >= 0.40 * 200, counts
    assert sum(counts[n] for n in NOTHING) >= 0.5 * 200, counts
    assert set(counts) == set(ARCHETYPES), f"missing: {set(ARCHETYPES) - set(counts)}"


def test_assignments_match_the_patient_ids() -> None:
    ids = [e["patient_id"] for e in _cohort_200() if e["type"] == "patient"]
    table = assignments(200)
    assert list(table) == ids
    assert all(archetype_of(pid) == name for pid, name in table.items())
    assert archetype_for(42).name == table[ids[42]]
    assert archetype_of("P1") is None and archetype_of("DEMO-0001-nosuch") is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate_cohort(1, START, id_prefix="has space")
    with pytest.raises(ValueError):
        generate_cohort(1, START, years=0)


# ---- do the courses raise what they should? -----------------------------------------------------
PATIENT = {"type": "patient", "patient_id": "H", "birth_date": "1970-01-01", "sex": "male", "weight_kg": 70,
           "height_cm": 175}
D0 = date(2024, 1, 1)


def _lab(day: int, analyte: str, value: float, unit: str) -> dict[str, Any]:
    return {"type": "lab", "patient_id": "H", "analyte": analyte, "value": value, "unit": unit,
            "effective_at": (D0 + timedelta(days=day)).isoformat()}


def _med(day: int, drug: str, dose: float, frequency: str = "once", end: int | None = None) -> dict[str, Any]:
    e = {"type": "medication", "patient_id": "H", "drug": drug, "dose": dose, "unit": "mg",
         "frequency": frequency, "start": (D0 + timedelta(days=day)).isoformat()}
    if end is not None:
        e["end"] = (D0 + timedelta(days=end)).isoformat()
    return e


# one unmistakable textbook case per rule, and the day to assess it (days after D0)
HAND_MADE: dict[str, tuple[list[dict[str, Any]], int]] = {
    "relapse": ([_lab(d, "upcr", v, "g/g") for d, v in ((0, 6.0), (30, 6.2), (90, 1.5), (120, 1.4),
                                                          (200, 5.0), (215, 5.5))], 215),
    "immunological_relapse": ([_med(0, "rituximab", 1000), _lab(0, "anti_pla2r", 100, "RU/mL"),
                               _lab(90, "anti_pla2r", 5, "RU/mL"), _lab(300, "anti_pla2r", 60, "RU/mL")], 300),
    "titer_rising": ([_lab(0, "anti_pla2r", 20, "RU/mL"), _lab(90, "anti_pla2r", 25, "RU/mL"),
                      _lab(180, "anti_pla2r", 60, "RU/mL")], 180),
    "rtx_non_response": ([_lab(0, "anti_pla2r", 100, "RU/mL"), _lab(0, "upcr", 6.0, "g/g"),
                          _med(1, "rituximab", 1000), _med(15, "rituximab", 1000),
                          _lab(150, "anti_pla2r", 90, "RU/mL"), _lab(150, "upcr", 6.0, "g/g"),
                          _lab(190, "anti_pla2r", 95, "RU/mL"), _lab(190, "upcr", 6.1, "g/g")], 200),
    "rtx_b_cell_not_depleted": ([_med(0, "rituximab", 1000), _med(14, "rituximab", 1000),
                                 _lab(35, "cd19_count", 30, "cells/uL")], 35),
    "csa_trough_low": ([_med(0, "cyclosporine", 100, "bid"), _lab(30, "csa_trough", 60, "ng/mL")], 30),
    "cni_trough_high": ([_med(0, "cyclosporine", 200, "bid"), _lab(30, "csa_trough", 300, "ng/mL")], 30),
    "tac_trough_low": ([_med(0, "tacrolimus", 1, "bid"), _lab(30, "tac_trough", 1.5, "ng/mL")], 30),
    "albumin_low_thrombosis": ([_lab(0, "serum_albumin", 15, "g/L")], 0),
    "egfr_decline": ([_lab(d, "serum_creatinine", v, "umol/L") for d, v in ((0, 90), (30, 92), (60, 91), (90, 200))],
                     90),
    "ctx_cumulative_dose": ([_med(0, "cyclophosphamide", 150, "qd", end=99)], 100),
    "monitoring_overdue": ([_med(0, "tacrolimus", 1, "bid"), _lab(0, "upcr", 5.0, "g/g"),
                            _lab(10, "tac_trough", 5.0, "ng/mL")], 200),
    "cytopenia": ([_med(0, "cyclophosphamide", 150, "qd", end=89), _lab(40, "wbc", 2.0, "10^9/L")], 40),
    "course_non_response": ([_med(0, "tacrolimus", 1, "bid"), _lab(0, "upcr", 6.0, "g/g"),
                             _lab(150, "upcr", 5.8, "g/g")], 183),
    "rtx_redose_due": ([_lab(0, "upcr", 8.0, "g/g"), _med(1, "rituximab", 1000), _med(15, "rituximab", 1000),
                        _lab(170, "upcr", 4.0, "g/g")], 190),
    "csa_renal_impairment": ([_lab(0, "egfr", 45, "mL/min/1.73m2"), _med(10, "cyclosporine", 100, "bid")], 20),
    "titer_falling_supportive": ([_lab(0, "anti_pla2r", 80, "RU/mL"), _lab(90, "anti_pla2r", 50, "RU/mL")], 90),
}
RULE_MODULES = {m.RULE_ID: m for m in RULES}


def _timeline(pid: str, events: list[dict[str, Any]]) -> Timeline:
    return Timeline.build(pid, [parse_event(e) for e in events])


@functools.cache
def rule_implemented(rule: str) -> bool:
    """False while the rule is still a placeholder: its evaluate() finds nothing in a textbook case."""
    events, day = HAND_MADE[rule]
    as_of = D0 + timedelta(days=day)
    known = _timeline("H", [PATIENT, *events]).until(as_of)
    proteinuria = known.proteinuria()
    ctx = RuleContext(known, as_of, proteinuria, egfr_series(known), remission_history(known, proteinuria),
                      anti_cd20_courses(known, as_of))
    return bool(RULE_MODULES[rule].evaluate(ctx))


def test_hand_made_cases_cover_every_rule() -> None:
    assert set(HAND_MADE) == set(RULE_IDS)
    assert rules_pkg.RULE_IDS == RULE_IDS


def _as_of_dates(events: list[dict[str, Any]]) -> list[date]:
    """Every date something arrives, and the nightly run every 14 days to the end of the period."""
    days = {date.fromisoformat((e.get("effective_at") or e["start"])[:10]) for e in events[1:]}
    end = START + timedelta(days=round(365.25 * YEARS))
    day = min(days)
    while day <= end:
        days.add(day)
        day += timedelta(days=NIGHTLY_EVERY_DAYS)
    return sorted(d for d in days if d <= end)


def _fired(events: list[dict[str, Any]]) -> dict[str, str]:
    """rule -> highest severity found on any assessment date."""
    timeline = _timeline(events[0]["patient_id"], events)
    out: dict[str, str] = {}
    for as_of in _as_of_dates(events):
        for f in assess(timeline, as_of).findings:
            if SEVERITY_RANK[f.severity] > SEVERITY_RANK.get(out.get(f.rule, ""), -1):
                out[f.rule] = f.severity
    return out


@functools.cache
def fired_by_archetype(name: str) -> tuple[tuple[str, dict[str, str]], ...]:
    """(patient id, rules fired) for PATIENTS_PER_ARCHETYPE patients drawn with that archetype."""
    out = []
    for i in range(PATIENTS_PER_ARCHETYPE):
        events = generate_patient(10_000 + i, START, YEARS, archetype=name)
        out.append((events[0]["patient_id"], _fired(events)))
    return tuple(out)


def _describe(rows: tuple[tuple[str, dict[str, str]], ...]) -> str:
    return "\n".join(f"  {pid}: {dict(sorted(f.items())) or 'nothing'}" for pid, f in rows)


EXPECTED = [(name, rule) for name, a in ARCHETYPES.items() for rule in sorted(a.expected_rules)]


@pytest.mark.parametrize(("archetype", "rule"), EXPECTED, ids=[f"{a}-{r}" for a, r in EXPECTED])
def test_archetype_raises_its_expected_rule(archetype: str, rule: str) -> None:
    if not rule_implemented(rule):
        pytest.xfail("rule not implemented yet")
    rows = fired_by_archetype(archetype)
    hits = [pid for pid, f in rows if rule in f]
    assert len(hits) >= MOST * len(rows), (
        f"archetype {archetype}: rule {rule} fired for {len(hits)}/{len(rows)} patients "
        f"(expected >= {MOST:.0%}); what each patient raised:\n{_describe(rows)}")
    if rule in ARCHETYPES[archetype].critical_rules:
        critical = [pid for pid, f in rows if f.get(rule) == "critical"]
        assert len(critical) >= MOST * len(rows), (
            f"archetype {archetype}: rule {rule} reached critical for {len(critical)}/{len(rows)} "
            f"patients:\n{_describe(rows)}")


@pytest.mark.parametrize("archetype", NOTHING)
def test_archetypes_that_should_raise_nothing_raise_nothing_above_info(archetype: str) -> None:
    rows = fired_by_archetype(archetype)
    loud = [(pid, {r: s for r, s in f.items() if s != "info"}) for pid, f in rows]
    loud = [(pid, f) for pid, f in loud if f]
    assert not loud, (f"archetype {archetype} should raise nothing above info, but:\n"
                      + "\n".join(f"  {pid}: {f}" for pid, f in loud))


@pytest.mark.parametrize("archetype", sorted(set(ARCHETYPES) - set(NOTHING)))
def test_archetypes_rarely_raise_rules_they_do_not_expect(archetype: str) -> None:
    rows = fired_by_archetype(archetype)
    expected = ARCHETYPES[archetype].expected_rules
    counts = Counter(r for _, f in rows for r, s in f.items() if r not in expected and s != "info")
    too_often = {r: n for r, n in counts.items() if n > (1 - MOST) * len(rows)}
    assert not too_often, (f"archetype {archetype} raises unexpected rules {too_often} "
                           f"(of {len(rows)} patients):\n{_describe(rows)}")


# ---- the outcome report's regimens ---------------------------------------------------------------------
END = START + timedelta(days=round(365.25 * YEARS))


def test_the_default_cohort_has_a_course_of_every_regimen_but_glucocorticoid_alone() -> None:
    """`imn-monitor report` on the demo lists a regimen as "not used" when no archetype gives it: each
    regimen of the seed review has an archetype now (mycophenolate, ACTH and belimumab were missing);
    a glucocorticoid alone is not a treatment of IMN that any archetype models."""
    from monitor.courses import REGIMENS, SUPPORTIVE
    from monitor.outcomes import outcomes_as_of

    seen: set[str] = set()
    for events in iter_cohort(200, START, YEARS):
        timeline = _timeline(events[0]["patient_id"], events)
        seen |= {o.regimen for o in outcomes_as_of(timeline, END)}
    assert set(REGIMENS) - seen == {"glucocorticoid"}
    assert SUPPORTIVE in seen


# regimen, archetype, days from time zero by which every remission is confirmed: (not before, by)
REMITS = [("mycophenolate", "mycophenolate_slow_response", (184, 400)), ("acth", "acth_responder", (60, 182)),
          ("belimumab", "belimumab_falling_titer", (197, 420))]


@pytest.mark.parametrize(("regimen", "archetype", "window"), REMITS, ids=[r for r, _, _ in REMITS])
def test_the_new_regimens_archetypes_remit_when_modelled(regimen: str, archetype: str,
                                                        window: tuple[int, int]) -> None:
    """Slow partial remission after the evaluation point for mycophenolate (day 183) and belimumab (day
    196, after an immunological remission), within 6 months for ACTH."""
    from monitor.outcomes import outcomes_as_of

    for i in range(PATIENTS_PER_ARCHETYPE):
        events = generate_patient(10_000 + i, START, YEARS, archetype=archetype)
        courses = [o for o in outcomes_as_of(_timeline(events[0]["patient_id"], events), END)
                   if o.regimen == regimen]
        assert len(courses) == 1, (events[0]["patient_id"], courses)
        c = courses[0]
        assert c.evaluable and c.remission is not None, c
        assert window[0] <= (c.remission - c.start).days <= window[1], c
        if regimen == "belimumab":
            assert c.immunological_remission is not None and c.immunological_remission < c.remission, c
