"""Fault injection: the real exporter app against a faulty and a healthy simulated DLI."""
