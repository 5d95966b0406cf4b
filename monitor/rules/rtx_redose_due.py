"""Rule `rtx_redose_due`: six months after an anti-CD20 course, proteinuria has fallen but not remitted
completely, the situation in which MENTOR repeated the course.

Definition (docs/clinical-rules.md, "Rules for every therapy of the seed review"): 183 to 240 days
after the first dose of the latest anti-CD20 course, proteinuria has fallen by at least 25% from the
course baseline, there is no complete remission, and no anti-CD20 dose has been given since day 150
of the course. Severity info. Resolves with a further dose, a complete remission, or once day 240 has
passed.

Sources: Fervenza FC et al. NEJM 2019;381:36-46 (MENTOR: rituximab 1 g on days 1 and 15, repeated at 6
months when proteinuria had fallen by >= 25% without complete remission); 2023 review of IMN treatment.

Readings where the rule book leaves room:
- The proteinuria criterion is rtx_non_response's own (rtx_non_response.course_proteinuria): the
  course baseline (monitor.therapy.course_baseline_proteinuria, the latest proteinuria in the
  lookback up to the first dose), the latest proteinuria drawn at least 90 days after the first dose
  (an earlier value shows clearance still in progress), and the 25% comparison. This rule fires on
  its complement: < 25% is failure there, >= 25% (exactly 25% included) a partial response here. No
  baseline or no judged value: silent. Both rules can be raised together when the titer criterion of
  rtx_non_response fires; which alert is shown is the alert lifecycle's decision (rtx_non_response
  inhibits this one), not this rule's.
- "No CR" = no complete remission confirmed between the first dose and as_of, and the patient not in
  complete remission on as_of (a remission confirmed before the course counts too).
- "No anti-CD20 dose since day 150" = no dose of the course dated on or after first dose + 150 days.
  A dose of any agent more than 30 days after the course's last one starts a new course, which is
  then the latest course, so this rule judges that one from its own day 0.
- The window is inclusive at both ends: day 183 and day 240 fire, day 182 and day 241 do not.
"""

from __future__ import annotations

from datetime import date, timedelta

from monitor.events import LabResult
from monitor.findings import Evidence, Finding
from monitor.rules import rtx_non_response
from monitor.rules._common import num, shown
from monitor.rules.base import RuleContext
from monitor.therapy import AntiCD20Course
from monitor.validity import earliest

RULE_ID = "rtx_redose_due"
REFERENCE = ("Fervenza FC et al. NEJM 2019;381:36-46 (MENTOR: the course was repeated at 6 months when "
             "proteinuria had fallen by >= 25% without complete remission); 2023 review of IMN treatment")

# MENTOR: the response is judged, and the repeat course given, 6 months after the first dose
WINDOW_FROM_DAYS = 183
# the rule book: the question stays open until day 240 (about 8 months), then the moment has passed
WINDOW_TO_DAYS = 240
# the rule book: a dose from day 150 on is already the repeat (or a maintenance dose): nothing to ask
NO_DOSE_SINCE_DAY = 150
# MENTOR: a fall of >= 25% without complete remission (rtx_non_response's threshold, one definition)
MIN_PROTEINURIA_REDUCTION = rtx_non_response.MIN_PROTEINURIA_REDUCTION
# values shown in messages and evidence stay on their side of these (display precision)
DISPLAY_LIMITS = {"proteinuria_reduction": (MIN_PROTEINURIA_REDUCTION * 100,)}


def _complete_remission(ctx: RuleContext, course: AntiCD20Course) -> bool:
    if ctx.remission.state == "complete_remission":
        return True
    return any(r.kind == "complete" and course.first_dose <= r.confirmed_at <= ctx.as_of
               for r in ctx.remission.remissions)


def _dosed_since(course: AntiCD20Course) -> date | None:
    """The first dose of the course dated on or after day 150, if any."""
    cutoff = course.first_dose + timedelta(days=NO_DOSE_SINCE_DAY)
    return next((d.start for d in course.doses if d.start >= cutoff), None)


def _message(course: AntiCD20Course, baseline: LabResult, latest: LabResult, reduction: float) -> str:
    # the window's days, not "N days after": the message stays the same from day to day
    last_day = course.first_dose + timedelta(days=WINDOW_TO_DAYS)
    return (f"In days {WINDOW_FROM_DAYS}-{WINDOW_TO_DAYS} after the first {course.agent} dose of the course "
            f"started {course.first_dose}, "
            f"proteinuria is {shown(latest)} on {latest.effective_date}, {num(reduction * 100, 0)}% below the "
            f"pre-course baseline of {shown(baseline)} ({baseline.effective_date}), without complete remission, "
            f"and no further anti-CD20 dose has been given since day {NO_DOSE_SINCE_DAY}. In MENTOR, patients "
            f"whose proteinuria had fallen by at least {MIN_PROTEINURIA_REDUCTION:.0%} but not remitted "
            f"completely at 6 months received a second course; whether to repeat anti-CD20 therapy may be worth "
            f"considering (this reminder lapses after day {WINDOW_TO_DAYS}, {last_day}).")


def evaluate(ctx: RuleContext) -> list[Finding]:
    if not ctx.courses:
        return []
    course = ctx.courses[-1]  # only the latest course: a new course is a new episode
    days = (ctx.as_of - course.first_dose).days
    if not WINDOW_FROM_DAYS <= days <= WINDOW_TO_DAYS or _dosed_since(course) is not None:
        return []
    prot = rtx_non_response.course_proteinuria(ctx, course)
    if prot is None or prot.latest is None or prot.reduction is None or prot.failed:
        return []  # no baseline, nothing judged yet, or a clinical failure (rtx_non_response's)
    if _complete_remission(ctx, course):
        return []
    baseline, latest, reduction = prot.baseline, prot.latest, prot.reduction
    evidence = [Evidence.of_medication(course.doses[0], note="first dose of the course"),
                Evidence.of_lab(baseline, note="pre-course baseline proteinuria"),
                Evidence.of_lab(latest, note="latest proteinuria"),
                Evidence.derived("proteinuria_reduction", reduction * 100, "%", latest.effective_at,
                                 f"from baseline; MENTOR repeated the course from "
                                 f"{MIN_PROTEINURIA_REDUCTION:.0%} without complete remission")]
    return [ctx.finding(RULE_ID, course.episode, "info", _message(course, baseline, latest, reduction),
                        evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the latest course's window opening (day 183) or lapsing
    (day 241). Within it the finding reads results, remissions and doses only."""
    if not ctx.courses:
        return None
    first = ctx.courses[-1].first_dose
    return earliest(ctx.as_of, [first + timedelta(days=WINDOW_FROM_DAYS),
                                first + timedelta(days=WINDOW_TO_DAYS + 1)])
