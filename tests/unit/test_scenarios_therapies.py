"""Whole-patient scenarios for the rules of every therapy of the seed review (issue 11): cytopenia,
course_non_response, rtx_redose_due, csa_renal_impairment and titer_falling_supportive, each a
course modelled on a published one, assessed the way the nightly run does (tests/unit/test_scenarios.py
style: remission state, KDIGO 2021 risk category and exactly the open findings at each checkpoint,
and a sweep of every night for what must never fire and what must keep its fingerprint).

Dates: an int is days after DAY0 (2025-01-01), as in tests/unit/rules/builders.py.
"""

from __future__ import annotations

import random

import pytest

from monitor.events import LabResult
from tests.unit.rules.builders import PID, AnyEvent, assess_on, lab, med, patient
from tests.unit.test_scenarios import (
    Checkpoint,
    _comparable,
    _reparsed,
    acei,
    alb,
    cd19,
    check,
    cp,
    creat,
    csa,
    finding,
    iso,
    neutrophils,
    nightly,
    open_alerts,
    rituximab_mentor,
    tac,
    titer,
    upd,
    wbc,
)

# ------------------------------------------- scenario 1: leukopenia on a modified Ponticelli course


def ponticelli_leukopenia() -> list[AnyEvent]:
    events: list[AnyEvent] = [
        patient(birth_date="1961-05-12", sex="male", weight_kg=78, height_cm=177), acei(-200),
        upd(8.4, -200), upd(8.0, -5), titer(110, -5), alb(27, -5), creat(88, -5)]
    for month in (0, 60, 120):  # steroid months
        events += [med(PID, "methylprednisolone", month, 1, "g", frequency="qd", end=month + 2, route="iv"),
                   med(PID, "prednisolone", month + 3, 0.5, "mg/kg", frequency="qd", end=month + 29)]
    events += [med(PID, "cyclophosphamide", 30, 2, "mg/kg", frequency="qd", end=59),
               med(PID, "cyclophosphamide", 90, 1.5, "mg/kg", frequency="qd", end=119),  # reduced after it
               med(PID, "cyclophosphamide", 150, 1.5, "mg/kg", frequency="qd", end=179)]
    for d, p, t in ((30, 7.0, 80), (60, 6.0, 60), (90, 5.0, None), (120, 4.0, 20), (150, 3.2, None),
                    (180, 2.8, 6)):
        events += [upd(p, d), alb(min(27 + d / 30, 34), d), creat(88, d)]
        if t is not None:
            events.append(titer(t, d))
    events += [upd(1.2, 270), alb(36, 270), upd(0.8, 360)]
    # weekly for 8 weeks from the first cyclophosphamide day, then every 2 months (CJASN review table)
    for d, w, n in ((30, 7.2, 4.4), (37, 6.4, 3.9), (44, 4.8, 2.9), (51, 3.4, 1.9), (58, 2.6, 1.3),
                    (65, 2.1, 0.8), (72, 3.4, 1.9), (79, 4.6, 2.8), (120, 4.4, 2.6), (170, 4.8, 2.9)):
        events += [wbc(w, d), neutrophils(n, d)]
    return events


LOW = iso(58)
CTX = ("ctx_cumulative_dose", "warning", "cumulative")


class TestLeukopeniaOnCyclophosphamide:
    """Leukopenia on a modified Ponticelli course: Ponticelli C et al., JASN 1998;9:444-50 and Jha V et
    al., JASN 2007;18:1899-904 (alternating months of steroids and oral cyclophosphamide 2 mg/kg/d);
    seed review (leukopenia in 18%, infection in 17% of cyclophosphamide courses); CTCAE v5.0 (WBC
    decreased grade 2 < 3.0 x10^9/L, neutrophil count decreased grade 3 < 1.0 x10^9/L); CJASN review
    table (WBC weekly for 8 weeks, then every 2 months).

    The patient: 78 kg, 8 g/d, anti-PLA2R 110 RU/mL. Cyclophosphamide 2 mg/kg/d on days 30-59; the
    weekly count falls to WBC 2.6 (neutrophils 1.3) on day 58 and 2.1 (0.8) on day 65, and recovers
    to 3.4 (1.9) on day 72; the later months are given at 1.5 mg/kg/d. Partial remission at 6 months.

    The monitor must conclude: `cytopenia` warning from day 58 (WBC < 3.0), critical from day 65
    (neutrophils < 1.0) with the same fingerprint, resolved on day 72; `ctx_cumulative_dose` once
    10 g is reached (day 165); no monitoring reminder (counts as the CJASN table asks), and no
    course_non_response (partial remission before the evaluation point).
    """

    CHECKPOINTS = (
        cp(-5, "nephrotic", "high"),
        cp(57, "nephrotic", "high"),
        cp(58, "nephrotic", "high", ("cytopenia", "warning", LOW)),
        cp(65, "nephrotic", "high", ("cytopenia", "critical", LOW)),
        cp(71, "nephrotic", "high", ("cytopenia", "critical", LOW)),
        cp(72, "nephrotic", "high"),
        cp(165, "non_nephrotic", "low", CTX),
        cp(400, "partial_remission", "low", CTX),
    )

    @pytest.mark.parametrize("c", CHECKPOINTS, ids=str)
    def test_checkpoint(self, c: Checkpoint) -> None:
        check(ponticelli_leukopenia(), c)

    def test_messages_give_the_counts(self) -> None:
        warning = finding(assess_on(ponticelli_leukopenia(), 58), "cytopenia")
        assert "white cells 2.6 ×10⁹/L on 2025-02-28 (below 3.0)" in warning.message
        assert "cyclophosphamide (course started 2025-01-31" in warning.message
        critical = finding(assess_on(ponticelli_leukopenia(), 65), "cytopenia")
        assert "neutrophils 0.8 ×10⁹/L on 2025-03-07 (below 1.0)" in critical.message
        assert "severe neutropenia" in critical.message

    def test_cytopenia_only_while_the_counts_are_low(self) -> None:
        nights = dict(nightly(ponticelli_leukopenia(), 20, 420, step=3))
        fired = sorted(d for d, a in nights.items() if any(f.rule == "cytopenia" for f in a.findings))
        assert fired == [d for d in sorted(nights) if 58 <= d <= 71]
        assert all(open_alerts(a) <= {("cytopenia", "warning", LOW), ("cytopenia", "critical", LOW), CTX}
                   for a in nights.values())


# ----------------------------------------- scenario 2: tacrolimus without response, then rituximab


def tacrolimus_non_responder() -> list[AnyEvent]:
    events: list[AnyEvent] = [
        patient(birth_date="1977-09-03", sex="female", weight_kg=65, height_cm=166), acei(-200),
        upd(7.4, -200), upd(7.0, -5), titer(90, -5), alb(27, -5), creat(68, -5),
        med(PID, "tacrolimus", 0, 1.5, "mg", frequency="bid", end=200)]
    for d, p in ((30, 6.8), (60, 6.5), (90, 6.6), (120, 6.2), (150, 6.4), (180, 6.3)):
        events += [upd(p, d), tac(6.5, d), alb(27, d), creat(70, d)]
    events += [titer(85, 90), titer(80, 180), upd(6.2, 205), alb(27, 205), creat(69, 205)]
    events += rituximab_mentor(210)
    events += [upd(5.8, 270), titer(12, 300), alb(29, 300), upd(4.2, 300), upd(3.1, 360), upd(2.9, 370),
               alb(33, 370), titer(3, 390), creat(69, 370)]
    return events


CNR = ("course_non_response", "warning", f"tacrolimus:{iso(0)}")
REDOSE_2 = ("rtx_redose_due", "info", f"rituximab:{iso(210)}")


class TestTacrolimusNonResponder:
    """Tacrolimus without response, then rituximab: Praga M et al., Kidney Int 2007;71:924-30 (tacrolimus
    monotherapy 0.05 mg/kg/d, troughs 5-10 ng/mL); KDIGO 2012 ch.7 and the CJASN review table (stop a
    calcineurin inhibitor that has brought no response by 6 months); seed review (rituximab after CNI
    failure); MENTOR (second course at 6 months for partial responders).

    The patient: 7 g/d, anti-PLA2R 90 RU/mL, troughs 6.5 ng/mL; proteinuria 6.2-6.8 g/d for 6 months.
    Tacrolimus is stopped on day 200 and rituximab given on days 210 and 224; titer 12 RU/mL on day 300,
    partial remission on day 370.

    The monitor must conclude: `course_non_response` (warning) from day 183, not day 182, fingerprinted
    by the tacrolimus course; still open on day 209 although tacrolimus stopped on day 200 (only a
    remission or another course resolves it), resolved on day 210 when rituximab starts. After the
    rituximab course's 6 months (day 393) the patient is in partial remission without complete
    remission: the MENTOR re-dosing reminder (info) until day 450. Nothing else: troughs in range,
    results monthly.
    """

    CHECKPOINTS = (
        cp(-5, "nephrotic", "high"),
        cp(182, "nephrotic", "high"),
        cp(183, "nephrotic", "high", CNR),
        cp(209, "nephrotic", "high", CNR),
        cp(210, "nephrotic", "high"),
        cp(380, "partial_remission", "low"),
        cp(393, "partial_remission", "low", REDOSE_2),
        cp(451, "partial_remission", "low"),
    )

    @pytest.mark.parametrize("c", CHECKPOINTS, ids=str)
    def test_checkpoint(self, c: Checkpoint) -> None:
        check(tacrolimus_non_responder(), c)

    def test_message_names_the_course_the_numbers_and_the_source(self) -> None:
        f = finding(assess_on(tacrolimus_non_responder(), 190), "course_non_response")
        assert "tacrolimus course started 2025-01-01" in f.message and "183 days after its start" in f.message
        assert "Latest proteinuria 6.3 g/d on 2025-06-30 (peak of this episode 7.4 g/d" in f.message
        assert "KDIGO 2012" in f.message

    def test_one_fingerprint_every_night(self) -> None:
        nights = dict(nightly(tacrolimus_non_responder(), 150, 260))
        assert {d for d, a in nights.items() if CNR in open_alerts(a)} == set(range(183, 210))
        assert all(open_alerts(a) <= {CNR} for a in nights.values())


# ----------------------------------------------- scenario 3: MENTOR partial responder, re-dosed


def mentor_redosed() -> list[AnyEvent]:
    return [
        patient(birth_date="1959-02-17", sex="male", weight_kg=84, height_cm=180), acei(-200),
        upd(9.0, -200), upd(8.5, -5), titer(150, -5), alb(26, -5), creat(82, -5),
        *rituximab_mentor(0), cd19(0, 28),
        upd(6.8, 90), titer(10, 90), alb(28, 90), creat(83, 90),
        upd(4.6, 150), upd(4.2, 180), titer(4, 180), alb(30, 180), creat(82, 180),
        *rituximab_mentor(200), cd19(0, 228),
        upd(2.4, 270), titer(2, 270), alb(33, 270), upd(2.1, 280),
        upd(0.8, 330), alb(36, 330), upd(0.25, 360), titer(2, 360), alb(38, 360), upd(0.2, 370), creat(81, 370),
    ]


REDOSE = ("rtx_redose_due", "info", f"rituximab:{iso(0)}")


class TestMentorPartialResponderRedosed:
    """MENTOR partial responder: Fervenza FC et al., NEJM 2019;381:36-46 (rituximab 1 g on days 1 and 15,
    repeated at 6 months when proteinuria had fallen by >= 25% without complete remission).

    The patient: 8.5 g/d, anti-PLA2R 150 RU/mL; rituximab on days 0 and 14, B cells depleted; at 6
    months the titer is 4 RU/mL and proteinuria 4.2 g/d (-51%). A second course on days 200 and 214;
    partial remission on day 280, complete remission on day 370.

    The monitor must conclude: `rtx_redose_due` (info) from day 183 (not 182) to day 199, resolved by
    the further dose on day 200; no `rtx_non_response` (titer negative, proteinuria -51%); no reminder
    after the second course (complete remission by its day 183, day 383).
    """

    CHECKPOINTS = (
        cp(-5, "nephrotic", "high"),
        cp(182, "nephrotic", "low"),
        cp(183, "nephrotic", "low", REDOSE),
        cp(199, "nephrotic", "low", REDOSE),
        cp(200, "nephrotic", "low"),
        cp(290, "partial_remission", "low"),
        cp(383, "complete_remission", "low"),
    )

    @pytest.mark.parametrize("c", CHECKPOINTS, ids=str)
    def test_checkpoint(self, c: Checkpoint) -> None:
        check(mentor_redosed(), c)

    def test_message_gives_the_fall_and_the_deadline(self) -> None:
        f = finding(assess_on(mentor_redosed(), 183), "rtx_redose_due")
        assert "proteinuria is 4.2 g/d on 2025-06-30, 51% below the pre-course baseline of 8.5 g/d" in f.message
        assert "after day 240, 2025-08-29" in f.message

    def test_the_reminder_only_between_day_183_and_the_second_course(self) -> None:
        nights = dict(nightly(mentor_redosed(), 150, 440))
        assert {d for d, a in nights.items() if a.findings} == set(range(183, 200))
        assert all(open_alerts(a) <= {REDOSE} for a in nights.values())


# ------------------------------------- scenario 4: cyclosporine started at an eGFR below 60


def cyclosporine_low_gfr() -> list[AnyEvent]:
    events: list[AnyEvent] = [
        patient(birth_date="1962-04-08", sex="male", weight_kg=80, height_cm=175), acei(-200),
        upd(6.5, -200), creat(158, -200), upd(6.2, -10), titer(60, -10), alb(28, -10), creat(162, -10),
        med(PID, "cyclosporine", 0, 100, "mg", frequency="bid", end=90),
        med(PID, "prednisone", 0, 10, "mg", frequency="qd", end=90)]
    for d in (30, 60, 90):
        events += [csa(140, d), upd(6.0, d), creat(165, d), alb(28, d)]
    events += [titer(55, 90), *rituximab_mentor(100), cd19(0, 130), upd(5.1, 180), titer(12, 180),
               creat(163, 180), alb(30, 180), upd(4.0, 240), creat(160, 240)]
    return events


CSA_GFR = ("csa_renal_impairment", "warning", f"cyclosporine:{iso(0)}")


class TestCyclosporineInImpairedKidneyFunction:
    """Cyclosporine started in impaired kidney function: seed review section 2.4.1 (IMN with impaired
    renal function should avoid cyclosporine; alternating glucocorticoid and alkylating agent for 6
    months instead); KDIGO 2012 CKD (G3a below 60 mL/min/1.73 m2); Cattran DC et al., Kidney Int
    2001;59:1484 (cyclosporine in progressive IMN: the situation arises).

    The patient: male, 62, creatinine 158-165 umol/L (CKD-EPI 2021 about 40 mL/min/1.73 m2, computed:
    the laboratory reports no eGFR), 6 g/d, anti-PLA2R 60 RU/mL. Cyclosporine (troughs 140 ng/mL) with
    prednisone from day 0; stopped after day 90 and rituximab given on days 100 and 114.

    The monitor must conclude: `csa_renal_impairment` (warning) from the first day of cyclosporine,
    naming the computed eGFR; resolved on day 91 when cyclosporine has stopped. No course_non_response
    (rituximab is another course), no egfr_decline (stable creatinine); high risk throughout (eGFR < 60).
    """

    CHECKPOINTS = (
        cp(-10, "nephrotic", "high"),
        cp(0, "nephrotic", "high", CSA_GFR),
        cp(90, "nephrotic", "high", CSA_GFR),
        cp(91, "nephrotic", "high"),
        cp(250, "nephrotic", "high"),
    )

    @pytest.mark.parametrize("c", CHECKPOINTS, ids=str)
    def test_checkpoint(self, c: Checkpoint) -> None:
        check(cyclosporine_low_gfr(), c)

    def test_message_names_the_computed_egfr(self) -> None:
        f = finding(assess_on(cyclosporine_low_gfr(), 30), "csa_renal_impairment")
        assert "Cyclosporine was started on 2025-01-01" in f.message
        assert "(CKD-EPI 2021 from serum creatinine)" in f.message and "below 60" in f.message
        egfr = next(e for e in f.evidence if e.name == "egfr")
        assert egfr.value is not None and 35 < egfr.value < 45

    def test_only_while_cyclosporine_is_taken(self) -> None:
        nights = dict(nightly(cyclosporine_low_gfr(), -10, 260, step=2))
        assert sorted(d for d, a in nights.items() if a.findings) == [d for d in sorted(nights) if 0 <= d <= 90]
        assert all(open_alerts(a) <= {CSA_GFR} for a in nights.values())


# ------------------------------------ scenario 5: titer falling on supportive care (Rodriguez)


def rodriguez(extra: tuple[AnyEvent, ...] = ()) -> list[AnyEvent]:
    return [patient(birth_date="1970-10-30", sex="male", weight_kg=82, height_cm=179), acei(-60),
            upd(5.5, 0), titer(48, 0), alb(29, 0), creat(84, 0),
            upd(4.6, 90), titer(38, 90), alb(30, 90), creat(85, 90),
            upd(2.6, 180), titer(20, 180), alb(33, 180), creat(84, 180), upd(2.3, 190),
            upd(1.8, 270), titer(8, 270), alb(35, 270), creat(83, 270),
            upd(1.1, 360), titer(3, 360), alb(37, 360), creat(84, 360), *extra]


FALLING = ("titer_falling_supportive", "info", iso(90))


class TestTiterFallingOnSupportiveCare:
    """Titer falling on supportive care: Rodriguez-Spanish cohort, CKJ/NDT 2021 (PMC8690096: on
    conservative therapy an anti-PLA2R <= 97.5 RU/mL with a >= 15% fall at 3 months predicted a >= 50%
    proteinuria reduction at 6 months); seed review section 2.1 (non-immunosuppressive therapy may be
    extended by 3-6 months); KDIGO 2021 (moderate risk: nephrotic, anti-PLA2R <= 50).

    The patient: ACE inhibitor only; 5.5 g/d, anti-PLA2R 48 -> 38 -> 20 -> 8 -> 3 RU/mL every 3 months;
    proteinuria 4.6 g/d at 3 months, 2.6 and 2.3 g/d at 6 months (partial remission), then 1.1 g/d.

    The monitor must conclude: `titer_falling_supportive` (info) from day 90 (38 is 21% below 48) with
    one fingerprint while the titer keeps falling from a positive value (days 180 and 270), resolved on
    day 360 (the value 90 days before, 8 RU/mL, is negative). Not raised once a calcineurin inhibitor
    is started, nor while eGFR declines.
    """

    CHECKPOINTS = (
        cp(0, "nephrotic", "moderate"),
        cp(89, "nephrotic", "moderate"),
        cp(90, "nephrotic", "moderate", FALLING),
        cp(190, "partial_remission", "low", FALLING),
        cp(359, "partial_remission", "low", FALLING),
        cp(360, "partial_remission", "low"),
    )

    @pytest.mark.parametrize("c", CHECKPOINTS, ids=str)
    def test_checkpoint(self, c: Checkpoint) -> None:
        check(rodriguez(), c)

    def test_message_gives_the_fall(self) -> None:
        f = finding(assess_on(rodriguez(), 200), "titer_falling_supportive")
        assert "fell from 38 RU/mL on 2025-04-01 to 20 RU/mL on 2025-06-30 (47% lower over 90 days)" in f.message
        assert "3-6 months" in f.message

    def test_not_on_a_calcineurin_inhibitor(self) -> None:
        events = rodriguez((med(PID, "tacrolimus", 100, 1, "mg", frequency="bid"), tac(6, 130)))
        assert [d for d, a in nightly(events, 100, 360, step=10)
                if any(f.rule == "titer_falling_supportive" for f in a.findings)] == []
        assert FALLING in open_alerts(assess_on(events, 99))  # the day before tacrolimus

    def test_not_while_egfr_declines(self) -> None:
        # creatinine 84 -> 125 umol/L: eGFR about 35% below its baseline (egfr_decline, warning)
        events = [e for e in rodriguez() if not (isinstance(e, LabResult) and e.analyte == "serum_creatinine"
                                               and e.effective_date.isoformat() == iso(180))]
        a = assess_on([*events, creat(125, 180)], 200)
        assert {f.rule for f in a.findings} == {"egfr_decline"}


# ------------------------------------------------------- ordering, duplicates, late results


SCENARIOS = {
    "leukopenia": (ponticelli_leukopenia, TestLeukopeniaOnCyclophosphamide.CHECKPOINTS),
    "tacrolimus": (tacrolimus_non_responder, TestTacrolimusNonResponder.CHECKPOINTS),
    "mentor": (mentor_redosed, TestMentorPartialResponderRedosed.CHECKPOINTS),
    "csa_gfr": (cyclosporine_low_gfr, TestCyclosporineInImpairedKidneyFunction.CHECKPOINTS),
    "rodriguez": (rodriguez, TestTiterFallingOnSupportiveCare.CHECKPOINTS),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_shuffled_duplicated_and_late_events_give_identical_findings(name: str) -> None:
    build, checkpoints = SCENARIOS[name]
    events = build()
    rng = random.Random(f"therapy-scenario:{name}")
    noisy = [*events, *(_reparsed(e) for e in rng.sample(events, k=len(events) // 3)), *rng.sample(events, k=5)]
    rng.shuffle(noisy)
    for c in checkpoints:
        assert _comparable(assess_on(noisy, c.on)) == _comparable(assess_on(events, c.on)), c


def test_units_of_a_blood_count_do_not_change_the_finding() -> None:
    """The day-65 count reported in cells/uL by another laboratory: the same critical finding."""
    events = [e for e in ponticelli_leukopenia()
              if not (isinstance(e, LabResult) and e.analyte in ("wbc", "neutrophils") and e.effective_date.isoformat() == iso(65))]
    events += [lab(PID, "wbc", 2100, "cells/uL", 65), lab(PID, "neutrophils", 800, "/uL", 65)]
    f = finding(assess_on(events, 65), "cytopenia")
    assert (f.severity, f.episode) == ("critical", LOW)
    assert "0.8 ×10⁹/L (800 /uL)" in f.message
