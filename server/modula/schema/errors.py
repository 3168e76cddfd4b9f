"""Which errors a client may see: ours (ModulaError) and GraphQL's own; everything else is masked,
with the request id under which the server logged it."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from modula.errors import ModulaError

log = logging.getLogger("modula.graphql")


def is_internal(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (ModulaError, GraphQLError))


def internal_error_message(request_id: str | None) -> str:
    return f"Internal server error (request {request_id})" if request_id else "Internal server error"


def _request_id(context: Any) -> str | None:
    return getattr(context, "request_id", None)


class MaskInternalErrors(MaskErrors):
    """Hide database errors and bugs: no SQL, no traceback reaches the client, only the request id
    that the log line of the failure carries too."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = _request_id(self.execution_context.context)
        return GraphQLError(internal_error_message(request_id), error.nodes, error.source, error.positions, error.path,
                            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id})


def mask_internal_errors() -> MaskErrors:
    return MaskInternalErrors()


class ModulaSchema(strawberry.Schema):
    """A Strawberry schema that logs only internal errors: a client's bad input is not news."""

    def process_errors(self, errors, execution_context=None) -> None:
        request_id = _request_id(getattr(execution_context, "context", None))
        for error in errors:
            if is_internal(error):
                log.error("internal error (request %s) in %s", request_id, error.path, exc_info=error.original_error)
