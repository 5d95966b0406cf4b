"""monitor.outcome_report (Kaplan-Meier per regimen, alerts per patient-year) and monitor.published."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from monitor.courses import REGIMENS
from monitor.outcome_report import CAVEAT, AlertMark, build_report
from monitor.outcomes import CourseOutcome
from monitor.published import PUBLISHED, published_for

T0 = date(2024, 1, 1)
AS_OF = date(2027, 1, 1)


def course(regimen: str = "anti_cd20", remission: int | None = None, follow: int = 800, start: int = 0,
           relapse: int | None = None, titer: float | None = None, negative: int | None = None,
           excluded: str | None = None, exposure: int | None = None, line: int = 1) -> CourseOutcome:
    s = T0 + timedelta(days=start)
    rem = s + timedelta(days=remission) if remission is not None else None
    end = s + timedelta(days=follow)
    return CourseOutcome(
        regimen=regimen, start=s, line=line, agents=(), exposure_end=s + timedelta(days=exposure or follow),
        baseline_g_per_day=6.0, excluded=excluded, follow_up_end=end, remission=rem,
        remission_kind="partial" if rem else None, complete_remission=None,
        relapse=rem + timedelta(days=relapse) if rem and relapse is not None else None,
        relapse_follow_up_end=end if rem else None, baseline_titer=titer,
        titer_follow_up_end=end if titer is not None else None,
        immunological_remission=s + timedelta(days=negative) if negative is not None else None)


def report(courses: list[CourseOutcome], alerts: list[AlertMark] = ()):  # type: ignore[no-untyped-def,assignment]
    return build_report({f"P{i}": [c] for i, c in enumerate(courses)}, alerts, AS_OF)


def one(rep, key: str = "anti_cd20"):  # type: ignore[no-untyped-def]
    return next(r for r in rep.regimens if r.regimen == key)


def test_without_censoring_kaplan_meier_is_the_plain_proportion() -> None:
    r = one(report([course(remission=100)] * 3 + [course(remission=300)] * 3 + [course()] * 4))
    six, twelve, twentyfour = r.remission
    assert (six.percent, six.at_risk) == (pytest.approx(30.0), 7)
    assert (twelve.percent, twelve.at_risk) == (pytest.approx(60.0), 4)
    assert twentyfour.percent == pytest.approx(60.0)  # followed 800 days > 24 months
    for e in r.remission:
        assert e.low < e.percent < e.high  # type: ignore[operator]
    assert (r.courses, r.evaluable, r.remissions) == (10, 10, 6)


def test_censoring_is_accounted_for() -> None:
    r = one(report([course(remission=100), course(follow=150), course(remission=200), course(follow=400)]))
    six, twelve, twentyfour = r.remission
    assert six.percent == pytest.approx(25.0)  # 1 of 4 at risk
    assert twelve.percent == pytest.approx(62.5)  # 1 - 0.75 x (1 - 1/2)
    assert twentyfour.percent is None and twentyfour.at_risk == 0  # nobody followed 24 months


def test_everyone_remitted_or_nobody_uses_the_exact_interval() -> None:
    r = one(report([course(remission=50)] * 5))
    twelve = r.remission[1]
    assert twelve.percent == 100.0 and twelve.high == 100.0
    assert twelve.low == pytest.approx(47.8, abs=0.1)  # Clopper-Pearson 5/5
    r = one(report([course()] * 10))
    assert r.remission[0].percent == 0.0 and r.remission[0].low == 0.0
    assert r.remission[0].high == pytest.approx(30.8, abs=0.1)  # Clopper-Pearson 0/10


def test_relapse_and_immunological_remission() -> None:
    courses = [course(remission=100, relapse=200, titer=80, negative=60),
               course(remission=100, titer=80, negative=120), course(remission=100, titer=80, negative=90),
               course()]  # no titer >= 14 at start: not followed for immunological remission
    r = one(report(courses))
    assert (r.remissions, r.relapsed) == (3, 1)
    assert r.relapse[0].percent == pytest.approx(100 / 3)  # relapse 200 days after remission, by 12 months
    assert (r.titer_positive, r.immunological_remissions) == (3, 3)
    assert r.immunological_median is not None and r.immunological_median.days == 90


def test_excluded_courses_are_counted_not_estimated() -> None:
    r = one(report([course(remission=100), course(excluded="not nephrotic at baseline", remission=50)]))
    assert (r.courses, r.evaluable, r.excluded) == (2, 1, {"not nephrotic at baseline": 1})
    assert r.remission[0].percent == 100.0


def test_alerts_per_patient_year_count_each_course_window() -> None:
    supportive = course("supportive", start=-100, follow=100, exposure=100, line=0)
    rtx = course(start=0, follow=1096, exposure=1096)  # T0 + 1096 days = AS_OF: the latest window
    alerts = [AlertMark("P", T0 - timedelta(days=50), "warning"),  # supportive care
              AlertMark("P", T0, "info"),  # the day the course starts: the course's
              AlertMark("P", AS_OF, "critical"),  # the report date: still counted
              AlertMark("P", AS_OF + timedelta(days=1), "critical")]  # after it: not
    rep = build_report({"P": [supportive, rtx]}, alerts, AS_OF)
    sup, anti = one(rep, "supportive"), one(rep, "anti_cd20")
    assert (sup.alerts, sup.serious_alerts) == (1, 1)
    assert sup.alerts_per_patient_year == pytest.approx(365.25 / 100)
    assert (anti.alerts, anti.serious_alerts) == (2, 1)
    assert anti.alerts_per_patient_year == pytest.approx(2 / (1096 / 365.25))


def test_regimens_in_registry_order_unused_listed_published_attached() -> None:
    rep = report([course("tacrolimus"), course("anti_cd20"), course("supportive", line=0)])
    assert [r.regimen for r in rep.regimens] == ["anti_cd20", "tacrolimus", "supportive"]
    assert "mycophenolate" in rep.unused and "anti_cd20" not in rep.unused
    assert one(rep).published == published_for("anti_cd20")
    d = rep.as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["caveat"] == CAVEAT and CAVEAT.startswith("Not a randomised trial")
    assert rep.courses == 2  # supportive-care phases are not immunosuppressive courses


def test_published_table_holds_the_trial_figures_with_sources() -> None:
    got = {(p.source, p.regimen, p.endpoint, p.months, p.percent) for p in PUBLISHED}
    expected = {
        ("MENTOR", "anti_cd20", "remission", 12, 60.0), ("MENTOR", "anti_cd20", "remission", 24, 60.0),
        ("MENTOR", "cyclosporine", "remission", 12, 52.0), ("MENTOR", "cyclosporine", "remission", 24, 20.0),
        ("GEMRITUX", "anti_cd20", "remission", 6, 35.1), ("GEMRITUX", "supportive", "remission", 6, 21.1),
        ("GEMRITUX", "anti_cd20", "remission", 17, 64.9), ("GEMRITUX", "supportive", "remission", 17, 34.2),
        ("RI-CYCLO", "anti_cd20", "remission", 12, 62.0), ("RI-CYCLO", "cyclophosphamide", "remission", 12, 73.0),
        ("RI-CYCLO", "anti_cd20", "complete_remission", 12, 16.0),
        ("RI-CYCLO", "cyclophosphamide", "complete_remission", 12, 32.0),
        ("STARMEN", "cyclophosphamide", "remission", 24, 83.0), ("STARMEN", "tacrolimus", "remission", 24, 58.0),
        ("seed review", "supportive", "remission", None, 33.0), ("seed review", "anti_cd20", "relapse", None, 25.0),
    }
    assert expected <= got
    for p in PUBLISHED:
        assert p.regimen in REGIMENS and p.citation and 0 < p.percent <= 100
