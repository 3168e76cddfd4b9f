"""The GraphQL-over-HTTP specification, point by point, as a client on the network sees it: every
request goes over a socket to uvicorn on 127.0.0.1, started for the test on its own fresh database
and stopped at the test's end. Requests are written byte by byte, so no client library adds an
Accept or Content-Type header the test did not ask for.

Where a test sends something that must not change data it counts the rows afterwards, on SQLite and
on PostgreSQL. Tests of HTTP framing alone (media types, parameters, status codes of request errors)
run on SQLite only: what they check is decided before any SQL runs, and a PostgreSQL database per
test would double their time for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import uvicorn

from modula.app import create_app
from modula.config import Settings
from modula_testing import create_test_user

GRAPHQL_RESPONSE = "application/graphql-response+json; charset=utf-8"
JSON = "application/json; charset=utf-8"
TYPENAME = "{ __typename }"
VALIDATION_ERROR = "{ nope }"


def create_route(slug: str, name: str = "") -> str:
    """A mutation that writes one row into `routes` (named `name` if given)."""
    return f'mutation {name} {{ createRoute(input: {{slug: "{slug}", title: "T"}}) {{ id }} }}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    raw: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))

    def error(self) -> str:
        """The message of the one error in a single answer."""
        errors = self.json()["errors"]
        assert len(errors) == 1, errors
        return errors[0]["message"]


class Server:
    """A Modula server listening on 127.0.0.1, and an HTTP/1.1 client that sends exactly the
    headers it is given (plus Host, Content-Length and Connection: close)."""

    def __init__(self, app, port: int) -> None:
        self.app = app
        self.port = port
        self.token: str | None = None

    async def request(self, method: str, target: str = "/graphql", body: bytes | None = None,
                      headers: dict[str, str] | None = None, chunked: bool = False) -> Answer:
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None and chunked:  # no Content-Length: the size is known only at the end
            lines.append("Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:1000], body[1000:]) if part) + b"0\r\n\r\n"
        elif body is not None:
            lines.append(f"Content-Length: {len(body)}")
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
            await writer.drain()
            response = await reader.read()  # to the end: the server closes after answering
        finally:
            writer.close()
        head, _, content = response.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = (line.split(":", 1) for line in header_lines)
        headers = {name.strip().lower(): value.strip() for name, value in fields}
        return Answer(int(status_line.split()[1]), headers, content)

    async def post(self, payload: Any, *, accept: str | None = None, content_type: str = "application/json") -> Answer:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept is not None else {})}
        return await self.request("POST", body=json.dumps(payload).encode("utf-8"), headers=headers)

    async def get(self, parameters: dict[str, str], *, accept: str | None = None, method: str = "GET") -> Answer:
        # application/x-www-form-urlencoded, as the WhatWG URLSearchParams writes it
        target = "/graphql?" + urlencode(parameters)
        return await self.request(method, target, headers={"Accept": accept} if accept is not None else {})

    async def count(self, table: str) -> int:
        async with self.app.state.database.session() as session:
            return await session.fetch_value(sa.select(sa.func.count()).select_from(sa.table(table)))

    async def sign_in_as_admin(self) -> None:
        """Send an administrator's API token (a service account's) from now on."""
        from modula.auth.tokens import create_token

        user = await create_test_user(self.app, "admin", roles=["admin"], password=None)
        async with self.app.state.database.session() as session:
            self.token, _ = await create_token(session, user["id"], name="tests")


@contextlib.asynccontextmanager
async def serving(database_url: str, plugins_dir: Path, **settings: Any):
    """uvicorn serving create_app() on a port the system picks, in this test's event loop."""
    app = create_app(Settings(database_url=database_url, plugins_dir=plugins_dir, **settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serve = asyncio.create_task(server.serve())
    while not server.started:
        if serve.done():
            serve.result()  # raises what stopped it
            raise RuntimeError("uvicorn stopped before it started: see its log above")
        await asyncio.sleep(0.01)
    try:
        yield Server(app, server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await serve


@pytest.fixture
async def server(database_url: str, tmp_path: Path):
    """A server on SQLite and on PostgreSQL: for tests that check what was (not) written."""
    async with serving(database_url, tmp_path / "plugins") as running:
        yield running


@pytest.fixture
async def sqlite_server(tmp_path: Path):
    """A server on a fresh SQLite file: for tests of HTTP framing only (see the module docstring)."""
    async with serving(f"sqlite:///{tmp_path / 'modula.db'}", tmp_path / "plugins") as running:
        yield running


# --- media types and the Accept header -------------------------------------------------------


async def test_without_an_accept_header_the_answer_is_graphql_response_json(sqlite_server):
    """Since the specification's 2025-01-01 watershed, no Accept means application/graphql-response+json."""
    ok = await sqlite_server.request("POST", body=json.dumps({"query": TYPENAME}).encode(),
                                     headers={"Content-Type": "application/json"})
    assert (ok.status, ok.content_type) == (200, GRAPHQL_RESPONSE)
    assert ok.json()["data"] == {"__typename": "Query"}
    invalid = await sqlite_server.get({"query": VALIDATION_ERROR})
    assert (invalid.status, invalid.content_type) == (400, GRAPHQL_RESPONSE)
    assert "data" not in invalid.json()


@pytest.mark.parametrize("accept, media_type", [
    ("application/json", JSON),
    ("application/graphql-response+json", GRAPHQL_RESPONSE),
    # the Accept header the specification recommends to clients
    ("application/graphql-response+json; charset=utf-8, application/json; charset=utf-8", GRAPHQL_RESPONSE),
    ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),
    ("application/json, application/graphql-response+json;q=0.9", JSON),
    ("application/graphql-response+json;q=0.5, application/json;q=0.8", JSON),
    ("*/*", GRAPHQL_RESPONSE),
    ("application/*", GRAPHQL_RESPONSE),
    ("*/*;q=0.5, application/json", JSON),
    ("*/*, application/graphql-response+json;q=0", JSON),  # the more specific range decides
    ("text/html, application/json;q=0.1", JSON),
    ("APPLICATION/JSON", JSON),
    ("application/graphql-response+json; charset=utf-16, application/json", JSON),  # only UTF-8 is written
])
async def test_accept_chooses_the_media_type_by_q_value(sqlite_server, accept, media_type):
    # A validation error shows the status rule of the media type too: 400 or 200.
    answer = await sqlite_server.post({"query": VALIDATION_ERROR}, accept=accept)
    assert answer.content_type == media_type
    assert answer.status == (400 if media_type == GRAPHQL_RESPONSE else 200)
    assert "Cannot query field 'nope'" in answer.error() and "data" not in answer.json()


@pytest.mark.parametrize("accept", ["text/plain", "application/xml", "text/*", "image/png, text/html;q=0.9",
                                    "application/json;q=0, application/graphql-response+json;q=0",
                                    "application/json; charset=iso-8859-1"])
async def test_an_accept_header_allowing_neither_media_type_is_406(sqlite_server, accept):
    answer = await sqlite_server.post({"query": TYPENAME}, accept=accept)
    assert (answer.status, answer.content_type) == (406, JSON)
    assert answer.error() == ("the Accept header allows neither application/graphql-response+json nor "
                              "application/json: accept one of them")
    assert answer.headers["x-request-id"]


async def test_a_mutation_with_an_unacceptable_accept_header_writes_nothing(server):
    await server.sign_in_as_admin()
    answer = await server.post({"query": create_route("blog")}, accept="text/plain")
    assert answer.status == 406
    assert await server.count("routes") == 0
    # the same request, acceptable, writes: the refusal was the Accept header's
    assert (await server.post({"query": create_route("blog")}, accept="application/json")).status == 200
    assert await server.count("routes") == 1


async def test_answers_are_utf8_and_say_so(sqlite_server):
    # The validation error quotes the string back: its "é" must come as UTF-8 bytes, not escaped
    for accept, media_type in (("application/json", JSON), ("application/graphql-response+json", GRAPHQL_RESPONSE)):
        answer = await sqlite_server.post({"query": '{ datatype(id: "café") { id } }'}, accept=accept)
        assert answer.content_type == media_type
        assert "café".encode() in answer.raw
        assert answer.error() == 'Int cannot represent non-integer value: "café"'


async def test_a_browser_gets_the_playground_and_a_query_from_it_gets_json(sqlite_server):
    """The URL's other use (the playground page) does not stand in the way of GraphQL requests."""
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = await sqlite_server.request("GET", headers={"Accept": browser})
    assert page.status == 200 and page.content_type.startswith("text/html")
    assert b'<div id="graphiql">' in page.raw
    head = await sqlite_server.request("HEAD", headers={"Accept": browser})
    assert (head.status, head.content_type, head.raw) == (200, page.content_type, b"")
    answer = await sqlite_server.get({"query": TYPENAME}, accept=browser)
    assert (answer.status, answer.content_type) == (200, GRAPHQL_RESPONSE)
    assert answer.json()["data"] == {"__typename": "Query"}


# --- request parameters ----------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_null_parameters_count_as_absent(sqlite_server, accept):
    for name in ("operationName", "variables", "extensions"):
        answer = await sqlite_server.post({"query": TYPENAME, name: None}, accept=accept)
        assert answer.status == 200, name
        assert answer.json()["data"] == {"__typename": "Query"} and "errors" not in answer.json()


async def test_variables_operation_name_and_extensions_of_the_right_types_are_used(sqlite_server):
    document = "query Other { __typename } query Named($name: String!) { __type(name: $name) { name } }"
    answer = await sqlite_server.post({"query": document, "operationName": "Named", "variables": {"name": "Route"},
                                       "extensions": {"someClient": {"trace": True}}},
                                      accept="application/graphql-response+json")
    assert answer.status == 200
    assert answer.json()["data"] == {"__type": {"name": "Route"}}


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
@pytest.mark.parametrize("payload, message", [
    ({"qeury": TYPENAME}, "the request has no 'query' string"),
    ({"query": 1}, "'query' must be a string holding the GraphQL document"),
    ({"query": False}, "'query' must be a string holding the GraphQL document"),
    ({"query": {"obj": "ect"}}, "'query' must be a string holding the GraphQL document"),
    ({"query": [TYPENAME]}, "'query' must be a string holding the GraphQL document"),
    ({"query": TYPENAME, "operationName": 1}, "'operationName' must be a string"),
    ({"query": TYPENAME, "operationName": ["Q"]}, "'operationName' must be a string"),
    ({"query": TYPENAME, "variables": [7]}, "'variables' must be a JSON object"),
    ({"query": TYPENAME, "variables": "{}"}, "'variables' must be a JSON object"),
    ({"query": TYPENAME, "variables": 0}, "'variables' must be a JSON object"),
    ({"query": TYPENAME, "extensions": "x"}, "'extensions' must be a JSON object"),
    ({"query": TYPENAME, "extensions": False}, "'extensions' must be a JSON object"),
    ({"query": TYPENAME, "extensions": []}, "'extensions' must be a JSON object"),
    ("{ __typename }", "the request body must be a JSON object with a 'query', or an array of them"),
])
async def test_parameters_of_the_wrong_type_are_not_a_well_formed_request_400(sqlite_server, payload, message, accept):
    """Both media types: the specification asks for 400 when the request is not well-formed."""
    answer = await sqlite_server.post(payload, accept=accept)
    assert answer.status == 400
    assert answer.error() == message and "data" not in answer.json()


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
@pytest.mark.parametrize("body, message", [
    (b"NONSENSE", "the request body is not valid JSON"),
    (b'{"query":', "the request body is not valid JSON"),
    (b"", "the request body is not valid JSON"),
    (b'{"query": "query($f: Float) { __typename }", "variables": {"f": NaN}}', "the request body is not valid JSON"),
    ('{"query": "{ caf\u00e9 }"}'.encode("latin-1"), "the request body is not UTF-8: send JSON encoded in UTF-8"),
])
async def test_a_body_that_is_not_utf8_json_is_400(sqlite_server, body, message, accept):
    answer = await sqlite_server.request("POST", body=body, headers={"Content-Type": "application/json",
                                                                      "Accept": accept})
    assert answer.status == 400
    assert answer.error() == message and "data" not in answer.json()


# --- POST and its Content-Type ---------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8",
                                          'application/json;charset="UTF-8"', "application/json; charset=utf8"])
async def test_post_takes_json_whatever_the_case_with_or_without_a_utf8_charset(sqlite_server, content_type):
    answer = await sqlite_server.post({"query": '{ __type(name: "Run🏃Swim🏊") { name } }'},
                                      content_type=content_type, accept="application/graphql-response+json")
    assert answer.status == 200
    assert answer.json()["data"] == {"__type": None}


async def test_a_post_in_another_charset_or_without_json_writes_nothing(server):
    await server.sign_in_as_admin()
    mutation = json.dumps({"query": create_route("blog")})
    utf16 = await server.request("POST", body=mutation.encode("utf-16"),
                                 headers={"Content-Type": "application/json; charset=utf-16"})
    assert utf16.status == 415
    assert utf16.error() == ("the body must be JSON in UTF-8, not utf-16: send Content-Type: application/json; "
                             "charset=utf-8")
    untyped = await server.request("POST", body=mutation.encode())
    form = await server.request("POST", body=urlencode({"query": create_route("blog")}).encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    for refused in (untyped, form):
        assert refused.status == 415
        assert refused.error() == ("POST /graphql takes a JSON body (Content-Type: application/json), or a GraphQL "
                                   "multipart request (multipart/form-data) to upload files")
    assert await server.count("routes") == 0
    typed = await server.request("POST", body=mutation.encode(), headers={"Content-Type": "application/json"})
    assert typed.status == 200 and await server.count("routes") == 1


async def test_a_body_over_the_size_limit_is_413_and_writes_nothing(database_url: str, tmp_path: Path):
    async with serving(database_url, tmp_path / "plugins", max_body_bytes=4000) as server:
        await server.sign_in_as_admin()

        def mutation(padding: int) -> bytes:
            return json.dumps({"query": create_route("blog"), "extensions": {"pad": "x" * padding}}).encode()

        declared = await server.request("POST", body=mutation(5000), headers={"Content-Type": "application/json"})
        streamed = await server.request("POST", body=mutation(5000), headers={"Content-Type": "application/json"},
                                        chunked=True)
        for refused in (declared, streamed):
            assert refused.status == 413
            assert refused.error().startswith("the request body is larger than the server's limit of 4000 bytes")
        assert await server.count("routes") == 0
        within = await server.request("POST", body=mutation(3000), headers={"Content-Type": "application/json"},
                                      chunked=True)
        assert within.status == 200 and await server.count("routes") == 1


# --- GET and HEAD ----------------------------------------------------------------------------


async def test_get_takes_the_parameters_url_encoded_with_variables_and_extensions_as_json(sqlite_server):
    answer = await sqlite_server.get({
        "query": "query Q($name: String!) { __type(name: $name) { name } }",
        "operationName": "Q",
        "variables": json.dumps({"name": "Route"}),
        "extensions": json.dumps({"someClient": {"trace": True}}),
    }, accept="application/json")
    assert (answer.status, answer.content_type) == (200, JSON)
    assert answer.json()["data"] == {"__type": {"name": "Route"}}


async def test_get_with_an_empty_operation_name_runs_the_only_operation(sqlite_server):
    answer = await sqlite_server.get({"query": "query Only { __typename }", "operationName": ""},
                                     accept="application/graphql-response+json")
    assert answer.status == 200 and answer.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("parameters, message", [
    ({"query": TYPENAME, "variables": "{nope"}, "the 'variables' query parameter is not valid JSON"),
    ({"query": TYPENAME, "variables": "[7]"}, "'variables' must be a JSON object"),
    ({"query": TYPENAME, "extensions": '"x"'}, "'extensions' must be a JSON object"),
    ({"query": TYPENAME, "extensions": "NaN"}, "the 'extensions' query parameter is not valid JSON"),
    ({"variables": "{}"}, "the request has no 'query' string"),
])
async def test_get_with_malformed_parameters_is_400(sqlite_server, parameters, message):
    for accept in ("application/json", "application/graphql-response+json"):
        answer = await sqlite_server.get(parameters, accept=accept)
        assert answer.status == 400
        assert answer.error() == message


async def test_get_never_runs_a_mutation_even_one_chosen_by_operation_name(server):
    await server.sign_in_as_admin()
    document = "query Routes { routes { slug } } " + create_route("blog", "Create")
    for accept in ("application/json", "application/graphql-response+json", None):
        for parameters in ({"query": document, "operationName": "Create"}, {"query": create_route("blog")}):
            answer = await server.get(parameters, accept=accept)
            assert answer.status == 405
            assert answer.headers["allow"] == "POST"
            assert answer.error() == "mutations and subscriptions are not allowed over GET; use POST"
    assert await server.count("routes") == 0
    # The query of the same document runs; its mutation runs over POST
    answer = await server.get({"query": document, "operationName": "Routes"}, accept="application/json")
    assert (answer.status, answer.json()["data"]) == (200, {"routes": []})
    assert (await server.post({"query": document, "operationName": "Create"})).status == 200
    assert await server.count("routes") == 1


async def test_head_is_answered_as_get_without_a_body(server):
    await server.sign_in_as_admin()
    query = await server.get({"query": TYPENAME}, method="HEAD")
    assert (query.status, query.content_type, query.raw) == (200, GRAPHQL_RESPONSE, b"")
    mutation = await server.get({"query": create_route("blog")}, method="HEAD")
    assert (mutation.status, mutation.headers["allow"], mutation.raw) == (405, "POST", b"")
    assert await server.count("routes") == 0
    assert (await server.post({"query": create_route("blog")})).status == 200  # what POST is for
    assert await server.count("routes") == 1


async def test_other_methods_are_405_and_name_the_allowed_ones(server):
    await server.sign_in_as_admin()
    for method in ("PUT", "PATCH", "DELETE"):
        answer = await server.request(method, body=json.dumps({"query": create_route("blog")}).encode(),
                                      headers={"Content-Type": "application/json"})
        assert answer.status == 405
        assert sorted(answer.headers["allow"].split(", ")) == ["GET", "HEAD", "POST"]
    assert await server.count("routes") == 0
    assert (await server.post({"query": create_route("blog")})).status == 200  # what POST is for
    assert await server.count("routes") == 1


# --- status codes and data -------------------------------------------------------------------


REQUEST_ERRORS = [
    pytest.param({"query": "{"}, "Syntax Error: Expected Name, found <EOF>.", id="document-does-not-parse"),
    pytest.param({"query": ""}, "the 'query' is empty: send the GraphQL document to run", id="empty-document"),
    pytest.param({"query": VALIDATION_ERROR}, "Cannot query field 'nope' on type 'Query'.", id="validation"),
    pytest.param({"query": "query A { __typename } query B { __typename }"},
                 "the document has 2 operations: send 'operationName' to choose the one to run",
                 id="operation-not-chosen"),
    pytest.param({"query": "fragment F on Query { __typename }"}, "the document has no operation to run",
                 id="no-operation"),
    pytest.param({"query": "query A { __typename }", "operationName": "B"}, "the document has no operation named 'B'",
                 id="operation-not-found"),
    pytest.param({"query": "query($s: String!) { route(slug: $s) { id } }", "variables": {"s": None}},
                 "Variable '$s' has invalid value: Expected value of non-null type 'String!' not to be None.",
                 id="variable-null-for-non-null"),
    pytest.param({"query": "query($s: String!) { route(slug: $s) { id } }"},
                 "Variable '$s' has invalid value: Expected a value of non-null type 'String!' to be provided.",
                 id="variable-missing"),
    pytest.param({"query": "query($i: Int!) { datatype(id: $i) { id } }", "variables": {"i": "seven"}},
                 "Variable '$i' has invalid value: Int cannot represent non-integer value: 'seven'",
                 id="variable-of-the-wrong-type"),
]


@pytest.mark.parametrize("payload, message", REQUEST_ERRORS)
async def test_request_errors_leave_data_out_400_with_graphql_response_json(sqlite_server, payload, message):
    answer = await sqlite_server.post(payload, accept="application/graphql-response+json")
    assert (answer.status, answer.content_type) == (400, GRAPHQL_RESPONSE)
    assert answer.error() == message
    assert "data" not in answer.json()


@pytest.mark.parametrize("payload, message", REQUEST_ERRORS)
async def test_request_errors_leave_data_out_200_with_application_json(sqlite_server, payload, message):
    answer = await sqlite_server.post(payload, accept="application/json")
    assert (answer.status, answer.content_type) == (200, JSON)
    assert answer.error() == message
    assert "data" not in answer.json()


async def test_a_document_of_several_operations_without_operation_name_runs_none_of_them(server):
    """GraphQL's GetOperation() cannot choose, so nothing runs (Strawberry alone would run the first)."""
    await server.sign_in_as_admin()
    two_mutations = create_route("a", "A") + create_route("b", "B")
    for accept, status in (("application/graphql-response+json", 400), ("application/json", 200)):
        answer = await server.post({"query": two_mutations}, accept=accept)
        assert answer.status == status
        assert answer.error() == "the document has 2 operations: send 'operationName' to choose the one to run"
        assert "data" not in answer.json()
    # Over GET too: the query and operationName choose no mutation, so it is not 405 but a request error
    query_and_mutation = "query Q { __typename } " + create_route("c", "M")
    answer = await server.get({"query": query_and_mutation}, accept="application/graphql-response+json")
    assert answer.status == 400 and "2 operations" in answer.error()
    assert await server.count("routes") == 0
    named = await server.post({"query": two_mutations, "operationName": "B"})
    assert named.json()["data"]["createRoute"]["id"] and await server.count("routes") == 1


async def test_a_variable_that_does_not_coerce_stops_a_mutation_before_it_runs(server):
    await server.sign_in_as_admin()
    mutation = "mutation($input: CreateRouteInput!) { createRoute(input: $input) { id } }"
    answer = await server.post({"query": mutation, "variables": {"input": {"slug": "blog", "title": 7}}},
                               accept="application/graphql-response+json")
    assert answer.status == 400
    assert answer.error() == ("Variable '$input' has invalid value at .title: "
                              "String cannot represent a non string value: 7")
    assert "data" not in answer.json()
    assert await server.count("routes") == 0


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_a_field_error_that_nulls_the_data_is_still_200_with_data_null(server, accept):
    await server.sign_in_as_admin()
    assert (await server.post({"query": create_route("blog")}, accept=accept)).status == 200
    again = await server.post({"query": create_route("blog")}, accept=accept)  # the slug is taken
    assert again.status == 200
    body = again.json()
    assert body["data"] is None  # present, and null: createRoute is non-null
    assert body["errors"][0]["path"] == ["createRoute"] and body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert await server.count("routes") == 1


async def test_partial_data_with_a_field_error_is_200(sqlite_server, monkeypatch):
    from modula.cms import routes

    async def broken(session, **kwargs):
        raise RuntimeError("SELECT * FROM routes failed")

    monkeypatch.setattr(routes, "find_route", broken)
    answer = await sqlite_server.post({"query": '{ __typename route(slug: "blog") { id } }'},
                                      accept="application/graphql-response+json")
    assert answer.status == 200
    body = answer.json()
    assert body["data"] == {"__typename": "Query", "route": None}
    assert body["errors"][0]["path"] == ["route"] and body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


async def test_a_server_failure_before_execution_is_masked_and_500(sqlite_server, monkeypatch, caplog):
    """A bug in a schema extension (here in the request limits): no data, so not 2xx; the client's
    request was not at fault, so not 400; and the message stays in the log."""
    from modula.schema import limits

    def broken(max_depth, max_aliases):
        raise RuntimeError("SELECT secret FROM somewhere")

    monkeypatch.setattr(limits, "document_rules", broken)
    with caplog.at_level(logging.ERROR, logger="modula.graphql"):
        strict = await sqlite_server.post({"query": TYPENAME}, accept="application/graphql-response+json")
    assert strict.status == 500
    request_id = strict.headers["x-request-id"]
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert logged and "SELECT secret" in str(logged[0].exc_info[1])
    assert strict.json()["errors"] == [{"message": f"Internal server error (request {request_id})",
                                        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}]
    assert b"SELECT" not in strict.raw and "data" not in strict.json()
    legacy = await sqlite_server.post({"query": TYPENAME}, accept="application/json")
    assert legacy.status == 200 and b"SELECT" not in legacy.raw


async def test_a_bad_bearer_token_is_401_and_nothing_runs(server):
    server.token = "not-a-token"
    answer = await server.post({"query": create_route("blog")}, accept="application/graphql-response+json")
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await server.count("routes") == 0


# --- batches, a Modula extension -------------------------------------------------------------


async def test_a_batch_is_200_with_one_answer_per_operation_whatever_each_outcome(server):
    await server.sign_in_as_admin()
    answer = await server.post([
        {"query": create_route("blog")},
        {"query": VALIDATION_ERROR},
        {"query": "query A { __typename }", "operationName": "B"},
        {"query": "query($s: String!) { route(slug: $s) { slug } }", "variables": {"s": None}},
        {"query": create_route("blog")},  # the slug is taken now: a field error, data null
        {"query": "{ routes { slug } }"},
    ], accept="application/graphql-response+json")
    assert (answer.status, answer.content_type) == (200, GRAPHQL_RESPONSE)
    created, invalid, unknown, uncoerced, conflict, listed = answer.json()
    assert created["data"]["createRoute"]["id"]
    for request_error in (invalid, unknown, uncoerced):
        assert "data" not in request_error and len(request_error["errors"]) == 1
    assert unknown["errors"][0]["message"] == "the document has no operation named 'B'"
    assert conflict["data"] is None and conflict["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert listed["data"] == {"routes": [{"slug": "blog"}]}
    assert await server.count("routes") == 1


async def test_a_batch_with_a_malformed_operation_is_400_and_runs_none_of_it(server):
    await server.sign_in_as_admin()
    answer = await server.post([{"query": create_route("blog")}, {"query": TYPENAME, "extensions": []}],
                               accept="application/json")
    assert answer.status == 400
    assert answer.error() == "operation 2 of the batch: 'extensions' must be a JSON object"
    assert await server.count("routes") == 0
