"""The streaming quantile sketch: relative error within alpha, memory bounded."""

import numpy as np
import pytest

from pycgroup.sketch import QuantileSketch

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999)


@pytest.mark.parametrize("draw", [
    lambda r: r.lognormal(-5, 1.5, 200_000),  # step durations in seconds
    lambda r: r.uniform(0, 2, 200_000),  # cores used
    lambda r: r.pareto(1.5, 200_000) * 1e8 + 1e6,  # heavy-tailed byte counts
    lambda r: np.concatenate([np.zeros(50_000), r.exponential(0.3, 150_000)]),  # zeros
])
def test_quantiles_are_within_the_relative_error(draw):
    values = draw(np.random.default_rng(7))
    sketch = QuantileSketch(alpha=0.01)
    for chunk in np.array_split(values, 97):  # streamed in uneven pieces
        sketch.add_many(chunk)
    assert sketch.count == len(values)
    assert sketch.max == values.max()
    assert sketch.mean == pytest.approx(values.mean(), rel=1e-9)
    for q in QUANTILES:
        exact = np.quantile(values, q, method="lower")
        assert sketch.quantile(q) == pytest.approx(exact, rel=0.01, abs=1e-12), q
    assert len(sketch) < 2100


def test_one_value_at_a_time_matches_arrays():
    rng = np.random.default_rng(1)
    values = rng.lognormal(0, 1, 2000)
    a, b = QuantileSketch(), QuantileSketch()
    for v in values:
        a.add(float(v))
    b.add_many(values)
    assert [a.quantile(q) for q in QUANTILES] == [b.quantile(q) for q in QUANTILES]


def test_memory_stays_bounded_over_a_huge_range():
    sketch = QuantileSketch(alpha=0.01, max_buckets=256)
    values = np.logspace(-9, 12, 100_000)
    sketch.add_many(values)
    assert len(sketch) <= 257
    # Collapsing merges the lowest buckets: the high quantiles keep their accuracy.
    assert sketch.quantile(0.99) == pytest.approx(np.quantile(values, 0.99, method="lower"),
                                                  rel=0.01)


def test_nan_and_inf_are_ignored_and_empty_is_none():
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None and sketch.mean is None and sketch.max is None
    sketch.add_many([np.nan, np.inf, 3.0])
    assert sketch.count == 1 and sketch.quantile(0.5) == 3.0
    with pytest.raises(ValueError, match="q must be"):
        sketch.quantile(1.5)
