"""Deterministic synthetic IMN cohorts for `imn-monitor demo` and the benchmarks.

Plain NDJSON-contract dicts (docs/input-contract.md), no I/O and no clock: see synthetic/cohort.py for the API
and determinism, synthetic/archetypes.py for the courses and their sources, synthetic/course.py for
the noise, units and sampling model.
"""

from synthetic.archetypes import ARCHETYPES, Archetype
from synthetic.cohort import (
    DEFAULT_SEED,
    archetype_for,
    archetype_of,
    assignments,
    generate_cohort,
    generate_patient,
    iter_cohort,
    patient_id,
)

__all__ = [
    "ARCHETYPES",
    "DEFAULT_SEED",
    "Archetype",
    "archetype_for",
    "archetype_of",
    "assignments",
    "generate_cohort",
    "generate_patient",
    "iter_cohort",
    "patient_id",
]
