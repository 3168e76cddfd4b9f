"""GraphQL over HTTP as a client sees it: methods, media types, bad requests, masked internal errors."""

from __future__ import annotations

import json

from cms_fixtures import make_route
from modula_testing import GraphQLClient

MUTATION = 'mutation { createRoute(input: {slug: "x", title: "X"}) { id } }'


async def test_get_runs_queries(client):
    await make_route(client)
    response = await client.http.get("/graphql", params={"query": "{ routes { slug } }"})
    assert response.status_code == 200
    assert response.json()["data"] == {"routes": [{"slug": "blog"}]}
    assert response.json()["extensions"]["schemaGeneration"] == 1


async def test_get_never_runs_a_mutation(client):
    response = await client.http.get("/graphql", params={"query": MUTATION})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert await client.count("routes") == 0


async def test_form_encoded_post_is_refused(client):
    response = await client.http.post("/graphql", data={"query": MUTATION})
    assert response.status_code == 415
    assert "application/json" in response.json()["errors"][0]["message"]
    assert await client.count("routes") == 0


async def test_other_bodies_a_page_can_post_without_a_preflight_are_refused(client):
    # text/plain carrying JSON and multipart are what an HTML form or a "simple" fetch can send
    # cross-site (with the visitor's cookie, never with an Authorization header): text/plain is
    # refused, and multipart (uploads) needs a header that only a preflighted request can carry.
    text = await client.http.post("/graphql", content=json.dumps({"query": MUTATION}),
                                  headers={"content-type": "text/plain"})
    operations = json.dumps({"query": MUTATION})
    async with GraphQLClient.for_app(client.app) as page:  # no Authorization header, like a form
        multipart = await page.http.post("/graphql", data={"operations": operations, "map": "{}"},
                                         files={"file": ("a.txt", b"x")})
    assert (text.status_code, multipart.status_code) == (415, 400)
    assert "GraphQL-Require-Preflight" in multipart.json()["errors"][0]["message"]
    assert await client.count("routes") == 0


async def test_malformed_json_and_missing_query_are_400(client):
    response = await client.http.post("/graphql", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["errors"][0]["message"]
    response = await client.http.post("/graphql", json={"variables": {}})
    assert response.status_code == 400 and "no 'query'" in response.json()["errors"][0]["message"]


async def test_graphql_response_media_type_gets_400_for_a_syntax_error(client):
    response = await client.http.post("/graphql", json={"query": "{ routes { "},
                                      headers={"accept": "application/graphql-response+json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    body = response.json()
    assert "data" not in body and "Syntax Error" in body["errors"][0]["message"]


async def test_plain_json_clients_get_200_for_a_validation_error(client):
    response = await client.http.post("/graphql", json={"query": "{ nope }"}, headers={"accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "Cannot query field 'nope'" in response.json()["errors"][0]["message"]


async def test_database_errors_never_leak_sql(client, monkeypatch):
    from modula.cms import routes as routes_service

    async def broken(session, **kwargs):
        raise RuntimeError('relation "routes" does not exist: SELECT * FROM routes')

    monkeypatch.setattr(routes_service, "list_routes", broken)
    body = await client.execute("{ routes { id } }")
    text = json.dumps(body)
    assert "SELECT" not in text and "relation" not in text and "Traceback" not in text
    assert body["errors"][0]["message"].startswith("Internal server error")
