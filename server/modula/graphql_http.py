"""GraphQL over HTTP: read the request, run it on the current schema with one held connection,
answer JSON.

GET runs queries only (a mutation over GET is 405, so links and prefetches cannot change data);
POST must be JSON. A client that accepts `application/graphql-response+json` gets the status
codes of the GraphQL-over-HTTP specification; others get 200 with `application/json`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from modula.schema.context import RequestContext

log = logging.getLogger("modula.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}


async def graphql_endpoint(request: Request) -> Response:
    media_type = _response_media_type(request)
    try:
        params = await _read_params(request)
    except BadRequest as exc:
        return JSONResponse({"errors": [{"message": exc.message}]}, status_code=exc.status,
                            media_type=media_type, headers=exc.headers)

    state = request.app.state
    allowed = {OperationType.QUERY} if request.method == "GET" else None
    with state.live_schema.use() as served:
        async with state.database.session() as session:
            context = RequestContext(session=session, settings=state.settings, request=request, schemas=state.schemas)
            try:
                result = await served.schema.execute(
                    params["query"],
                    variable_values=params["variables"],
                    context_value=context,
                    operation_name=params["operationName"],
                    allowed_operation_types=allowed,
                )
            except InvalidOperationTypeError:
                return JSONResponse(
                    {"errors": [{"message": "mutations and subscriptions are not allowed over GET; use POST"}]},
                    status_code=405, media_type=media_type, headers={"Allow": "POST"},
                )

    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    request_error = result.data is None and bool(result.errors) and all(not e.path for e in result.errors)
    if not request_error:
        body["data"] = result.data
    body["extensions"] = {**(result.extensions or {}), "schemaGeneration": served.generation}
    status = 400 if request_error and media_type == GRAPHQL_RESPONSE else 200
    return JSONResponse(body, status_code=status, media_type=media_type)


def _response_media_type(request: Request) -> str:
    accept = request.headers.get("accept", "")
    return GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else JSON


async def _read_params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        raw: dict[str, Any] = dict(request.query_params)
        if "variables" in raw:
            raw["variables"] = _json_field(raw["variables"], "variables")
        if "extensions" in raw:
            raw["extensions"] = _json_field(raw["extensions"], "extensions")
    elif request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise BadRequest("POST /graphql takes a JSON body: set Content-Type: application/json", status=415)
        try:
            raw = json.loads(await request.body())
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise BadRequest("the request body must be a JSON object with a 'query'")
    else:
        raise BadRequest("use GET or POST", status=405, headers={"Allow": "GET, POST"})

    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("the request has no 'query' string")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("'variables' must be a JSON object")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest("'operationName' must be a string")
    return {"query": query, "variables": variables, "operationName": operation_name}


def _json_field(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequest(f"the '{name}' query parameter is not valid JSON") from None
