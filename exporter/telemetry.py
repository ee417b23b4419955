"""The exporter's own live metrics: DLI API calls and build information.

Everything is registered into a registry handed to the constructor, never the global one, so
two exporters (or two tests) can live in one process.
"""

from __future__ import annotations

import contextlib
import platform
import threading
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter.values import ValueIssues

#: Histogram buckets in seconds, from a fast cached answer to a request near its timeout.
API_DURATION_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Counts and times DLI/IAM API requests per target, operation and outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "dli_api_requests_total",
            "DLI and IAM API requests made, by target, operation and result code "
            "(HTTP status, or timeout or error when no usable response arrived).",
            ("target", "operation", "code"),
            registry=registry,
        )
        self._duration = Histogram(
            "dli_api_request_duration_seconds",
            "Time taken by DLI and IAM API requests, in seconds, retries counted separately.",
            ("target", "operation"),
            buckets=API_DURATION_BUCKETS,
            registry=registry,
        )
        # The label sets seen per target, so forget_target can remove exactly those series.
        self._seen: dict[str, set[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def observe(self, target: str, operation: str, code: str, seconds: float) -> None:
        """Record one finished request: ``code`` is the HTTP status, ``timeout`` or ``error``."""
        with self._lock:
            self._seen.setdefault(target, set()).add((operation, code))
            self._requests.labels(target, operation, code).inc()
            self._duration.labels(target, operation).observe(seconds)

    def forget_target(self, target: str) -> None:
        """Remove every series of ``target`` (after it was dropped from the configuration)."""
        with self._lock:
            seen = self._seen.pop(target, set())
            for operation, code in seen:
                self._requests.remove(target, operation, code)
            for operation in {operation for operation, _ in seen}:
                self._duration.remove(target, operation)


class ProblemMetrics:
    """What went wrong inside the exporter or in what an API sent, per target.

    Bad values in responses, and bugs caught at the poll loop and the renderer, never fail
    more than their own value, job or target; these counters make them visible.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._values = Counter(
            "dli_api_response_values_rejected_total",
            "Values in API responses the exporter did not publish as sent, by target, "
            "operation, field and problem: invalid or out_of_range (dropped), truncated (label "
            "value cut short) or repaired (text that was not valid UTF-8).",
            ("target", "operation", "field", "problem"),
            registry=registry,
        )
        self._poll_errors = Counter(
            "dli_exporter_poll_errors_total",
            "Unexpected errors (bugs) caught in a target's polls; each is logged with its "
            "traceback and the poll is published as failed.",
            ("target",),
            registry=registry,
        )
        self._render_errors = Counter(
            "dli_exporter_render_errors_total",
            "Unexpected errors writing a target's series; that target's affected families are "
            "left out of the exposition, the others are served.",
            ("target",),
            registry=registry,
        )
        self._seen: dict[str, set[tuple[str, str, str]]] = {}
        self._lock = threading.Lock()

    def values_rejected(self, target: str, operation: str, issues: ValueIssues) -> None:
        """Count the values one response's parse dropped or repaired."""
        with self._lock:
            seen = self._seen.setdefault(target, set())
            for (field, problem), count in issues.counts.items():
                seen.add((operation, field, problem))
                self._values.labels(target, operation, field, problem).inc(count)

    def poll_error(self, target: str) -> None:
        """Count one unexpected error in a poll of ``target``."""
        self._poll_errors.labels(target).inc()

    def render_error(self, target: str) -> None:
        """Count one unexpected error writing ``target``'s series."""
        self._render_errors.labels(target).inc()

    def forget_target(self, target: str) -> None:
        """Remove every series of ``target`` (after it was dropped from the configuration)."""
        with self._lock:
            for operation, field, problem in self._seen.pop(target, set()):
                self._values.remove(target, operation, field, problem)
        for counter in (self._poll_errors, self._render_errors):
            with contextlib.suppress(KeyError):
                counter.remove(target)


def register_build_info(registry: CollectorRegistry, version: str) -> None:
    """Publish ``dli_exporter_build_info{version, python_version} 1`` into ``registry``."""
    info = Gauge(
        "dli_exporter_build_info",
        "Always 1; labels give the exporter version and the Python version running it.",
        ("version", "python_version"),
        registry=registry,
    )
    info.labels(version, platform.python_version()).set(1)


class ReloadMetrics:
    """Whether the latest config reload worked, and when one last did (Prometheus' own names)."""

    def __init__(self, registry: CollectorRegistry, now: float) -> None:
        self._successful = Gauge(
            "dli_config_last_reload_successful",
            "1 when the latest configuration reload succeeded, 0 when it failed "
            "(the previous configuration stays in use).",
            registry=registry,
        )
        self._success_time = Gauge(
            "dli_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully, as a unix timestamp in seconds.",
            registry=registry,
        )
        self.record(successful=True, now=now)

    def record(self, *, successful: bool, now: float) -> None:
        """Record a reload's outcome at ``now`` (unix seconds)."""
        self._successful.set(float(successful))
        if successful:
            self._success_time.set(now)
