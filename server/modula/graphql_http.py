"""GraphQL over HTTP: read the request, run it on the current schema with one held connection,
answer JSON.

GET runs queries only (a mutation over GET is 405, so links and prefetches cannot change data);
POST must be JSON, so a plain HTML form cannot post a mutation. A POST may batch: a JSON array of
at most `max_batch` operations, answered by an array. A client that accepts
`application/graphql-response+json` gets the status codes of the GraphQL-over-HTTP specification;
others get 200 with `application/json`.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from modula.auth.viewer import AuthenticationError, resolve_viewer
from modula.playground import playground_page, wants_playground
from modula.schema.context import RequestContext

log = logging.getLogger("modula.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}
        self.code = code

    def error(self) -> dict[str, Any]:
        return {"message": self.message, **({"extensions": {"code": self.code}} if self.code else {})}


async def graphql_endpoint(request: Request) -> Response:
    """Every answer carries the request's id in X-Request-ID: masked errors and the log name it.
    A browser opening /graphql gets the playground instead."""
    if wants_playground(request):
        return HTMLResponse(playground_page())
    request_id = uuid.uuid4().hex
    response = await _answer(request, request_id)
    response.headers["X-Request-ID"] = request_id
    return response


async def _answer(request: Request, request_id: str) -> Response:
    media_type = _response_media_type(request)
    state = request.app.state
    try:
        operations, batched = await _read_operations(request, state.settings.max_batch)
    except BadRequest as exc:
        return JSONResponse({"errors": [exc.error()]}, status_code=exc.status, media_type=media_type, headers=exc.headers)

    allowed = {OperationType.QUERY} if request.method == "GET" else None
    with state.live_schema.use() as served:
        async with state.database.session() as session:
            cookies: list = []
            try:
                viewer = await resolve_viewer(session, request, settings=state.settings, cookies=cookies)
            except AuthenticationError as exc:
                return JSONResponse({"errors": [{"message": exc.message, "extensions": exc.extensions}]},
                                    status_code=401, media_type=media_type,
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            results = []
            # A batch runs its operations one after another, as the same viewer on the same
            # connection; each gets its own context so that its loaders see what earlier ones wrote.
            for params in operations:
                context = RequestContext(session=session, settings=state.settings, request=request, schemas=state.schemas,
                                         viewer=viewer, response_cookies=cookies, request_id=request_id)
                try:
                    results.append(await served.schema.execute(
                        params["query"],
                        variable_values=params["variables"],
                        context_value=context,
                        operation_name=params["operationName"],
                        allowed_operation_types=allowed,
                    ))
                except CannotGetOperationTypeError:
                    # e.g. an editor that still sends the name of an operation the document no longer has
                    message = (f"the document has no operation named {params['operationName']!r}"
                               if params["operationName"] else "the document has no single operation to run: "
                               "send 'operationName'")
                    return JSONResponse({"errors": [{"message": message}]}, media_type=media_type,
                                        status_code=400 if media_type == GRAPHQL_RESPONSE else 200)
                except InvalidOperationTypeError:
                    return JSONResponse(
                        {"errors": [{"message": "mutations and subscriptions are not allowed over GET; use POST"}]},
                        status_code=405, media_type=media_type, headers={"Allow": "POST"},
                    )

    answers = [_body(result, served.generation) for result in results]
    if batched:  # each operation answers for itself; the batch as a whole went through
        response = JSONResponse([body for body, _ in answers], media_type=media_type)
    else:
        body, request_error = answers[0]
        status = 400 if request_error and media_type == GRAPHQL_RESPONSE else 200
        response = JSONResponse(body, status_code=status, media_type=media_type)
    for cookie in cookies:
        cookie.apply(response)
    return response


def _body(result: Any, generation: int) -> tuple[dict[str, Any], bool]:
    """The JSON answer to one operation, and whether the request failed before execution."""
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    request_error = result.data is None and bool(result.errors) and all(not e.path for e in result.errors)
    if not request_error:
        body["data"] = result.data
    body["extensions"] = {**(result.extensions or {}), "schemaGeneration": generation}
    return body, request_error


def _response_media_type(request: Request) -> str:
    accept = request.headers.get("accept", "")
    return GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else JSON


async def _read_operations(request: Request, max_batch: int) -> tuple[list[dict[str, Any]], bool]:
    """The operations to run, and whether they came as a batch (a JSON array of operations)."""
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
    else:
        raise BadRequest("use GET or POST", status=405, headers={"Allow": "GET, POST"})

    if not isinstance(raw, list):
        return [_operation(raw)], False
    # A batch is checked whole before any of it runs.
    if not raw:
        raise BadRequest("the batch is empty: send at least one operation")
    if len(raw) > max_batch:
        raise BadRequest(f"a batch of {len(raw)} operations exceeds the maximum of {max_batch}", code="BATCH_TOO_LARGE")
    return [_operation(item, f"operation {number} of the batch: ") for number, item in enumerate(raw, 1)], True


def _operation(raw: Any, where: str = "") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}not a JSON object with a 'query'" if where
                         else "the request body must be a JSON object with a 'query', or an array of them")
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest(f"{where}the request has no 'query' string")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest(f"{where}'variables' must be a JSON object")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest(f"{where}'operationName' must be a string")
    return {"query": query, "variables": variables, "operationName": operation_name}


def _json_field(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequest(f"the '{name}' query parameter is not valid JSON") from None
