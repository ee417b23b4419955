"""`LiveWebConfig`: the web config in force, switched as a whole by a reload."""

from __future__ import annotations

from collections.abc import Callable

from exporter.config.web import WebConfig, WebSettings

__all__ = ["LiveWebConfig", "WebConfigLoader"]

#: Reads the web config afresh, given the running one (blocking). Raises WebConfigError.
WebConfigLoader = Callable[[WebConfig], WebSettings]


class LiveWebConfig:
    """The web config in force, re-read by every reload and pushed to whoever serves with it.

    Subscribers (basic auth, the listener's TLS) must apply a switch without failing.
    """

    def __init__(self, settings: WebSettings, load: WebConfigLoader | None = None) -> None:
        self.settings = settings
        self._load = load
        self._subscribers: list[Callable[[WebSettings], None]] = []

    def subscribe(self, apply: Callable[[WebSettings], None]) -> None:
        """Call ``apply`` with the new settings on every switch."""
        self._subscribers.append(apply)

    def read(self) -> WebSettings | None:
        """The file's settings now (blocking); ``None`` when there is no file to re-read."""
        return None if self._load is None else self._load(self.settings.config)

    def switch(self, settings: WebSettings) -> WebSettings:
        """Put ``settings`` in force; returns the previous ones (back in force if one fails)."""
        previous, self.settings = self.settings, settings
        try:
            for apply in self._subscribers:
                apply(settings)
        except BaseException:
            self.settings = previous
            for apply in self._subscribers:
                apply(previous)
            raise
        return previous
