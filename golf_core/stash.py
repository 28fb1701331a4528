"""A typed key/value store for a plugin's private state between phases (after pytest.Stash)."""
from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class StashKey(Generic[T]):
    """A unique, typed key. Create one at module level: ``EMA_STATE = StashKey[dict]()``."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StashKey({self.name!r})"


class Stash:
    """Mapping from StashKey to value; keys are compared by identity, so plugins cannot collide."""

    def __init__(self) -> None:
        self._data: dict[StashKey[Any], Any] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._data[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return self._data[key]

    def get(self, key: StashKey[T], default: T | None = None) -> T | None:
        """The value under ``key``, or ``default``."""
        return self._data.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value under ``key``, storing ``default`` first if absent."""
        return self._data.setdefault(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __delitem__(self, key: StashKey[Any]) -> None:
        del self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> list[tuple[StashKey[Any], Any]]:
        """Every (key, value) pair (e.g. to copy a run's plugin state for a re-run)."""
        return list(self._data.items())
