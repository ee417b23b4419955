"""YAML configuration: strict parsing and validation into frozen dataclasses.

The file shape (pydantic section models, :mod:`exporter.config.schema`) is kept apart from the
runtime model (frozen dataclasses, :mod:`exporter.config.model`). A file is read bounded
(:func:`exporter.files.read_bounded`), parsed by the strict loader (:mod:`.loader`: duplicate
keys, alias/node/depth budgets, bounded ``${VAR}`` expansion), validated, and only then built.
Every problem is collected and raised together in one :class:`ConfigError`, each with the key
path it concerns (``targets[1].auth.secret_key``); messages never contain secret values.
"""

from exporter.config.loader import MAX_EXPANSION
from exporter.config.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    ENV_AK,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    JOB_TYPES,
    MAX_CA_FILE_SIZE,
    MAX_CONCURRENCY,
    MAX_CONFIG_FILE_SIZE,
    MAX_POLL_INTERVAL,
    MAX_RATE_LIMIT,
    MAX_SECRET_FILE_SIZE,
    MAX_TIMEOUT,
    MIN_POLL_INTERVAL,
    MIN_RATE_LIMIT,
    STATE_SET_MODES,
    AkSkAuth,
    Auth,
    Config,
    Filters,
    MetricOptions,
    PasswordAuth,
    TargetConfig,
    TlsClientConfig,
)
from exporter.config.parse import load_config, parse_config
from exporter.config.problems import ConfigError, ConfigProblem, Problems
from exporter.config.types import parse_duration

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_TIMEOUT",
    "ENV_AK",
    "ENV_SECURITY_TOKEN",
    "ENV_SK",
    "JOB_TYPES",
    "MAX_CA_FILE_SIZE",
    "MAX_CONCURRENCY",
    "MAX_CONFIG_FILE_SIZE",
    "MAX_EXPANSION",
    "MAX_POLL_INTERVAL",
    "MAX_RATE_LIMIT",
    "MAX_SECRET_FILE_SIZE",
    "MAX_TIMEOUT",
    "MIN_POLL_INTERVAL",
    "MIN_RATE_LIMIT",
    "STATE_SET_MODES",
    "AkSkAuth",
    "Auth",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Filters",
    "MetricOptions",
    "PasswordAuth",
    "Problems",
    "TargetConfig",
    "TlsClientConfig",
    "load_config",
    "parse_config",
    "parse_duration",
]
