"""Reading a config file: YAML -> ``${VAR}`` expansion -> schema -> rules across targets.

Every step reports into one :class:`~exporter.config.problems.Problems`; only a file without
any problem becomes a :class:`~exporter.config.model.Config`, else :class:`ConfigError` lists
them all. Two rules span targets and are checked here, on the raw data so that they are
reported along with everything else: unique target names, and each explicitly set timeout
shorter than the poll interval of every target that uses it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from exporter.config.loader import INVALID, expand_env, load_yaml
from exporter.config.model import (
    DEFAULT_POLL_INTERVAL,
    MAX_CONFIG_FILE_SIZE,
    Config,
)
from exporter.config.problems import ConfigError, ConfigProblem, Problems, type_name
from exporter.config.report import report
from exporter.config.schema import SETTINGS, ConfigFile, Settings
from exporter.config.section import Issue, PlacedIssue
from exporter.config.types import Context, format_seconds
from exporter.files import FileReadError, read_bounded

__all__ = ["load_config", "parse_config"]


def parse_config(
    text: str,
    source: str,
    environ: Mapping[str, str] | None = None,
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Parse and validate config ``text``; ``source`` names it in problems.

    ``environ`` (default :data:`os.environ`) supplies ``${VAR}`` values and the AK/SK fallback.
    Relative ``*_file`` paths are resolved against ``base_dir`` (default: the working directory).
    Raises :class:`ConfigError` listing every problem found.
    """
    problems = Problems(source)
    context = Context(
        environ=os.environ if environ is None else environ,
        base_dir=Path(base_dir) if base_dir is not None else Path(),
    )
    data = load_yaml(text, problems)
    if data is not INVALID:
        data = expand_env(data, context.environ, problems)
    config = None
    if data is None:
        problems.add("", "file is empty (expected a mapping with a targets list)")
    elif isinstance(data, dict):
        config = _validate(data, context, problems)
    elif data is not INVALID:
        problems.add("", f"top level must be a mapping, not {type_name(data)}")
    if problems.items or config is None:
        raise ConfigError(problems.items)
    return config.build(source, context)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path`` (blocking I/O: call off the event loop).

    Relative ``*_file`` paths in it are resolved against the file's directory. The file must be
    a regular file (or a symlink to one) of at most ``MAX_CONFIG_FILE_SIZE`` bytes.
    """
    source = os.fspath(path)
    try:
        raw = read_bounded(source, MAX_CONFIG_FILE_SIZE)
    except FileReadError as exc:
        problem = ConfigProblem(source, "", f"cannot read file: {exc.reason}")
        raise ConfigError([problem]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(source, "", "file is not valid UTF-8")]) from None
    return parse_config(text, source, environ, base_dir=Path(source).parent)


def _validate(data: dict[Any, Any], context: Context, problems: Problems) -> ConfigFile | None:
    """The validated file, or ``None`` with every problem reported."""
    errors: list[ErrorDetails] = []
    config = None
    try:
        config = ConfigFile.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors()
    report(ConfigFile, errors, _target_rules(data), problems)
    return config


def _target_rules(data: Mapping[Any, Any]) -> list[Issue | PlacedIssue]:
    """Unique names, and the timeout rule, for every target that is a mapping."""
    targets = data.get("targets")
    if not isinstance(targets, list):
        return []
    issues: list[Issue | PlacedIssue] = []
    top = _settings(data)
    first_seen: dict[str, int] = {}
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            continue
        name = target.get("name")
        if isinstance(name, str) and name.strip():
            if name in first_seen:
                message = f"duplicate target name {name!r} (also targets[{first_seen[name]}])"
                issues.append((("targets", index, "name"), message, ("targets", index)))
            else:
                first_seen[name] = index
        issues += _check_timeout(_settings(target), top, index, name)
    return issues


def _settings(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """The inheritable settings ``mapping`` sets validly (``None``: unset or invalid)."""
    values: dict[str, Any] = dict.fromkeys(SETTINGS)
    for name in SETTINGS:
        if mapping.get(name) is not None:
            with suppress(ValidationError):  # reported by the schema
                values[name] = getattr(Settings.model_validate({name: mapping[name]}), name)
    return values


def _check_timeout(
    own: Mapping[str, Any], top: Mapping[str, Any], index: int, name: object
) -> list[Issue | PlacedIssue]:
    """Check that an explicitly set timeout is shorter than the target's poll interval.

    ``own`` is what the target itself sets, ``top`` what the top level does. The problem is
    reported where the timeout was set (the target, or the top level for an inherited one) and
    names the target.
    """
    timeout = own["timeout"] if own["timeout"] is not None else top["timeout"]
    poll = own["poll_interval"] or top["poll_interval"] or DEFAULT_POLL_INTERVAL
    if timeout is None or timeout < poll:
        return []
    target = f"target {name!r}" if isinstance(name, str) and name.strip() else "this target"
    message = (
        f"timeout ({format_seconds(timeout)}) must be shorter than "
        f"poll_interval ({format_seconds(poll)})"
    )
    after = ("targets", index, SETTINGS[-1])  # among the target's problems, after its settings'
    if own["timeout"] is not None:
        return [(("targets", index, "timeout"), f"{message} of {target}", after)]
    message = f"{message} of {target} (targets[{index}]), which inherits this timeout"
    return [(("timeout",), message, after)]
