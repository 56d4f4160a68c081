"""OpenTelemetry export: ``instrument(meter_provider=None, cg=None)`` registers
observable instruments for a cgroup (needs ``pycgroup[otel]``). See
``pycgroup.export.otel``."""

from pycgroup.export.otel import instrument

__all__ = ["instrument"]
