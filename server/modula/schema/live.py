"""The schema being served now. A request reads it once, so a swap never changes a request mid-flight."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry


@dataclass(frozen=True)
class ServedSchema:
    generation: int
    schema: strawberry.Schema


class LiveSchema:
    def __init__(self, schema: strawberry.Schema, generation: int = 1) -> None:
        self._current = ServedSchema(generation, schema)

    @property
    def current(self) -> ServedSchema:
        return self._current

    def swap(self, schema: strawberry.Schema, generation: int) -> ServedSchema:
        self._current = ServedSchema(generation, schema)
        return self._current
