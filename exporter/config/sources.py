"""The ``sources`` section: which sources beyond the job list a target polls.

It may appear at the top level (for every target) and in a target; a target's keys win key by
key. Each source is a mapping (``cloud_eye: {enabled: false}``) or, for short, a boolean
(``queues: false``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from exporter.config.model import Sources
from exporter.config.problems import type_name
from exporter.config.section import Section
from exporter.config.types import CloudEyeMaxAge, Flag, fail

__all__ = ["SourcesSection"]


def _switch(value: Any) -> Any:
    """``true``/``false`` is short for ``{enabled: ...}``."""
    if isinstance(value, bool):
        return {"enabled": value}
    if value is not None and not isinstance(value, dict):
        fail(f"must be true, false or a mapping (enabled: ...), not {type_name(value)}")
    return value


class SourceSection(Section):
    """One source: on (the default) or off."""

    enabled: Flag | None = None


class CloudEyeSection(SourceSection):
    """Cloud Eye's runtime metrics: also how old a datapoint may be to be published."""

    max_age: CloudEyeMaxAge | None = None


Switch = BeforeValidator(_switch)


class SourcesSection(Section):
    """``sources``: every source is on unless turned off."""

    cloud_eye: Annotated[CloudEyeSection | None, Switch] = None
    queues: Annotated[SourceSection | None, Switch] = None
    elastic_resource_pools: Annotated[SourceSection | None, Switch] = None

    def over(self, base: SourcesSection | None) -> Sources:
        """The sources set here, else in ``base``, else the defaults."""
        defaults = Sources()

        def pick(name: str, key: str, default: Any) -> Any:
            for section in (self, base):
                part = getattr(section, name, None) if section is not None else None
                value = getattr(part, key, None) if part is not None else None
                if value is not None:
                    return value
            return default

        return Sources(
            cloud_eye=pick("cloud_eye", "enabled", defaults.cloud_eye),
            cloud_eye_max_age=pick("cloud_eye", "max_age", defaults.cloud_eye_max_age),
            queues=pick("queues", "enabled", defaults.queues),
            elastic_resource_pools=pick(
                "elastic_resource_pools", "enabled", defaults.elastic_resource_pools
            ),
        )
