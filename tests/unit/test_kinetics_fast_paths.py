"""monitor.kinetics computes its least-squares line and Student's t tail itself (scipy's argument
handling was half of a patient summary's CPU): the same numbers as scipy.stats, on random data."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.kinetics import _line, _t_ppf, _t_sf


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.floats(0.5, 5000)), min_size=3, max_size=14,
                unique_by=lambda p: p[0]))
def test_line_is_linregress(points: list[tuple[int, float]]) -> None:
    x = np.array([p[0] for p in points], dtype=float)
    y = np.log([p[1] for p in points])
    ref = stats.linregress(x, y)
    slope, intercept = _line(x, y)
    assert np.isclose(slope, ref.slope, rtol=1e-10, atol=1e-15)
    assert np.isclose(intercept, ref.intercept, rtol=1e-10, atol=1e-12)


@given(st.floats(0, 50), st.integers(1, 30))
def test_t_tail_and_quantile_are_scipys(t: float, df: int) -> None:
    assert _t_sf(t, df) == float(stats.t.sf(t, df))
    assert _t_ppf(0.975, df) == float(stats.t.ppf(0.975, df))
