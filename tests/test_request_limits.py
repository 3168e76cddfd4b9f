"""Request limits and HTTP hygiene as clients see them: depth, alias, token and batch maxima refused
before any resolver runs, standard introspection allowed, production mode (introspection and
suggestions for admins only, internal errors masked with a request id), and CORS."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from graphql import get_introspection_query

from modula.config import Settings
from modula_testing import GraphQLClient, running_app, token_client

CREATE_ROUTE = 'createRoute(input: {slug: "%s", title: "T"}) { id }'


def nested_content(depth: int) -> str:
    """A selection `depth` field levels deep: content > children > ... > id."""
    return "content(id: 1) { " + "children { " * (depth - 2) + "id" + " }" * (depth - 1)


async def statements_run(client: GraphQLClient, query: str) -> tuple[dict, list[str]]:
    statements: list[str] = []
    stop = client.database.observe(statements.append)
    try:
        body = await client.execute(query)
    finally:
        stop()
    return body, statements


def only_error(body: dict) -> dict:
    assert len(body.get("errors") or []) == 1, body
    return body["errors"][0]


@pytest.fixture
async def production_app(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", production=True) as app:
        yield app


@pytest.fixture
async def production_anonymous(production_app):
    async with GraphQLClient.for_app(production_app) as client:
        yield client


@pytest.fixture
async def production_admin(production_app):
    async with token_client(production_app, "admin", roles=["admin"]) as client:
        yield client


# --- depth, aliases, tokens ------------------------------------------------------------------


async def test_too_deep_query_is_refused_before_any_resolver_runs(client):
    _, baseline = await statements_run(client, "{ __typename }")  # resolving the viewer, nothing else
    body, statements = await statements_run(client, "{ " + nested_content(14) + " }")
    error = only_error(body)
    assert error["message"] == "query depth 14 exceeds the maximum of 12"
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert "data" not in body
    assert len(statements) <= len(baseline)
    assert not [sql for sql in statements if "content" in sql]


async def test_too_deep_mutation_creates_nothing(client):
    body = await client.execute("mutation { " + CREATE_ROUTE % "first" + " deep: createContent(input: "
                                "{routeId: 1, datatypeId: 1}) { " + "children { " * 12 + "id" + " }" * 13 + " }")
    assert only_error(body)["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert await client.count("routes") == 0


async def test_a_query_at_the_maximum_depth_runs(client):
    # Ten nested lists are priced far over the cost limit (test_query_cost.py); depth alone is tried here
    app = client.app
    app.state.settings = dataclasses.replace(app.state.settings, max_query_cost=10**30)
    assert await client.data("{ " + nested_content(12) + " }") == {"content": None}


async def test_depth_counts_fragments_as_they_would_execute(client):
    query = "{ content(id: 1) { ...A } } fragment A on Content { children { ...B } } fragment B on Content { " \
            + "children { " * 10 + "id" + " }" * 10 + " }"
    assert only_error(await client.execute(query))["message"] == "query depth 13 exceeds the maximum of 12"


async def test_too_many_aliases_are_refused_counting_every_fragment_spread(client):
    aliases = " ".join(f"a{n}: __typename" for n in range(16))
    query = "{ one: content(id: 1) { ...F } two: content(id: 2) { ...F } } fragment F on Content { " + aliases + " }"
    error = only_error(await client.execute(query))  # 2 + 16 at each of 2 spreads
    assert error["message"] == "34 aliases exceed the maximum of 30"
    assert error["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert await client.data("{ " + " ".join(f"a{n}: __typename" for n in range(30)) + " }")


async def test_too_many_aliases_in_a_mutation_create_nothing(client):
    mutation = "mutation { " + " ".join(f"r{n}: " + CREATE_ROUTE % f"r{n}" for n in range(31)) + " }"
    assert only_error(await client.execute(mutation))["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert await client.count("routes") == 0


async def test_too_many_tokens_are_refused_before_validation(client):
    _, baseline = await statements_run(client, "{ __typename }")
    body, statements = await statements_run(client, "{ " + "__typename " * 5000 + "}")
    error = only_error(body)
    assert error["message"] == "the query exceeds the maximum of 5000 tokens"
    assert error["extensions"]["code"] == "TOO_MANY_TOKENS"
    assert len(statements) <= len(baseline)


async def test_comments_count_against_the_token_maximum(client):
    padded = "{ __typename }\n" + "#\n" * 5001
    assert only_error(await client.execute(padded))["extensions"]["code"] == "TOO_MANY_TOKENS"


async def test_a_syntax_error_is_still_a_syntax_error(client):
    assert "Syntax Error" in only_error(await client.execute("{ routes { "))["message"]


async def test_limits_come_from_the_settings(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", max_query_depth=3, max_aliases=1,
                           max_tokens=20) as app, GraphQLClient.for_app(app) as client:
        assert only_error(await client.execute("{ " + nested_content(4) + " }"))["message"] == \
            "query depth 4 exceeds the maximum of 3"
        assert only_error(await client.execute("{ a: __typename b: __typename }"))["message"] == \
            "2 aliases exceed the maximum of 1"
        assert only_error(await client.execute("{ " + "__typename " * 19 + "}"))["extensions"]["code"] == "TOO_MANY_TOKENS"


def test_limit_settings_read_from_the_environment():
    settings = Settings.from_env({"MODULA_MAX_QUERY_DEPTH": "8", "MODULA_MAX_ALIASES": "5", "MODULA_MAX_TOKENS": "900",
                                  "MODULA_MAX_BATCH": "3", "MODULA_PRODUCTION": "1",
                                  "MODULA_CORS_ORIGINS": "https://admin.example.com/, https://shop.example.com"})
    assert (settings.max_query_depth, settings.max_aliases, settings.max_tokens, settings.max_batch) == (8, 5, 900, 3)
    assert settings.production is True
    assert settings.cors_origins == ("https://admin.example.com", "https://shop.example.com")
    more = Settings.from_env({"MODULA_MAX_BODY_BYTES": "4096", "MODULA_DEFAULT_PAGE_SIZE": "20",
                              "MODULA_FOLLOW_INTERVAL": "0.5"})
    assert (more.max_body_bytes, more.default_page_size, more.follow_interval) == (4096, 20, 0.5)
    defaults = Settings.from_env({})
    assert (defaults.max_query_depth, defaults.max_aliases, defaults.max_tokens, defaults.max_batch) == (12, 30, 5000, 10)
    assert (defaults.production, defaults.cors_origins) == (False, ())


# --- introspection ---------------------------------------------------------------------------

FULL_INTROSPECTION = get_introspection_query(descriptions=True, specified_by_url=True, directive_is_repeatable=True,
                                             schema_description=True, input_value_deprecation=True, one_of=True)


async def test_the_playgrounds_introspection_query_passes_the_default_limits(anonymous):
    body = await anonymous.execute(FULL_INTROSPECTION)
    assert not body.get("errors"), body.get("errors")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_introspection_that_recurses_through_types_is_refused(anonymous):
    cycle = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert only_error(await anonymous.execute(cycle))["message"] == "Maximum introspection depth exceeded"


# --- batches ---------------------------------------------------------------------------------


async def test_a_batch_runs_each_operation_in_order_and_answers_an_array(client):
    response = await client.http.post("/graphql", json=[
        {"query": "mutation { " + CREATE_ROUTE % "blog" + " }"},
        {"query": "query($slug: String!) { route(slug: $slug) { slug } }", "variables": {"slug": "blog"}},
        {"query": "{ nope }"},
    ])
    assert response.status_code == 200
    first, second, third = response.json()
    assert first["data"]["createRoute"]["id"]
    assert second["data"] == {"route": {"slug": "blog"}}
    assert "Cannot query field 'nope'" in third["errors"][0]["message"] and "data" not in third
    assert all(answer["extensions"]["schemaGeneration"] == 1 for answer in (first, second, third))


async def test_a_batch_over_the_maximum_is_refused_before_anything_runs(client):
    batch = [{"query": "mutation { " + CREATE_ROUTE % f"r{n}" + " }"} for n in range(11)]
    response = await client.http.post("/graphql", json=batch)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"message": "a batch of 11 operations exceeds the maximum of 10",
                                          "extensions": {"code": "BATCH_TOO_LARGE"}}]
    assert await client.count("routes") == 0


async def test_a_batch_with_a_malformed_operation_runs_none_of_it(client):
    response = await client.http.post("/graphql", json=[{"query": "mutation { " + CREATE_ROUTE % "blog" + " }"},
                                                        {"variables": {}}])
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "operation 2 of the batch: the request has no 'query' string"
    assert await client.count("routes") == 0
    response = await client.http.post("/graphql", json=[])
    assert response.status_code == 400 and "empty" in response.json()["errors"][0]["message"]


async def test_each_operation_of_a_batch_is_held_to_the_limits(client):
    response = await client.http.post("/graphql", json=[{"query": "{ __typename }"},
                                                        {"query": "{ " + nested_content(13) + " }"}])
    ok, deep = response.json()
    assert ok["data"] == {"__typename": "Query"}
    assert deep["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"


# --- production mode -------------------------------------------------------------------------


async def test_production_refuses_introspection_to_non_admins(production_anonymous):
    for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Route") { name } }'):
        error = only_error(await production_anonymous.execute(query))
        assert error["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert (await production_anonymous.data("{ __typename }")) == {"__typename": "Query"}


async def test_production_keeps_introspection_for_admins(production_admin):
    body = await production_admin.execute(FULL_INTROSPECTION)
    assert not body.get("errors"), body.get("errors")


async def test_production_leaves_field_suggestions_out_for_non_admins(production_anonymous, production_admin):
    typo = "{ routes { slgu } }"
    assert only_error(await production_anonymous.execute(typo))["message"] == \
        "Cannot query field 'slgu' on type 'Route'."
    assert "Did you mean 'slug'?" in only_error(await production_admin.execute(typo))["message"]
    # Variables are checked during execution; their messages lose the suggestions too.
    body = await production_anonymous.execute("mutation($i: CreateRouteInput!) { createRoute(input: $i) { id } }",
                                              {"i": {"slgu": "x", "slug": "x", "title": "X"}})
    message = only_error(body)["message"]
    assert "'slgu'" in message and "Did you mean" not in message


async def test_suggestions_stay_outside_production(anonymous):
    assert "Did you mean 'slug'?" in only_error(await anonymous.execute("{ routes { slgu } }"))["message"]


async def test_production_masks_internal_errors_with_the_request_id(production_admin, monkeypatch, caplog):
    from modula.cms import routes as routes_service

    async def broken(session, **kwargs):
        raise RuntimeError('relation "routes" does not exist: SELECT * FROM routes')

    monkeypatch.setattr(routes_service, "list_routes", broken)
    with caplog.at_level(logging.ERROR, logger="modula.graphql"):
        response = await production_admin.http.post("/graphql", json={"query": "{ routes { id } }"})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    error = only_error(response.json())
    assert error["message"] == f"Internal server error (request {request_id})"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "SELECT" not in response.text
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert logged and "SELECT * FROM routes" in str(logged[0].exc_info[1])


async def test_every_answer_has_its_own_request_id(anonymous):
    ok = await anonymous.http.post("/graphql", json={"query": "{ __typename }"})
    refused = await anonymous.http.post("/graphql", content=b"{nope", headers={"content-type": "application/json"})
    assert refused.status_code == 400
    ids = {ok.headers["x-request-id"], refused.headers["x-request-id"]}
    assert len(ids) == 2


# --- CORS ------------------------------------------------------------------------------------


async def test_cors_answers_a_listed_origin_with_credentials_and_no_other(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins",
                           cors_origins=("https://admin.example.com",)) as app, GraphQLClient.for_app(app) as client:
        allowed = await client.http.post("/graphql", json={"query": "{ __typename }"},
                                         headers={"origin": "https://admin.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://admin.example.com"
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
        preflight = await client.http.options("/graphql", headers={
            "origin": "https://admin.example.com", "access-control-request-method": "POST",
            "access-control-request-headers": "content-type"})
        assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]

        other = await client.http.post("/graphql", json={"query": "{ __typename }"},
                                       headers={"origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in other.headers
        refused = await client.http.options("/graphql", headers={
            "origin": "https://evil.example.net", "access-control-request-method": "POST"})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


async def test_cors_star_never_allows_credentials(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins",
                           cors_origins=("*",)) as app, GraphQLClient.for_app(app) as client:
        response = await client.http.post("/graphql", json={"query": "{ __typename }"},
                                          headers={"origin": "https://anywhere.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


async def test_no_cors_headers_without_cors_origins(anonymous):
    response = await anonymous.http.post("/graphql", json={"query": "{ __typename }"},
                                         headers={"origin": "https://admin.example.com"})
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]
