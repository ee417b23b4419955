"""`--shard INDEX/COUNT`: split the targets between replicas by a stable hash of their names."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from exporter.config import Config
from exporter.values import parse_natural


@dataclass(frozen=True, slots=True)
class Shard:
    """Replica ``index`` of ``count`` (0-based); ``Shard(0, 1)`` polls everything."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= INDEX < COUNT")

    def owns(self, target_name: str) -> bool:
        """True when this replica polls the target named ``target_name``."""
        return stable_bucket(target_name, self.count) == self.index

    def select(self, config: Config) -> Config:
        """``config`` with only this replica's targets."""
        if self.count == 1:
            return config
        return dataclasses.replace(
            config, targets=tuple(t for t in config.targets if self.owns(t.name))
        )


def stable_bucket(name: str, count: int) -> int:
    """The bucket of ``name`` among ``count``: the same on every host, Python and restart."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """Parse ``INDEX/COUNT``, e.g. ``0/3`` (a StatefulSet's ordinal and its replica count)."""
    index_text, sep, count_text = text.partition("/")
    index, count = parse_natural(index_text), parse_natural(count_text)
    if not sep or index is None or count is None:
        raise ValueError(f"invalid shard {text!r}: expected INDEX/COUNT such as 0/3")
    return Shard(index, count)
