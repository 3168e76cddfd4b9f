"""Relationships are batched per request: statement counts do not grow with the number of rows."""

from __future__ import annotations

import pytest

from cms_fixtures import field_ids, make_datatype, make_route
from modula.cms import content as content_service


async def _seed(client, nodes: int):
    route = await make_route(client)
    datatype = await make_datatype(client)
    ids = field_ids(datatype)
    async with client.database.session() as session:
        parent = None
        for n in range(nodes):
            row = await content_service.create_content(session, content_service.NewContent(
                route_id=route["id"], datatype_id=datatype["id"], parent_id=parent if n % 10 else None,
                fields=[content_service.FieldValue(ids["Title"], f"n{n}"), content_service.FieldValue(ids["Views"], str(n))],
            ))
            if n % 10 == 0:
                parent = row["id"]


def _count_statements(client):
    statements: list[str] = []
    stop = client.database.observe(statements.append)
    return statements, stop


async def test_100_nodes_with_fields_and_definitions_take_at_most_4_statements(client):
    await _seed(client, 100)
    statements, stop = _count_statements(client)
    try:
        data = await client.data("{ contents(limit: 100) { id fields { value field { id label type } } } }")
    finally:
        stop()
    assert len(data["contents"]) == 100
    assert all(len(node["fields"]) == 2 for node in data["contents"])
    queries = [s for s in statements if not s.startswith("PRAGMA")]
    assert len(queries) <= 4, queries


@pytest.mark.parametrize("nodes", [10, 100])
async def test_tree_relations_cost_the_same_for_10_or_100_nodes(client, nodes):
    await _seed(client, nodes)
    statements, stop = _count_statements(client)
    try:
        data = await client.data(
            "{ contents(limit: 100) { id route { slug } datatype { label fields { id } } parent { id } children { id } fields { value } } }"
        )
    finally:
        stop()
    assert len(data["contents"]) == nodes
    queries = [s for s in statements if not s.startswith("PRAGMA")]
    # the viewer, contents, the nodes' typed rows (one datatype), route, datatype, datatype fields,
    # parent, children, values
    assert len(queries) <= 9, queries
