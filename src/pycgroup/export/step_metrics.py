"""Prometheus summaries of a Sampler's steps: the per-label running statistics that
``Sampler.summary(label)`` keeps in O(1) memory, as ``pycgroup_step_*`` families."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from pycgroup.sampler import Sampler

#: StepSummary field -> (Prometheus name, help); each becomes a summary with quantiles
#: 0.5, 0.9 and 0.99 (within 1% of the exact ones), _count and _sum.
STEP_FIGURES = {
    "duration_s": ("pycgroup_step_duration_seconds", "Duration of the steps."),
    "cpu_cores_used": ("pycgroup_step_cpu_cores_used",
                       "CPU cores the cgroup used during each step."),
    "cpu_throttled_fraction": ("pycgroup_step_cpu_throttled_ratio",
                               "Fraction of each step's CFS periods that were throttled."),
    "peak_working_set_bytes": ("pycgroup_step_peak_working_set_bytes",
                               "Peak memory working set of the cgroup during each step."),
}
QUANTILES = (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"))


def step_families(core: ModuleType, sampler: Sampler, step_labels: Iterable[str],
                  labels: Mapping[str, str]) -> list[Any]:
    """Returns the summary families of the steps with each label in step_labels (label
    ``step``); a figure a step could not measure (no CPU quota: no throttled fraction)
    counts only the steps that had it."""
    summaries = [sampler.summary(label) for label in step_labels]
    families = []
    for field, (name, doc) in STEP_FIGURES.items():
        unit = "seconds" if name.endswith("_seconds") else "bytes" if name.endswith(
            "_bytes") else "ratio" if name.endswith("_ratio") else ""
        family = core.Metric(name, doc, "summary", unit)
        for summary in summaries:
            series = {**labels, "step": summary.label}
            distribution = getattr(summary, field)
            for quantile, attribute in QUANTILES:
                value = getattr(distribution, attribute)
                if value is not None:
                    family.add_sample(name, {**series, "quantile": quantile}, value)
            count = distribution.count
            total = summary.total_s if field == "duration_s" else (
                distribution.mean * count if count else 0.0)
            family.add_sample(name + "_count", series, count)
            family.add_sample(name + "_sum", series, total)
        families.append(family)
    return families
