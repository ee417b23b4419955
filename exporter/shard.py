"""`--shard INDEX/COUNT`: split the targets between replicas by a stable hash of their names.

``--shard auto/COUNT`` (or ``auto`` with the count in ``DLI_EXPORTER_SHARD_COUNT``) takes the
index from the host name's trailing number, as a StatefulSet names its pods
(``dli-exporter-2`` is index 2), so replicas need no hand-set index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

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


#: Where ``--shard auto`` alone reads the replica count.
ENV_SHARD_COUNT: Final = "DLI_EXPORTER_SHARD_COUNT"
_ORDINAL: Final = re.compile(r"-([0-9]{1,9})$")


def parse_shard(
    text: str, *, hostname: str = "", environ: Mapping[str, str] | None = None
) -> Shard:
    """Parse ``INDEX/COUNT`` (e.g. ``0/3``), or ``auto/COUNT`` / ``auto`` (see the module).

    ``hostname`` is the pod's name for ``auto``; ``environ`` holds ``DLI_EXPORTER_SHARD_COUNT``.
    """
    index_text, sep, count_text = text.partition("/")
    if index_text == "auto":
        if not sep:
            count_text = (environ or {}).get(ENV_SHARD_COUNT, "")
            if not count_text:
                raise ValueError(
                    f"--shard auto needs the replica count: auto/COUNT or {ENV_SHARD_COUNT}"
                )
        return _auto(hostname, count_text)
    index, count = parse_natural(index_text), parse_natural(count_text)
    if not sep or index is None or count is None:
        raise ValueError(f"invalid shard {text!r}: expected INDEX/COUNT such as 0/3, or auto/COUNT")
    return Shard(index, count)


def _auto(hostname: str, count_text: str) -> Shard:
    count = parse_natural(count_text)
    if count is None or count < 1:
        raise ValueError(f"invalid shard count {count_text!r}: expected a number of replicas >= 1")
    match = _ORDINAL.search(hostname.strip())
    if match is None:
        raise ValueError(
            f"--shard auto: the host name {hostname[:64]!r} does not end in -<ordinal> "
            "(a StatefulSet pod's name, e.g. dli-exporter-2)"
        )
    index = int(match.group(1))
    if index >= count:
        raise ValueError(
            f"--shard auto: ordinal {index} of host {hostname[:64]!r} is not below the "
            f"replica count {count}"
        )
    return Shard(index, count)
