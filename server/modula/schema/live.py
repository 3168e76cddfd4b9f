"""The schema being served now. A request takes the current one once and holds it to the end, so a
swap never changes a request mid-flight. Plugin runtimes that a swap retires are closed only when
no schema still serving a request (nor the current one) uses them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import strawberry


@dataclass(eq=False)
class ServedSchema:
    generation: int
    schema: strawberry.Schema
    uses: frozenset[Any] = frozenset()  # the plugin objects its resolvers call
    in_flight: int = 0


@dataclass(eq=False)
class LiveSchema:
    _current: ServedSchema
    _draining: set[ServedSchema] = field(default_factory=set)
    _retiring: list[tuple[Any, Callable[[], None]]] = field(default_factory=list)

    @classmethod
    def serving(cls, schema: strawberry.Schema, generation: int = 1, uses: frozenset[Any] = frozenset()) -> LiveSchema:
        return cls(ServedSchema(generation, schema, uses))

    @property
    def current(self) -> ServedSchema:
        return self._current

    @contextlib.contextmanager
    def use(self) -> Iterator[ServedSchema]:
        """The current schema, held for one request."""
        served = self._current
        served.in_flight += 1
        try:
            yield served
        finally:
            served.in_flight -= 1
            if served is not self._current and served.in_flight == 0:
                self._draining.discard(served)
                self._sweep()

    def swap(self, schema: strawberry.Schema, generation: int, *, uses: frozenset[Any] = frozenset(),
             retire: list[tuple[Any, Callable[[], None]]] = ()) -> ServedSchema:
        """Serve `schema` from now on. Each (plugin, close) in `retire` is closed once no schema
        that is still in use holds the plugin."""
        old, self._current = self._current, ServedSchema(generation, schema, uses)
        if old.in_flight:
            self._draining.add(old)
        self._retiring.extend(retire)
        self._sweep()
        return self._current

    def _sweep(self) -> None:
        held = set(self._current.uses).union(*(s.uses for s in self._draining))
        keep = []
        for plugin, close in self._retiring:
            if plugin in held:
                keep.append((plugin, close))
            else:
                close()
        self._retiring = keep
