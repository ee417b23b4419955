"""Prometheus exporter for Huawei Cloud Data Lake Insight (DLI) Flink streaming jobs."""

__version__ = "0.1.0"
