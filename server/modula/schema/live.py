"""The schema being served now. A request takes the current one once and holds it to the end, so a
swap never changes a request mid-flight; what the old schema needed (plugin runtimes it calls) is
released only when the last request on it has finished."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import strawberry


@dataclass(eq=False)
class ServedSchema:
    generation: int
    schema: strawberry.Schema
    in_flight: int = 0
    on_drained: list[Callable[[], None]] = field(default_factory=list)
    retired: bool = False

    def _release(self) -> None:
        if self.retired and self.in_flight == 0:
            callbacks, self.on_drained = self.on_drained, []
            for callback in callbacks:
                callback()


class LiveSchema:
    def __init__(self, schema: strawberry.Schema, generation: int = 1) -> None:
        self._current = ServedSchema(generation, schema)

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
            served._release()

    def swap(self, schema: strawberry.Schema, generation: int, *, when_old_drained: Callable[[], None] | None = None) -> ServedSchema:
        """Serve `schema` from now on; `when_old_drained` runs once no request uses the old one."""
        old, self._current = self._current, ServedSchema(generation, schema)
        if when_old_drained is not None:
            old.on_drained.append(when_old_drained)
        old.retired = True
        old._release()
        return self._current
