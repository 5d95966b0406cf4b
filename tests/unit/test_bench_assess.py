"""bench/assess.py's synthetic patients: a UPCR in mg/mmol says what the proteinuria curve means, read
the monitor's way (KDIGO: mg/mmol / 100 ~ g/d, monitor/proteinuria.py), like the 24-h collections.
It was generated with the exact molar factor (/ 0.00884), so every UPCR read 13% too high."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

from monitor.timeline import Timeline

BENCH = Path(__file__).resolve().parents[2] / "bench" / "assess.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_assess", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MidpointRandom(random.Random):
    """Every uniform draw at its midpoint (no noise), and 24-h urine and UPCR months alternating."""

    def __init__(self) -> None:
        super().__init__(7)
        self.flip = False

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2

    def random(self) -> float:
        self.flip = not self.flip
        return 0.3 if self.flip else 0.9  # < 0.6: a 24-h urine, else a UPCR


def test_upcr_and_24h_urine_read_the_same_level() -> None:
    bench = _bench()
    events = bench.synthetic_patient("B1", MidpointRandom())
    timeline = Timeline.build("B1", events)
    series = timeline.proteinuria()
    upcr = list(timeline.series("upcr"))
    assert upcr and all(r.reported_unit == "mg/mmol" for r in upcr)
    by_day = {r.effective_at.date(): r.value for r in series}
    # before the remission (a flat nephrotic plateau), every month reads the same g/d whatever its sample
    # (the peak is uniform(4, 14): 9 g/d at the midpoint)
    plateau = [by_day[r.effective_at.date()] for r in sorted(series, key=lambda r: r.effective_at)[:3]]
    assert plateau == [9.0, 9.0, 9.0], plateau
    assert {r.reported_value for r in upcr if by_day[r.effective_at.date()] == 9.0} == {900.0}
