"""Prometheus export: ``CgroupCollector`` for any ``prometheus_client`` registry and
``start_http_server`` for an endpoint in this process (needs ``pycgroup[prometheus]``).
See ``pycgroup.export.prometheus``."""

from pycgroup.export.prometheus import CgroupCollector, start_http_server

__all__ = ["CgroupCollector", "start_http_server"]
