"""A small bounded least-recently-used cache for drivers (inodes, blocks, parsed listings).

Bounded by a count of items and, when ``weigh`` is given, by the total weight of what it
holds (bytes, entries): an item's weight comes from ``weigh(value)``, and the least
recently used items go until the total is within ``max_weight``. An item heavier than
``max_weight`` on its own is not kept. Drivers take both bounds from limits.py or keep
items small; what a hostile image makes us hold stays bounded either way.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``bound`` items (and ``max_weight`` in all when ``weigh`` is given); ``put``
    drops the least recently used beyond that."""

    __slots__ = ("bound", "max_weight", "weigh", "weight", "_items")

    def __init__(self, bound: int, *, weigh: Callable[[V], int] | None = None, max_weight: int | None = None):
        if bound < 1:
            raise ValueError("an LRU cache holds at least one item")
        if (weigh is None) != (max_weight is None):
            raise ValueError("weigh and max_weight go together")
        self.bound = bound
        self.weigh = weigh
        self.max_weight = max_weight
        self.weight = 0  # total weight held (0 without weigh)
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The item under ``key`` (now the most recently used), or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        weight = self.weigh(value) if self.weigh is not None else 0
        if self.max_weight is not None and weight > self.max_weight:
            return  # too heavy to keep at all
        self._items[key] = (value, weight)
        self.weight += weight
        while len(self._items) > self.bound or (self.max_weight is not None and self.weight > self.max_weight):
            _key, (_value, dropped) = self._items.popitem(last=False)
            self.weight -= dropped

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()
        self.weight = 0
