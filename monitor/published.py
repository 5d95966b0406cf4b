"""Published outcome figures shown beside the clinic's own, each with its source: the one data table.

Only figures our sources state are listed; a regimen with none says so in the report. Every figure is
the trial's own endpoint under its own inclusion criteria (all enrolled nephrotic patients with
membranous nephropathy; MENTOR and GEMRITUX after months of supportive care), so they orient, they do
not benchmark: a clinic's cohort is not a randomised trial (monitor.outcome_report.CAVEAT).

Endpoints: `remission` = complete or partial remission (each trial's definition, close to KDIGO's);
`complete_remission`; `relapse` = relapse after remission; `months` = the time point (None: over the
course of the disease, not at a fixed time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monitor.courses import SUPPORTIVE

Endpoint = Literal["remission", "complete_remission", "relapse"]

MENTOR = ("MENTOR", ("Fervenza FC et al. Rituximab or cyclosporine in the treatment of membranous nephropathy. "
                    "N Engl J Med 2019;381:36-46"))
GEMRITUX = ("GEMRITUX", ("Dahan K et al. Rituximab for severe membranous nephropathy: a 6-month trial with "
                        "extended follow-up. J Am Soc Nephrol 2017;28:348-358"))
RI_CYCLO = ("RI-CYCLO", ("Scolari F et al. Rituximab or cyclophosphamide in the treatment of membranous "
                        "nephropathy: the RI-CYCLO randomized trial. J Am Soc Nephrol 2021;32:972-982"))
STARMEN = ("STARMEN", ("Fernandez-Juarez G et al. The STARMEN trial indicates that alternating treatment with "
                      "corticosteroids and cyclophosphamide is superior to sequential treatment with tacrolimus "
                      "and rituximab in primary membranous nephropathy. Kidney Int 2021;99:986-998"))
SEED = ("seed review", ("2023 Chinese-language review of the treatment of idiopathic membranous nephropathy "
                        "(the source of this project's rule book)"))


@dataclass(frozen=True)
class PublishedFigure:
    regimen: str  # a monitor.courses.REGIMENS key
    source: str  # short name
    citation: str
    arm: str  # the arm as the publication names it
    endpoint: Endpoint
    months: float | None  # time point; None: over the course of the disease
    percent: float
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"regimen": self.regimen, "source": self.source, "citation": self.citation, "arm": self.arm,
                "endpoint": self.endpoint, "months": self.months, "percent": self.percent,
                "note": self.note or None}


def _f(regimen: str, src: tuple[str, str], arm: str, endpoint: Endpoint, months: float | None,
       percent: float, note: str = "") -> PublishedFigure:
    return PublishedFigure(regimen, src[0], src[1], arm, endpoint, months, percent, note)


PUBLISHED: tuple[PublishedFigure, ...] = (
    # MENTOR: rituximab 1 g x2 (repeated at 6 months if partial response) vs cyclosporine 3.5 mg/kg/d
    # for 12 months; cyclosporine was stopped at 12 months, hence its fall by 24 months (relapses)
    _f("anti_cd20", MENTOR, "rituximab", "remission", 12, 60.0),
    _f("anti_cd20", MENTOR, "rituximab", "remission", 24, 60.0),
    _f("cyclosporine", MENTOR, "cyclosporine", "remission", 12, 52.0),
    _f("cyclosporine", MENTOR, "cyclosporine", "remission", 24, 20.0,
       "cyclosporine stopped at 12 months; relapses after withdrawal"),
    # GEMRITUX: rituximab 375 mg/m2 days 1 and 8 + non-immunosuppressive antiproteinuric treatment
    # (NIAT) vs NIAT alone (= supportive care)
    _f("anti_cd20", GEMRITUX, "rituximab + NIAT", "remission", 6, 35.1),
    _f("anti_cd20", GEMRITUX, "rituximab + NIAT", "remission", 17, 64.9,
       "at a median follow-up of 17 months, not a fixed time point"),
    _f(SUPPORTIVE, GEMRITUX, "NIAT alone", "remission", 6, 21.1),
    _f(SUPPORTIVE, GEMRITUX, "NIAT alone", "remission", 17, 34.2,
       "at a median follow-up of 17 months, not a fixed time point"),
    # RI-CYCLO: rituximab 1 g x2 vs cyclic steroid-cyclophosphamide (modified Ponticelli), 12 months
    _f("anti_cd20", RI_CYCLO, "rituximab", "remission", 12, 62.0),
    _f("anti_cd20", RI_CYCLO, "rituximab", "complete_remission", 12, 16.0),
    _f("cyclophosphamide", RI_CYCLO, "cyclic steroid-cyclophosphamide", "remission", 12, 73.0),
    _f("cyclophosphamide", RI_CYCLO, "cyclic steroid-cyclophosphamide", "complete_remission", 12, 32.0),
    # STARMEN: 6 months of alternating steroid-cyclophosphamide vs tacrolimus 6 months (tapered to 9)
    # with rituximab 1 g at month 6; remission at 24 months
    _f("cyclophosphamide", STARMEN, "corticosteroid-cyclophosphamide", "remission", 24, 83.0),
    _f("tacrolimus", STARMEN, "tacrolimus then rituximab (sequential)", "remission", 24, 58.0,
       "tacrolimus followed by rituximab at month 6, not tacrolimus alone"),
    # the seed review
    _f(SUPPORTIVE, SEED, "supportive care", "remission", None, 33.0,
       "about one third remit spontaneously, over the course of the disease"),
    _f("anti_cd20", SEED, "rituximab", "relapse", None, 25.0,
       "of PLA2R-associated membranous nephropathy after remission on rituximab"),
    _f("tacrolimus", SEED, "tacrolimus", "relapse", None, 50.0, "about half relapse after withdrawal"),
    _f("acth", SEED, "ACTH", "remission", 9, 55.0),
)


def published_for(regimen: str) -> tuple[PublishedFigure, ...]:
    return tuple(p for p in PUBLISHED if p.regimen == regimen)
