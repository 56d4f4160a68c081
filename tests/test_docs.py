"""The metric reference documents every metric the catalogue has."""

import os

from pycgroup import catalogue

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                    "metrics.md")


def test_every_metric_is_documented():
    with open(DOCS) as f:
        text = f.read()
    names = [*catalogue.TABLE, catalogue.WORKING_SET, *catalogue.PROCESS_AND_HOST]
    assert [n for n in names if f"| `{n}` |" not in text] == []
    assert [k for k in catalogue.V1_MEMORY_STAT_KEYS if f"`{k}`" not in text
            and not k.startswith(("workingset_", "inactive_", "active_", "unevictable", "pg"))] == []


def test_every_gpu_metric_is_documented():
    from pycgroup import gpu

    with open(DOCS) as f:
        text = f.read()
    assert [m for m in gpu.METRICS if f"| `gpuN.{m}` |" not in text] == []
