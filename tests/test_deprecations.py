"""Names of 0.1 that were renamed keep working, with a DeprecationWarning naming the new one."""

import dataclasses

import pytest

import pycgroup


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_period_error_fields_are_lateness_now(backend):
    s = pycgroup.Sampler(["proc.rss_bytes"], hz=2000, backend=backend)
    with s:
        while s.stats.samples < 20:
            s.sample()
    stats = s.stats
    s.close()
    assert "lateness_p99_us" in {f.name for f in dataclasses.fields(stats)}
    assert not any(f.name.startswith("period_error") for f in dataclasses.fields(stats))
    for quantile in ("p50", "p99", "max"):
        with pytest.warns(DeprecationWarning, match=f"use SamplerStats.lateness_{quantile}_us"):
            old = getattr(stats, f"period_error_{quantile}_us")
        assert old == getattr(stats, f"lateness_{quantile}_us")
    # A quantile is a bucket's upper edge, never above the largest lateness seen.
    assert stats.lateness_p50_us <= stats.lateness_p99_us <= stats.lateness_max_us
