"""GraphQL over HTTP, as the GraphQL-over-HTTP specification asks: read the request, run it on the
current schema with one held connection, answer JSON.

Requests. GET (and HEAD) run queries only: a mutation over GET is 405, so links and prefetches
cannot change data. POST must be `application/json` in UTF-8, so a plain HTML form cannot post a
mutation; or a GraphQL multipart request (file uploads, `uploads.py`) that carries a header no
form can send (`Authorization`, or `GraphQL-Require-Preflight`). The parameters are `query` (a string), `operationName` (a string), `variables` and
`extensions` (objects); null means absent, and GET carries variables and extensions as JSON text.
A POST may batch, a Modula extension: a JSON array of at most `max_batch` operations, answered by
an array with status 200 whatever each operation's outcome. A multipart request that carries files
is one unit (`upload_unit.py`): its operations run in one transaction, kept only if none fails.

Responses. The media type is `application/graphql-response+json` unless the Accept header prefers
`application/json`; no Accept header counts as accepting anything (the specification's default
since 2025), and an Accept header that allows neither type gets 406. A request that is not
well-formed (not JSON, a parameter of the wrong type) is 400. A request error (the document does
not parse or validate, the operation cannot be determined, the variables do not coerce) leaves
`data` out of the answer: 400 with `application/graphql-response+json`, 200 with
`application/json`, as the specification asks of each (a failure of the server before execution
is masked, and 500 with the former). Once the operation ran, the answer has `data` (perhaps null,
beside field errors) and is 200.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from modula.auth.viewer import AuthenticationError, resolve_viewer
from modula.config import Settings
from modula.db.storable import unstorable
from modula.logs import current_request, new_request_id
from modula.metrics import operation_type, outcome
from modula.playground import playground_page, wants_playground
from modula.schema.compiled.run import RawJSON
from modula.schema.context import RequestContext
from modula.schema.cost import CostSettings
from modula.schema.persisted import PersistedQueryError
from modula.schema.errors import internal_error_message, is_internal
from modula.schema.limits import parse_within
from modula.upload_unit import Undo, UploadUnit
from modula.uploads import MULTIPART, MalformedUpload, StagedUploads, read_multipart

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
UTF8 = ("utf-8", "utf8")
# Headers a multipart (upload) request must carry one of: a browser sends them only after a CORS preflight.
PREFLIGHT_HEADERS = ("authorization", "graphql-require-preflight", "apollo-require-preflight", "x-apollo-operation-name")


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
    served = current_request()  # RequestIds (the app's middleware) made it and puts it in the header
    request_id = served.id if served is not None else new_request_id()
    response = await _answer(request, request_id)
    if served is None:
        response.headers["X-Request-ID"] = request_id
    return response


_OPERATION_NAME = re.compile(r"^\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")


def _note_operation(params: dict[str, Any]) -> None:
    """Tell the request's log line which operation ran: `operationName`, else the document's first
    operation's name (when it starts the document); a batch's names are joined with commas."""
    served = current_request()
    if served is None:
        return
    name = params.get("operationName")
    if not name and isinstance(params.get("query"), str):
        match = _OPERATION_NAME.match(params["query"])
        name = match.group(1) if match else None
    if name:
        served.operation = f"{served.operation},{name}" if served.operation else name


async def _answer(request: Request, request_id: str) -> Response:
    media_type = response_media_type(request.headers.get("accept"))
    if media_type is None:
        return _json({"errors": [{"message": f"the Accept header allows neither {GRAPHQL_RESPONSE} nor {JSON}: "
                                             "accept one of them"}]}, JSON, status=406)
    staged = StagedUploads()
    try:
        return await _answer_with(request, request_id, media_type, staged)
    finally:
        staged.close()


async def _answer_with(request: Request, request_id: str, media_type: str, staged: StagedUploads) -> Response:
    state = request.app.state
    try:
        operations, batched = await _read_operations(request, state.settings, staged)
    except BadRequest as exc:
        return _json({"errors": [exc.error()]}, media_type, status=exc.status, headers=exc.headers)

    safe = request.method != "POST"  # GET or HEAD: the route allows no other method
    metrics = getattr(state, "metrics", None)
    with state.live_schema.use() as served:
        # Lazy: a request holds a connection only from its first statement (a warmed fast-path read or
        # a plugin handler that runs no SQL holds none), so long Lua calls do not starve the pool.
        async with state.database.session(lazy=True) as session:
            cookies: list = []
            try:
                viewer = await resolve_viewer(session, request, settings=state.settings, cookies=cookies,
                                              cache=state.schemas.viewers)
            except AuthenticationError as exc:
                return _json({"errors": [{"message": exc.message, "extensions": exc.extensions}]}, media_type,
                             status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            answers: list[tuple[dict[str, Any], int]] = []
            # Files make the request one unit: its operations run in one transaction, kept only if all succeed.
            unit = UploadUnit() if staged.files else None
            try:
                async with session.transaction() if unit is not None else contextlib.nullcontext():
                    # A batch runs its operations one after another, as the same viewer on the same
                    # connection; each gets its own context so that its loaders see what earlier ones wrote.
                    for number, params in enumerate(operations):
                        _note_operation(params)
                        context = RequestContext(session=session, settings=state.settings, request=request,
                                                 schemas=state.schemas, viewer=viewer, response_cookies=cookies,
                                                 request_id=request_id, media_storage=state.media_storage, uploads=unit)
                        if unit is not None:
                            unit.operation = number
                        started = time.perf_counter()
                        try:
                            answers.append(await _execute(served.schema, params, context, safe=safe))
                        except InvalidOperationTypeError:  # checked before validation: nothing ran
                            message = "mutations and subscriptions are not allowed over GET; use POST"
                            return _json({"errors": [{"message": message}]}, media_type, status=405,
                                         headers={"Allow": "POST"})
                        if metrics is not None:
                            body, status = answers[-1]
                            metrics.observe_request(operation_type(params.get("query"), params.get("operationName")),
                                                    outcome(body, status), time.perf_counter() - started)
                    if unit is not None and unit.failed(answers):
                        raise Undo
            except Undo:
                await unit.forget(session, state.media_storage)
                answers = unit.undone(answers)
            except BaseException:
                if unit is not None:  # the sweep at the next start removes what this cannot
                    with contextlib.suppress(Exception):
                        await unit.forget(session, state.media_storage)
                raise

    for body, _ in answers:
        body["extensions"] = {**body.get("extensions", {}), "schemaGeneration": served.generation}
    if batched:  # each operation answers for itself; the batch as a whole went through
        response = _json([body for body, _ in answers], media_type)
    else:
        body, status = answers[0]
        response = _json(body, media_type, status=status if media_type == GRAPHQL_RESPONSE else 200)
    for cookie in cookies:
        cookie.apply(response)
    return response


async def _execute(schema: Any, params: dict[str, Any], context: RequestContext, *,
                   safe: bool) -> tuple[dict[str, Any], int]:
    """The GraphQL response to one operation, and its status under application/graphql-response+json:
    200 once the operation ran (`data` present, perhaps null), else 400 for a request error or 500
    when the server failed before execution."""
    persisted = getattr(schema, "persisted", None)
    try:
        params = persisted.resolve(params) if persisted is not None else params
    except PersistedQueryError as exc:
        return {"errors": [exc.error()]}, 400
    if not params["query"]:  # Strawberry takes an empty document for a missing parameter
        return {"errors": [{"message": "the 'query' is empty: send the GraphQL document to run"}]}, 400
    refused = _refused_input(params, context.settings)
    if refused is None and context.uploads is not None:
        refused = context.uploads.admit(params["query"], params["operationName"], context.settings.max_tokens)
    if refused is not None:
        return {"errors": [refused]}, 400
    cost = _cost(schema, params, context.settings)
    if cost is not None and cost > context.settings.max_query_cost:
        limit = context.settings.max_query_cost
        return {"errors": [{"message": f"the operation's estimated cost is {cost:,}, over the limit of {limit:,}"
                                       " (max_query_cost): ask for fewer rows (limit, first) or fewer nested lists",
                            "extensions": {"code": "COST_EXCEEDED", "cost": cost, "maxCost": limit}}]}, 400
    operations = _operation_count(params["query"], context.settings.max_tokens)
    if operations > 1 and params["operationName"] is None:
        # GraphQL's GetOperation() makes this a request error; Strawberry would run the first one
        message = f"the document has {operations} operations: send 'operationName' to choose the one to run"
        return {"errors": [{"message": message}]}, 400
    compiled = getattr(schema, "compiled", None)
    if compiled is not None and context.settings.fast_path:
        answer = await compiled.answer(params, context, safe=safe)
        if answer is not None:  # the whole operation ran as one statement; else Strawberry runs it
            return _with_cost(answer, params, cost, context.settings), 200
    try:
        result = await schema.execute(params["query"], variable_values=params["variables"], context_value=context,
                                      operation_name=params["operationName"],
                                      allowed_operation_types={OperationType.QUERY} if safe else None)
    except CannotGetOperationTypeError:
        # e.g. an editor that still sends the name of an operation the document no longer has
        message = (f"the document has no operation named {params['operationName']!r}" if params["operationName"]
                   else "the document has no operation to run")
        return {"errors": [{"message": message}]}, 400

    body: dict[str, Any] = {}
    errors = result.errors or []
    if errors:
        body["errors"] = [_client_error(error, context.request_id) for error in errors]
    # Errors raised before execution (parsing, validation, variable coercion) have no path and
    # leave no data; an operation that ran has data, null where a field error reached the root.
    request_error = result.data is None and bool(errors) and not any(error.path for error in errors)
    if not request_error:
        body["data"] = result.data
    if result.extensions:
        body["extensions"] = dict(result.extensions)
    status = 200 if not request_error else 500 if any(is_internal(error) for error in errors) else 400
    return _with_cost(body, params, cost, context.settings), status


def _cost(schema: Any, params: dict[str, Any], settings: Any) -> int | None:
    """The operation's estimated cost (schema/cost.py), None when the document does not parse or
    names what the schema lacks: execution reports those."""
    plans = getattr(schema, "costs", None)
    if plans is None:
        return None
    try:
        document = parse_within(params["query"], settings.max_tokens)
    except GraphQLError:
        return None
    limits = CostSettings(settings.max_query_cost, settings.lua_field_cost, min(settings.default_page_size, settings.max_page_size))
    return plans.estimate(params["query"], params["operationName"], document, params["variables"] or {}, limits)


def _with_cost(body: dict[str, Any], params: dict[str, Any], cost: int | None, settings: Any) -> dict[str, Any]:
    """`extensions.cost` when the request's extensions ask for it (`{"cost": true}`)."""
    if cost is not None and (params.get("extensions") or {}).get("cost") is True:
        body["extensions"] = {**body.get("extensions", {}), "cost": {"estimate": cost, "maxCost": settings.max_query_cost}}
    return body


def _refused_input(params: dict[str, Any], settings: Any) -> dict[str, Any] | None:
    """A request error for what no operation may receive, checked before parsing: a document over
    `max_document_bytes` (whatever it holds: comments too), and text the databases cannot store
    alike in the variables (a NUL, which PostgreSQL refuses and SQLite keeps; a lone surrogate,
    which is not UTF-8). Literals in the document are checked by validation (schema/limits.py)."""
    query = params["query"]
    # A character is at most 4 bytes: only a long document is encoded to be measured.
    size = len(query) if len(query) * 4 <= settings.max_document_bytes else len(query.encode("utf-8", "surrogatepass"))
    if size > settings.max_document_bytes:
        return {"message": f"the GraphQL document is {size:,} bytes, over the limit of {settings.max_document_bytes:,}"
                           " (max_document_bytes): send a shorter document", "extensions": {"code": "DOCUMENT_TOO_LARGE"}}
    found = unstorable(params["variables"] or {}, ("variables",))
    if found is not None:
        path, problem = found
        where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path[1:])
        return {"message": f"variable ${where[1:]} {problem}", "extensions": {"code": "INVALID_VALUE", "path": list(path)}}
    return None


def _operation_count(query: str, max_tokens: int) -> int:
    """How many operations the document holds (0 when it does not parse: the schema reports that).
    The parse is the one the schema's RequestLimits caches, so the document is not parsed twice."""
    try:
        document = parse_within(query, max_tokens)
    except GraphQLError:
        return 0
    return sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions)


def _client_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """The error as the client sees it. Errors in resolvers are masked by the schema already; a bug
    before execution (in a schema extension) is not, so it is masked here: logged, never shown."""
    if is_internal(error):
        return {"message": internal_error_message(request_id),
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}
    return error.formatted


def _json(body: Any, media_type: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status_code=status, headers=headers, media_type=f"{media_type}; charset=utf-8")


def _encode(body: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it, with `data` the database wrote spliced in as is."""
    if isinstance(body, list):
        return b"[" + b",".join(_encode(item) for item in body) + b"]"
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, RawJSON):
        return _dumps(body)
    rest = _dumps({key: value for key, value in body.items() if key != "data"})
    return b'{"data":' + data.text + (b"," + rest[1:] if len(rest) > 2 else b"}")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer in: of the two the server writes, the one the Accept header gives
    the higher q-value, a type's q-value coming from the most specific range that names it (RFC 9110
    §12.5.1); a tie goes to application/graphql-response+json. None when the header allows neither."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE  # no Accept header: the specification's default since 2025-01-01
    ranges = _media_ranges(accept)
    best, best_q = None, 0.0
    for media_type in (GRAPHQL_RESPONSE, JSON):
        q = next((ranges[name] for name in (media_type, "application/*", "*/*") if name in ranges), 0.0)
        if q > best_q:
            best, best_q = media_type, q
    return best


def _media_ranges(accept: str) -> dict[str, float]:
    """{media range: q-value} of an Accept header, leaving out ranges that ask for an encoding other
    than UTF-8 (the only one the server writes) and those with a q-value that is not a number."""
    ranges: dict[str, float] = {}
    for item in accept.split(","):
        media_range, parameters = _parse_media_type(item)
        if not media_range or parameters.get("charset", "utf-8") not in UTF8:
            continue
        try:
            q = float(parameters.get("q", "1"))
        except ValueError:
            continue
        ranges[media_range] = max(q, ranges.get(media_range, 0.0))
    return ranges


def _parse_media_type(text: str) -> tuple[str, dict[str, str]]:
    """'Application/JSON; Charset="UTF-8"' -> ('application/json', {'charset': 'utf-8'})."""
    media_type, *parameters = text.split(";")
    values = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        values[name.strip().lower()] = value.strip().strip('"').lower()
    return media_type.strip().lower(), values


async def _read_operations(request: Request, settings: Settings,
                           staged: StagedUploads) -> tuple[list[dict[str, Any]], bool]:
    """The operations to run, and whether they came as a batch (a JSON array of operations)."""
    max_batch = settings.max_batch
    if request.method == "POST" and _parse_media_type(request.headers.get("content-type", ""))[0] == MULTIPART:
        raw = await _multipart_body(request, settings, staged)
    elif request.method == "POST":
        raw = await _json_body(request, settings.max_body_bytes)
    else:  # GET or HEAD: the parameters are in the query string, variables and extensions as JSON
        raw = dict(request.query_params)
        for name in ("variables", "extensions"):
            if name in raw:
                raw[name] = _json_parameter(raw[name], name)

    if not isinstance(raw, list):
        return [_operation(raw)], False
    # A batch is checked whole before any of it runs.
    if not raw:
        raise BadRequest("the batch is empty: send at least one operation")
    if len(raw) > max_batch:
        raise BadRequest(f"a batch of {len(raw)} operations exceeds the maximum of {max_batch}", code="BATCH_TOO_LARGE")
    return [_operation(item, f"operation {number} of the batch: ") for number, item in enumerate(raw, 1)], True


async def _multipart_body(request: Request, settings: Settings, staged: StagedUploads) -> Any:
    """A GraphQL multipart request (file uploads, see `uploads`). An HTML form on another site can
    post multipart/form-data with the visitor's cookie, so it must carry a header no form can set."""
    if not any(name in request.headers for name in PREFLIGHT_HEADERS):
        raise BadRequest("a multipart request must carry an Authorization header (an API token) or the header "
                         "GraphQL-Require-Preflight: 1 (or Apollo-Require-Preflight), which no HTML form can send")
    storage = request.app.state.media_storage
    try:
        return await read_multipart(request.headers, request.stream(), staged, staging_dir=storage.staging_dir,
                                    max_bytes=settings.max_upload_bytes, max_files=settings.max_upload_files,
                                    max_field_bytes=settings.max_body_bytes)
    except MalformedUpload as exc:
        raise BadRequest(exc.message, status=exc.status) from None


async def _json_body(request: Request, max_body: int) -> Any:
    content_type, parameters = _parse_media_type(request.headers.get("content-type", ""))
    if content_type != JSON:
        raise BadRequest("POST /graphql takes a JSON body (Content-Type: application/json), or a GraphQL multipart "
                         "request (multipart/form-data) to upload files", status=415)
    charset = parameters.get("charset", "utf-8")  # the specification: no charset means UTF-8
    if charset not in UTF8:
        raise BadRequest(f"the body must be JSON in UTF-8, not {charset}: send Content-Type: application/json; "
                         "charset=utf-8", status=415)
    try:
        text = (await _body_within(request, max_body)).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8: send JSON encoded in UTF-8") from None
    return _json_text(text, "the request body is not valid JSON")


async def _body_within(request: Request, max_body: int) -> bytes:
    """The body, read only as far as the limit: a client cannot make the server hold more than
    `max_body` bytes of it, whatever its Content-Length says (or does not say)."""
    too_large = BadRequest(f"the request body is larger than the server's limit of {max_body} bytes "
                           "(MODULA_MAX_BODY_BYTES): send a smaller document or fewer variables", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _json_parameter(text: str, name: str) -> Any:
    return _json_text(text, f"the '{name}' query parameter is not valid JSON")


def _json_text(text: str, message: str) -> Any:
    try:
        # NaN and Infinity are not JSON (Python's parser takes them, and no answer could hold them)
        return json.loads(text, parse_constant=_not_json)
    except ValueError:
        raise BadRequest(message) from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _operation(raw: Any, where: str = "") -> dict[str, Any]:
    """One operation's parameters, checked for their types (null stands for an absent parameter)."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}not a JSON object with a 'query'" if where
                         else "the request body must be a JSON object with a 'query', or an array of them")
    query = raw.get("query")
    for name in ("variables", "extensions"):
        if raw.get(name) is not None and not isinstance(raw[name], dict):
            raise BadRequest(f"{where}'{name}' must be a JSON object")
    if query is None and "persistedQuery" not in (raw.get("extensions") or {}):
        raise BadRequest(f"{where}the request has no 'query' string")
    if query is not None and not isinstance(query, str):
        raise BadRequest(f"{where}'query' must be a string holding the GraphQL document")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest(f"{where}'operationName' must be a string")
    # An empty operationName is the same as none (the specification says so for GET; no operation
    # can be named "" in any request).
    return {"query": query, "variables": raw.get("variables"), "operationName": operation_name or None,
            "extensions": raw.get("extensions")}
