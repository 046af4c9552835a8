"""A small bounded least-recently-used cache for drivers (inodes, blocks, parsed nodes).

The bound is a count of items; drivers keep items small (one block, one inode) and pick
the count so that the memory held stays small whatever the guest does."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``bound`` items; ``put`` drops the least recently used beyond that."""

    __slots__ = ("bound", "_items")

    def __init__(self, bound: int):
        if bound < 1:
            raise ValueError("an LRU cache holds at least one item")
        self.bound = bound
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The item under ``key`` (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.bound:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()
