"""Bench only: run the exporter's CLI and report its asyncio task counts to a file.

``python bench/_soak_exporter.py <exporter flags>`` behaves like ``python -m exporter``. With
``SOAK_TASKS_FILE`` set, a daemon thread counts the tasks of the exporter's event loop every
second and replaces that file with one JSON object: ``{"time": <unix seconds>, "tasks": <live
tasks>, "long_lived": <live tasks first seen at least LONG_LIVED_AGE seconds ago>}``. A poll's
tasks end by its deadline (0.9 poll intervals), so with a poll interval under 5 s a leak shows
in ``long_lived`` as steady growth rather than noise. The count runs on the loop itself
(``call_soon_threadsafe``), so it sees a consistent task set. The product is not changed: the
loop is captured by an event loop policy that records the loops it creates. The reporter adds
one thread to the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import threading
import time
import weakref
from pathlib import Path

from exporter.cli import main as exporter_main

TASKS_FILE_ENV = "SOAK_TASKS_FILE"
COUNT_INTERVAL = 1.0
COUNT_TIMEOUT = 5.0
#: Seconds a task must have lived to count as long-lived: longer than any poll of the soak.
LONG_LIVED_AGE = 5.0


class _RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, telling ``found`` about the first loop it creates."""

    def __init__(self, found: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
        super().__init__()
        self._found = found

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        if not self._found.done():
            self._found.set_result(loop)
        return loop


class _TaskCounter:
    """Counts a loop's tasks; `count` must run on that loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._first_seen: weakref.WeakKeyDictionary[asyncio.Task[object], float] = (
            weakref.WeakKeyDictionary()
        )

    def count(self) -> tuple[int, int]:
        """(live tasks, live tasks first seen at least `LONG_LIVED_AGE` seconds ago)."""
        now = time.monotonic()
        tasks = asyncio.all_tasks(self._loop)
        ages = [now - self._first_seen.setdefault(task, now) for task in tasks]
        return len(tasks), sum(1 for age in ages if age >= LONG_LIVED_AGE)


def _report_tasks(found: concurrent.futures.Future[asyncio.AbstractEventLoop], path: Path) -> None:
    """Thread body: write the loop's task counts to ``path`` until the loop is closed."""
    loop = found.result()
    counter = _TaskCounter(loop)
    while True:
        result: concurrent.futures.Future[tuple[int, int]] = concurrent.futures.Future()

        def count(result: concurrent.futures.Future[tuple[int, int]] = result) -> None:
            result.set_result(counter.count())

        try:
            loop.call_soon_threadsafe(count)
            tasks, long_lived = result.result(timeout=COUNT_TIMEOUT)
        except RuntimeError:  # the loop is closed: the exporter is exiting
            return
        except TimeoutError:  # the loop is busy or not started yet; try again
            continue
        record = {"time": time.time(), "tasks": tasks, "long_lived": long_lived}
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(record))
        partial.replace(path)
        time.sleep(COUNT_INTERVAL)


def main() -> int:
    """Start the task reporter (when asked to) and run the exporter's command line."""
    tasks_file = os.environ.get(TASKS_FILE_ENV)
    if tasks_file:
        found: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        asyncio.set_event_loop_policy(_RecordingPolicy(found))
        threading.Thread(
            target=_report_tasks,
            args=(found, Path(tasks_file)),
            name="soak-task-reporter",
            daemon=True,
        ).start()
    return exporter_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
