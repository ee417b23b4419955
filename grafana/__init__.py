"""The Grafana dashboards of dli-exporter: a small panel library and one module per dashboard.

``build_dashboards`` is the entry point that writes (or checks) ``dashboards/*.json``.
"""
