"""Validation results cached per schema: the cache is made with its schema and goes with it.

Strawberry's ValidationCache keeps one process-wide LRU keyed by the schema object, so every
schema generation a live server swaps out stayed in memory until later entries pushed its own out
(up to the cache's size: hundreds of retired schemas, each as large as its plugin tables make it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from strawberry.extensions.base_extension import SchemaExtension
from strawberry.schema.schema import validate_document


def validation_cache(maxsize: int = 256) -> Callable[[], SchemaExtension]:
    """An extension factory for one schema: each request gets a fresh extension, all of them
    sharing this schema's LRU of (document, rules) -> validation errors."""
    cached = lru_cache(maxsize=maxsize)(validate_document)
    factory = lambda: _CachedValidation(cached)  # noqa: E731
    factory.validate = cached  # the same cache, for the fast path (schema/compiled) to consult
    return factory


class _CachedValidation(SchemaExtension):
    def __init__(self, cached: Callable[..., Any]) -> None:
        super().__init__()
        self._cached = cached

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = self._cached(context.schema._schema, context.graphql_document,
                                                    context.validation_rules)
        yield
