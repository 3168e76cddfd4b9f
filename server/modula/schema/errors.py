"""Which errors a client may see: ours (ModulaError) and GraphQL's own; everything else is masked."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from modula.errors import ModulaError

log = logging.getLogger("modula.graphql")

INTERNAL_ERROR_MESSAGE = "Internal server error: the failure was logged on the server."


def is_internal(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (ModulaError, GraphQLError))


def mask_internal_errors() -> MaskErrors:
    """Hide database errors and bugs: no SQL, no traceback reaches the client."""
    return MaskErrors(should_mask_error=is_internal, error_message=INTERNAL_ERROR_MESSAGE)


class ModulaSchema(strawberry.Schema):
    """A Strawberry schema that logs only internal errors: a client's bad input is not news."""

    def process_errors(self, errors, execution_context=None) -> None:
        for error in errors:
            if is_internal(error):
                log.error("internal error in %s", error.path, exc_info=error.original_error)
