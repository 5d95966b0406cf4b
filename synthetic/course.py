"""Simulation primitives: latent disease curves, measurement noise, lab units, visit schedules.

One `PatientSim` collects the events of one simulated patient as plain NDJSON-contract dicts
(docs/input-contract.md, "NDJSON") — no pydantic here, so a million patients can be generated quickly.

Modelling choices (and where they come from):
- Disease activity is a latent, piecewise log-linear curve per series (proteinuria, anti-PLA2R,
  a creatinine multiplier, drug troughs): remission and titer decay are roughly exponential, and a
  curve is fully described by a few knots (day, value). Measurements sample the curve.
- Measurement noise is multiplicative log-normal, truncated at +/-2 SD so that one draw can never
  fake a threshold crossing that the archetype does not intend. Coefficients of variation:
  proteinuria and drug troughs 12% (the 10-15% day-to-day variation of a spot/24-h measurement and
  of a C0 level), anti-PLA2R 8% (Euroimmun ELISA inter-assay CV), albumin 4% and creatinine 4.5%
  (analytical + within-subject variation, EFLM Biological Variation Database). Draws come from a
  table of 4096 quantiles (see _noise_table): as good as continuous at lab precision, and fast.
- Sampling: proteinuria with albumin and creatinine every 2-4 months on supportive care and monthly
  on treatment; anti-PLA2R every 3-4 months, every 8-11 weeks on treatment and for 12 months after
  anti-CD20 (KDIGO21 asks for it at 3 and 6 months); CNI troughs monthly; CD19 2-4 weeks after the
  last anti-CD20 dose. On treatment the gaps stay inside the monitoring_overdue limits (90/90/60
  days), so only the lost-to-follow-up course raises that rule.
- Serum albumin follows proteinuria: A = A_hi - k * ln(1 + P) g/L (nephrotic-range loss lowers
  albumin sub-linearly), with a per-patient A_hi and k, optionally floored.
- Serum creatinine is the patient's baseline times a latent multiplier; the baseline is solved from
  a target eGFR with the race-free CKD-EPI 2021 equation (Inker, NEJM 2021) so that eGFR starts
  where the archetype wants it.
- Units are chosen per patient (one laboratory per patient), in the mix that European and US labs
  report: UPCR in mg/mmol, mg/g or g/g or a 24-h collection; albumin in g/L or g/dL; creatinine in
  umol/L or mg/dL; CsA/tacrolimus in ng/mL, ug/L or nmol/L; CD19 in cells/uL, 10^6/L or 10^9/L;
  blood counts in 10^9/L, G/L, K/uL, 10*3/uL or cells/uL.
- Blood counts (white cells and neutrophils, CV 10% and 14%: within-subject variation, EFLM) only
  on cyclophosphamide: weekly for its first 8 weeks, then every 7-8 weeks to a month after it (CJASN
  review table of IMN protocols).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from monitor.proteinuria import KDIGO_MG_PER_MMOL_PER_G_PER_DAY

SOURCE = "synthetic"
NOISE_CLIP_SD = 2.0
NOISE_CV: dict[str, float] = {
    "proteinuria_24h": 0.12, "upcr": 0.12, "anti_pla2r": 0.08, "serum_albumin": 0.04,
    "serum_creatinine": 0.045, "csa_trough": 0.12, "tac_trough": 0.12, "cd19_count": 0.0,
    "wbc": 0.10, "neutrophils": 0.14,
}
PLA2R_DETECTION_LIMIT = 2.0  # Euroimmun anti-PLA2R ELISA reports "< 2 RU/mL" below this
NOISE_TABLE_BITS = 12
_ANALYTE_SLOTS = {a: i for i, a in enumerate(
    ("anti_pla2r", "proteinuria_24h", "upcr", "serum_albumin", "serum_creatinine", "csa_trough",
     "tac_trough", "cd19_count", "wbc", "neutrophils"))}
_MED_SLOT = 32  # medications sort after the labs of their day

# (analyte, unit, factor: latent = reported x factor, decimals of the reported value), weight
UnitChoice = tuple[str, str, float, int]
UNIT_MIX: dict[str, tuple[tuple[UnitChoice, float], ...]] = {
    "proteinuria": (
        (("proteinuria_24h", "g/24h", 1.0, 2), 0.20),
        (("proteinuria_24h", "mg/24h", 0.001, 0), 0.10),
        (("upcr", "g/g", 1.0, 2), 0.15),
        (("upcr", "mg/g", 0.001, 0), 0.20),
        # the latent value is proteinuria as the monitor reads it (g/d): a lab reporting mg/mmol
        # reports it by KDIGO's pairing of units (monitor.proteinuria: mg/mmol / 100 ~ g/d)
        (("upcr", "mg/mmol", 1 / KDIGO_MG_PER_MMOL_PER_G_PER_DAY, 1), 0.35),
    ),
    "serum_albumin": ((("serum_albumin", "g/L", 1.0, 0), 0.7), (("serum_albumin", "g/dL", 10.0, 1), 0.3)),
    "serum_creatinine": (
        (("serum_creatinine", "umol/L", 1.0, 0), 0.45),
        (("serum_creatinine", "\u00b5mol/L", 1.0, 0), 0.15),
        (("serum_creatinine", "mg/dL", 88.42, 2), 0.40),
    ),
    "anti_pla2r": ((("anti_pla2r", "RU/mL", 1.0, 1), 0.85), (("anti_pla2r", "U/mL", 1.0, 1), 0.15)),
    "csa_trough": (
        (("csa_trough", "ng/mL", 1.0, 0), 0.6),
        (("csa_trough", "\u00b5g/L", 1.0, 0), 0.2),
        (("csa_trough", "nmol/L", 1.2026, 1), 0.2),
    ),
    "tac_trough": (
        (("tac_trough", "ng/mL", 1.0, 1), 0.8),
        (("tac_trough", "ug/L", 1.0, 1), 0.1),
        (("tac_trough", "nmol/L", 0.8040, 2), 0.1),
    ),
    "cd19_count": (
        (("cd19_count", "cells/uL", 1.0, 0), 0.5),
        (("cd19_count", "cells/\u00b5L", 1.0, 0), 0.1),
        (("cd19_count", "10^6/L", 1.0, 0), 0.25),
        (("cd19_count", "10^9/L", 1000.0, 3), 0.15),
    ),
}
# Blood counts are drawn only by the courses that monitor them (cyclophosphamide): their units are
# chosen when a patient's first count is drawn, so that adding them left every other patient's random
# draws, and so the rest of the cohort, as it was.
BLOOD_COUNT_UNIT_MIX: dict[str, tuple[tuple[UnitChoice, float], ...]] = {
    "wbc": (
        (("wbc", "10^9/L", 1.0, 1), 0.50), (("wbc", "G/L", 1.0, 1), 0.15), (("wbc", "K/uL", 1.0, 1), 0.20),
        (("wbc", "10*3/uL", 1.0, 1), 0.10), (("wbc", "cells/uL", 0.001, 0), 0.05),
    ),
    "neutrophils": (
        (("neutrophils", "10^9/L", 1.0, 2), 0.50), (("neutrophils", "G/L", 1.0, 2), 0.15),
        (("neutrophils", "K/uL", 1.0, 2), 0.20), (("neutrophils", "10*3/uL", 1.0, 2), 0.10),
        (("neutrophils", "cells/uL", 0.001, 0), 0.05),
    ),
}

_ISO: dict[int, str] = {}


def iso(ordinal: int) -> str:
    """ISO date of a proleptic ordinal, cached (a cohort uses a few thousand distinct days)."""
    s = _ISO.get(ordinal)
    if s is None:
        s = _ISO[ordinal] = date.fromordinal(ordinal).isoformat()
    return s


def _noise_table(cv: float) -> tuple[float, ...]:
    """exp(cv x z) for 2^12 equally likely quantiles z of a standard normal truncated at 2 SD.

    Drawing an index with getrandbits is ~15x faster than random.gauss, and 4096 quantiles are
    indistinguishable from a continuous log-normal at lab precision.
    """
    n = 1 << NOISE_TABLE_BITS
    lo, hi = _phi(-NOISE_CLIP_SD), _phi(NOISE_CLIP_SD)
    return tuple(math.exp(cv * _probit(lo + (hi - lo) * (i + 0.5) / n)) for i in range(n))


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _probit(p: float) -> float:
    """Inverse standard normal CDF by bisection (used once per table entry at import)."""
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _phi(mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


_NOISE_TABLES: dict[float, tuple[float, ...]] = {cv: _noise_table(cv) for cv in set(NOISE_CV.values()) if cv}


def randint(rng: random.Random, a: int, b: int) -> int:
    """Uniform integer in [a, b] (random.randint semantics, ~3x faster)."""
    return a + int(rng.random() * (b - a + 1))


def pick(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    """One option by weight (the weights of a table sum to 1)."""
    u = rng.random()
    for value, weight in options:
        u -= weight
        if u < 0:
            return value
    return options[-1][0]


def choose_units(rng: random.Random) -> dict[str, UnitChoice]:
    """The reporting units of one patient's laboratory."""
    return {key: pick(rng, options) for key, options in UNIT_MIX.items()}


Curve = Callable[[float], float]


def curve(*knots: tuple[float, float], log: bool = True) -> Curve:
    """Piecewise-linear interpolation through (day, value) knots, flat outside them.

    With log=True the interpolation is in log space: a straight segment is an exponential decay or
    growth, which is how proteinuria and anti-PLA2R titers change under treatment.
    """
    days = [float(k[0]) for k in knots]
    vals = [math.log(max(k[1], 1e-9)) if log else float(k[1]) for k in knots]
    first, last, n = days[0], days[-1], len(days)

    def at(t: float) -> float:
        if t <= first:
            v = vals[0]
        elif t >= last:
            v = vals[-1]
        else:
            i = bisect_right(days, t)
            t0, t1 = days[i - 1], days[i]
            v = vals[i - 1] + (vals[i] - vals[i - 1]) * (t - t0) / (t1 - t0)
        return math.exp(v) if log else v

    if n == 1:
        const = knots[0][1]
        return lambda t: const
    return at


def creatinine_for_egfr(egfr: float, age: float, sex: str) -> float:
    """Serum creatinine (umol/L) giving `egfr` by CKD-EPI 2021 (Inker NEJM 2021), inverted."""
    kappa, alpha, factor = (0.7, -0.241, 1.012) if sex == "female" else (0.9, -0.302, 1.0)
    at_kappa = 142.0 * 0.9938 ** age * factor  # eGFR when Scr == kappa
    ratio = (egfr / at_kappa) ** (1 / -1.200) if egfr <= at_kappa else (egfr / at_kappa) ** (1 / alpha)
    return ratio * kappa * 88.42


class PatientSim:
    """Collects one patient's events; days are relative to the first visit (day 0)."""

    def __init__(self, rng: random.Random, patient_id: str, day0: date, end: date) -> None:
        self.rng = rng
        self.pid = patient_id
        self.o0 = day0.toordinal()
        self.horizon = end.toordinal() - self.o0  # last simulated day (inclusive)
        self.units = choose_units(rng)
        self.sex = "male" if rng.random() < 0.65 else "female"  # IMN is ~2:1 male (KDIGO21)
        self.age = rng.uniform(30.0, 75.0)
        male = self.sex == "male"
        self.weight = round(rng.uniform(65, 100) if male else rng.uniform(52, 85), 1)
        self.height = round(rng.uniform(165, 192) if male else rng.uniform(152, 176))
        self.items: dict[int, dict[str, Any]] = {}  # key: ordinal x 64 + slot (clinical order)
        self.n_meds = 0
        # per kind: analyte, unit, canonical -> reported x 10^decimals, 10^decimals, slot, noise, id prefix
        self._lab_spec = {kind: self._spec(choice) for kind, choice in self.units.items()}
        # latent state set by the archetype
        self.proteinuria: Curve = curve((0, 1.0))
        self.titer: Curve | None = None
        self.creatinine_baseline = creatinine_for_egfr(rng.uniform(65, 105), self.age, self.sex)
        self.creatinine: Curve = curve((0, 1.0))
        self.albumin_hi = rng.uniform(42.0, 46.0)
        self.albumin_k = 8.5
        self.albumin_floor = 28.0  # 28 x 0.92 (-2 SD) > 25: no accidental albumin alert
        # blood counts (x10^9/L), set by the courses that draw them: a normal white-cell count and
        # the neutrophils' share of it; 5.0 / 1.22 (-2 SD) > 3.0 and 5.0 x 0.55 / 1.32 > 1.0, so a
        # normal count never looks like cytopenia by noise alone
        self.wbc: Curve | None = None
        self.neutrophil_share: Curve = curve((0, 0.6))

    def _spec(self, choice: UnitChoice) -> tuple[Any, ...]:
        analyte, unit, factor, nd = choice
        return (analyte, unit, 10 ** nd / factor, 10 ** nd, _ANALYTE_SLOTS[analyte],
                _NOISE_TABLES.get(NOISE_CV[analyte]), f"{self.pid}:{analyte}:")

    # ---- patient -----------------------------------------------------------------------------
    def patient_record(self) -> dict[str, Any]:
        birth = date.fromordinal(self.o0 - round(self.age * 365.25))
        return {"type": "patient", "patient_id": self.pid, "birth_date": birth.isoformat(), "sex": self.sex,
                "weight_kg": self.weight, "height_cm": self.height, "source": SOURCE, "source_id": self.pid}

    def set_albumin_nadir(self, nadir: float, at_proteinuria: float) -> None:
        """Make albumin reach `nadir` g/L when proteinuria is `at_proteinuria` g/d (no floor)."""
        self.albumin_k = (self.albumin_hi - nadir) / math.log1p(at_proteinuria)
        self.albumin_floor = 0.0

    def albumin_at(self, t: float) -> float:
        a = self.albumin_hi - self.albumin_k * math.log1p(self.proteinuria(t))
        return max(self.albumin_floor, a)

    # ---- events ------------------------------------------------------------------------------
    def labs(self, kind: str, days: Sequence[int], means: Sequence[float]) -> None:
        """Results of `kind` (a UNIT_MIX key) on `days` with latent `means` (canonical units), each
        with noise, in the patient's unit. Days outside the simulated period are skipped.

        The hot loop of the generator (~300k results a second): everything is a local.
        """
        analyte, unit, to_scaled, scale, slot, noise, prefix = self._lab_spec[kind]
        items, pid, o0, horizon, bits, iso_get = (self.items, self.pid, self.o0, self.horizon,
                                                  self.rng.getrandbits, _ISO.get)
        is_titer = analyte == "anti_pla2r"
        for t, mean in zip(days, means):
            if t < 0 or t > horizon:
                continue
            if noise is not None:
                mean *= noise[bits(NOISE_TABLE_BITS)]
            o = o0 + t
            day = iso_get(o) or iso(o)
            if is_titer and mean < PLA2R_DETECTION_LIMIT:
                items[o * 64 + slot] = {
                    "type": "lab", "patient_id": pid, "analyte": analyte, "value": PLA2R_DETECTION_LIMIT,
                    "comparator": "<", "unit": unit, "effective_at": day, "source": SOURCE,
                    "source_id": prefix + day}
                continue
            # half-up rounding to the lab's decimals: int() is ~10x faster than round(x, nd)
            scaled = int(mean * to_scaled + 0.5)
            items[o * 64 + slot] = {
                "type": "lab", "patient_id": pid, "analyte": analyte,
                "value": scaled / scale if scale != 1 else scaled,
                "unit": unit, "effective_at": day, "source": SOURCE, "source_id": prefix + day}

    def lab(self, t: int, kind: str, mean: float) -> None:
        """One result (see `labs`)."""
        self.labs(kind, (t,), (mean,))

    def med(self, drug: str, t: int, dose: float | None, unit: str | None, *, route: str = "oral",
            frequency: str = "once", end: int | None = None) -> None:
        """A medication record starting on day t (end inclusive; None = goes on)."""
        if t > self.horizon:
            return
        o = self.o0 + t
        event: dict[str, Any] = {"type": "medication", "patient_id": self.pid, "drug": drug}
        if dose is not None:
            event["dose"], event["unit"] = dose, unit
        event["route"] = route
        event["frequency"] = frequency
        event["start"] = iso(o)
        if end is not None:
            event["end"] = iso(self.o0 + end)
        event["source"] = SOURCE
        event["source_id"] = f"{self.pid}:{drug}:{iso(o)}:{self.n_meds}"
        self.items[o * 64 + _MED_SLOT + self.n_meds % 32] = event
        self.n_meds += 1

    # ---- schedules -----------------------------------------------------------------------------
    def schedule(self, segments: Sequence[tuple[int, int, int]], stop: int | None = None) -> list[int]:
        """Visit days: from each segment's start (day, min gap, max gap) on, gaps drawn in [lo, hi].

        A segment's start is itself a visit (e.g. the baseline on the day treatment starts); a
        regular visit falling within a week before it is moved onto it. Visits end at `stop`.
        """
        stop = self.horizon if stop is None else min(stop, self.horizon)
        segs = sorted(segments)
        n = len(segs)
        rnd = self.rng.random
        out: list[int] = []
        si = 0
        t = segs[0][0]
        while t <= stop:
            while si + 1 < n and segs[si + 1][0] <= t:
                si += 1
            anchor = segs[si + 1][0] if si + 1 < n else None
            if anchor is not None and anchor - t < 7:
                t = anchor
                continue
            out.append(t)
            _, lo, hi = segs[si]
            t += lo + int(rnd() * (hi - lo + 1))
            if anchor is not None and t > anchor:
                t = anchor
        return out

    def panels(self, days: Sequence[int]) -> None:
        """Proteinuria with albumin and creatinine on each day (they are ordered together)."""
        proteinuria, creatinine, base = self.proteinuria, self.creatinine, self.creatinine_baseline
        hi, k, floor, log1p = self.albumin_hi, self.albumin_k, self.albumin_floor, math.log1p
        p = [proteinuria(t) for t in days]
        albumin = [hi - k * log1p(x) for x in p]
        self.labs("proteinuria", days, p)
        self.labs("serum_albumin", days, [a if a > floor else floor for a in albumin])  # noqa: FURB136 (hot)
        self.labs("serum_creatinine", days, [base * creatinine(t) for t in days])

    def titers(self, days: Sequence[int]) -> None:
        if self.titer is not None:
            self.labs("anti_pla2r", days, [self.titer(t) for t in days])

    def troughs(self, kind: str, level: Curve, days: Sequence[int]) -> None:
        self.labs(kind, days, [level(t) for t in days])

    def normal_blood_counts(self) -> None:
        """A normal white-cell count (5.0-8.5 x10^9/L), 55-68% neutrophils, flat unless a course
        changes it."""
        self.wbc = curve((0, self.rng.uniform(5.0, 8.5)))
        self.neutrophil_share = curve((0, self.rng.uniform(0.55, 0.68)))

    def blood_counts(self, days: Sequence[int]) -> None:
        """A white-cell count with its neutrophil count on each day (one blood count, one laboratory's
        units, drawn at the first call)."""
        if self.wbc is None:
            self.normal_blood_counts()
        for kind, options in BLOOD_COUNT_UNIT_MIX.items():
            if kind not in self._lab_spec:
                self._lab_spec[kind] = self._spec(pick(self.rng, options))
        wbc, share = self.wbc, self.neutrophil_share
        assert wbc is not None
        means = [wbc(t) for t in days]
        self.labs("wbc", days, means)
        self.labs("neutrophils", days, [m * share(t) for m, t in zip(means, days)])

    def cd19(self, t: int, depleted: bool) -> None:
        """CD19 B cells 2-4 weeks after anti-CD20: 0-3/uL when depleted, 8-45/uL when not."""
        value = randint(self.rng, 0, 3) if depleted else randint(self.rng, 8, 45)
        self.lab(t, "cd19_count", float(value))  # counted, not measured with a CV: no noise

    # ---- output ------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """Patient first, then labs and medications in clinical order (labs before doses on a day)."""
        out = [self.patient_record()]
        out += map(self.items.__getitem__, sorted(self.items))
        return out
