"""Statistics the benchmarks share."""

import numpy as np


def median_with_interval(ratios, seed=0) -> tuple[float, float, float]:
    """Returns the median of the ratios and a 95% bootstrap interval around it: the
    spread a rerun on this machine would show within one run's conditions."""
    ratios = np.asarray(ratios)
    resampled = np.random.default_rng(seed).choice(ratios, (2000, len(ratios)))
    low, high = np.percentile(np.median(resampled, axis=1), [2.5, 97.5])
    return float(np.median(ratios)), float(low), float(high)
