"""Automatic persisted queries (schema/persisted.py) as Apollo Client's link sends them: a hash the
server has not seen asks for the document, the document with its hash is checked and kept, and the
hash alone then runs it, over POST and GET; a wrong hash or another protocol version is refused and
nothing is kept; a new schema generation starts afresh."""

from __future__ import annotations

import hashlib
import json

QUERY = "{ routes { slug } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()


def persisted(digest: str = HASH, version: int = 1) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def post(client, **body) -> tuple[int, dict]:
    response = await client.http.post("/graphql", json=body)
    return response.status_code, response.json()


async def test_an_unknown_hash_asks_for_the_document_then_the_hash_alone_runs_it(client):
    status, body = await post(client, extensions=persisted())
    assert status == 400 and body["errors"] == [{"message": "PersistedQueryNotFound",
                                                 "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]
    status, first = await post(client, query=QUERY, extensions=persisted())
    assert status == 200 and first["data"] == {"routes": []}
    status, again = await post(client, extensions=persisted())
    assert status == 200 and again == first
    response = await client.http.get("/graphql", params={"extensions": json.dumps(persisted())},
                                     headers={"accept": "application/json"})
    assert response.status_code == 200 and response.json()["data"] == {"routes": []}


async def test_a_hash_that_is_not_the_documents_is_refused_and_nothing_is_kept(client):
    status, body = await post(client, query=QUERY, extensions=persisted("0" * 64))
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "INVALID_PERSISTED_QUERY"
    status, body = await post(client, extensions=persisted("0" * 64))
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    for bad in ("nothex", HASH.upper()):
        status, body = await post(client, extensions=persisted(bad))
        assert status == 400 and body["errors"][0]["extensions"]["code"] == "INVALID_PERSISTED_QUERY"


async def test_another_protocol_version_is_not_supported(client):
    status, body = await post(client, query=QUERY, extensions=persisted(version=2))
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_a_persisted_mutation_still_needs_post(client):
    mutation = 'mutation { createRoute(input: {slug: "apq", title: "APQ"}) { id } }'
    digest = hashlib.sha256(mutation.encode()).hexdigest()
    status, _ = await post(client, query=mutation, extensions=persisted(digest))
    assert status == 200
    response = await client.http.get("/graphql", params={"extensions": json.dumps(persisted(digest))})
    assert response.status_code == 405
    assert await client.count("routes") == 1


async def test_a_new_schema_generation_starts_afresh(client):
    await post(client, query=QUERY, extensions=persisted())
    await client.app.state.schemas.rebuild()
    status, body = await post(client, extensions=persisted())
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
