"""`Pager`: every item of an offset-paged DLI listing, none missed while the list changes.

DLI's list APIs page by ``offset``/``limit`` and report a ``total_count``. Pages are fetched
oldest first and overlap by one item (offsets 0, 99, 198, ... for pages of 100), so a shift
between two fetches (an item deleted meanwhile) shows as two neighbouring pages sharing no item;
such a gap is fetched again until every pair of neighbours shares one. An item that exists for
the whole listing is therefore never missed (see `_Listing`). Paging ends at the first page
that is not full; ``total_count`` only decides how many pages are fetched concurrently up front.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from exporter.dli.api import MAX_PAGE_SIZE
from exporter.errors import DliApiError

__all__ = ["MAX_PAGES", "MAX_REPAIRS", "PAGE_SIZE", "PAGE_STEP", "Page", "Pager"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Pages are as large as the list APIs allow.
PAGE_SIZE: Final = MAX_PAGE_SIZE
#: Pages are fetched this far apart, so neighbours overlap by one item (see `_Listing`).
PAGE_STEP: Final = PAGE_SIZE - 1
#: Re-fetches one listing may make to close gaps before it gives up (see `Pager._repair`).
MAX_REPAIRS: Final = 200
#: Guard against a server whose paging never ends when it reports no total_count.
MAX_PAGES: Final = 10_000


@dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    """One fetched page, where it was fetched from, and the ids of its items."""

    offset: int
    items: tuple[_T, ...]
    ids: frozenset[int]
    #: Entries dropped because they had no usable id.
    skipped: int = 0
    total_count: int | None = None

    @property
    def size(self) -> int:
        """Entries on the page, with those dropped for having no usable id."""
        return len(self.items) + self.skipped

    @property
    def full(self) -> bool:
        """A full page means there may be more after it."""
        return self.size >= PAGE_SIZE

    def overlaps(self, other: Page[_T]) -> bool:
        """True when the two pages share an item (or cannot be compared: id-less entries)."""
        if self.skipped or other.skipped:
            return True
        return not self.ids.isdisjoint(other.ids)


#: Fetches the page at an offset.
FetchPage = Callable[[int], Awaitable[Page[_T]]]


class Pager(Generic[_T]):
    """Lists every item of one listing (one per target and listing; it remembers what it logged)."""

    def __init__(self, operation: str, *, key: Callable[[_T], int], concurrency: int) -> None:
        self._operation = operation
        self._key = key
        self._concurrency = max(1, concurrency)
        #: total_count disagreed with the pages last time (logged once, until it agrees).
        self._total_disagreed = False

    async def list_all(self, fetch: FetchPage[_T]) -> list[_T]:
        """Every item, in list order, each id once (the first page it appeared on wins)."""
        listing = _Listing(await fetch(0))
        if not listing.complete:
            await self._fetch_run(listing, fetch, listing.pages[0], hint=listing.total_hint)
            await self._repair(listing, fetch)
        self._check_total(listing)
        items: dict[int, _T] = {}
        for page in listing.pages:
            for item in page.items:
                items.setdefault(self._key(item), item)
        return list(items.values())

    async def _fetch_run(
        self,
        listing: _Listing[_T],
        fetch: FetchPage[_T],
        after: Page[_T],
        *,
        hint: int | None = None,
    ) -> None:
        """Fetch the pages after ``after`` until one is not full, ``concurrency`` at a time.

        With ``hint`` (a plausible total), pages up to the one expected to be last are fetched
        concurrently; past it (the total was too small, or there is none) at most
        ``concurrency`` pages are in flight, so a wrong total wastes at most that many.
        """
        last_expected = _last_offset(hint) if hint is not None else None
        if last_expected is not None and after.offset >= last_expected:
            last_expected = None  # the total was too small: page on until a page is not full
        next_offset = after.offset + PAGE_STEP
        end: int | None = None  # offset of the first page found not full
        found: dict[int, Page[_T]] = {}
        tasks: dict[asyncio.Task[Page[_T]], int] = {}

        def wanted(offset: int) -> bool:
            if end is not None and offset >= end:
                return False
            if last_expected is not None and offset > last_expected:
                return False  # the total is right until the last expected page is full
            return offset < PAGE_STEP * MAX_PAGES

        async def fetch_at(offset: int) -> Page[_T]:
            return await fetch(offset)

        try:
            while True:
                while len(tasks) < self._concurrency and wanted(next_offset):
                    tasks[asyncio.create_task(fetch_at(next_offset))] = next_offset
                    next_offset += PAGE_STEP
                if not tasks:
                    break
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    offset = tasks.pop(task)
                    page = task.result()
                    found[offset] = page
                    if not page.full and (end is None or offset < end):
                        end = offset
                    elif page.full and last_expected is not None and offset >= last_expected:
                        last_expected = None  # the total was too small: page on until short
                for task, offset in list(tasks.items()):
                    if end is not None and offset > end:
                        task.cancel()
                        del tasks[task]
        finally:  # one page failed (or the poll was cancelled): stop fetching the others
            for task in tasks:
                task.cancel()
        listing.extend(
            page for offset, page in sorted(found.items()) if end is None or offset <= end
        )

    async def _repair(self, listing: _Listing[_T], fetch: FetchPage[_T]) -> None:
        """Re-fetch where two neighbouring pages share no item, until every pair does.

        A pair (A, B) with no item in common means the list shifted between their fetches
        (items deleted before B's offset): items may have slid from B's window into the gap. A
        fresh page at A's offset (or, for two pages at one offset, the window before it)
        bridges the gap under any churn of fewer than 99 items between two fetches; more churn
        than that for `MAX_REPAIRS` rounds fails the listing rather than publishing a partial
        one.
        """
        repairs = 0
        while (gap := listing.first_gap()) is not None:
            if repairs >= MAX_REPAIRS:
                raise DliApiError(
                    self._operation,
                    "inconsistent",
                    f"the list kept changing while it was paged through ({repairs} pages "
                    "fetched again); the previous listing is kept",
                )
            repairs += 1
            before, after = listing.pages[gap], listing.pages[gap + 1]
            offset = before.offset if before.offset < after.offset else before.offset - PAGE_STEP
            listing.insert(gap + 1, await fetch(max(0, offset)))
        listing.repairs = repairs

    def _check_total(self, listing: _Listing[_T]) -> None:
        """Log once when ``total_count`` disagrees with where the pages ended."""
        total, counted = listing.pages[0].total_count, listing.end_count
        if listing.repairs or total is None or total == counted:
            self._total_disagreed = False
            return
        if not self._total_disagreed:
            log.warning(
                "a list's total_count disagrees with its pages; paging by the pages",
                extra={
                    "fields": {
                        "operation": self._operation,
                        "total_count": total,
                        "listed": counted,
                    }
                },
            )
        self._total_disagreed = True


def _last_offset(total: int) -> int:
    """The offset of the page expected to be the last (the first one not full) for ``total``."""
    if total < PAGE_SIZE:
        return 0
    return ((total - PAGE_SIZE) // PAGE_STEP + 1) * PAGE_STEP


class _Listing(Generic[_T]):
    """The pages of one listing, in list order; complete once the last one is not full.

    Every page is a contiguous window of the (oldest-first) list as it was when fetched. Two
    neighbouring windows that share an item cover, between them, every item that existed at
    both fetches from the first one's start to the second one's end; so a chain of pairwise
    overlapping pages from offset 0 to a page that is not full misses no item that existed for
    the whole listing, however the list changed meanwhile.
    """

    def __init__(self, first: Page[_T]) -> None:
        self.pages: list[Page[_T]] = [first]
        self.repairs = 0

    @property
    def total_hint(self) -> int | None:
        """The first page's ``total_count`` when it is usable as a plan for the paging."""
        total = self.pages[0].total_count
        return total if total is not None and total >= 0 else None

    @property
    def complete(self) -> bool:
        return not self.pages[-1].full

    @property
    def end_count(self) -> int:
        """How many items the list held when its last page was fetched."""
        return self.pages[-1].offset + self.pages[-1].size

    def extend(self, pages: Iterable[Page[_T]]) -> None:
        for page in pages:
            self.insert(len(self.pages), page)

    def insert(self, index: int, page: Page[_T]) -> None:
        """Put ``page`` at ``index``; a page that is not full ends the list there."""
        self.pages.insert(index, page)
        if not page.full:
            del self.pages[index + 1 :]

    def first_gap(self) -> int | None:
        """The index of the first page that shares no item with the next one, if any."""
        for index in range(len(self.pages) - 1):
            if not self.pages[index].overlaps(self.pages[index + 1]):
                return index
        return None
