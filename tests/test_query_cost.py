"""Abuse is priced before it runs (issue 14, part 4): every operation's cost is estimated from its
document and variables (lists at their limit/first or the default page size, nested lists
multiplied, Lua fields at their weight) and refused whole above `max_query_cost`, with the
estimate and the limit; `extensions.cost` when the request asks. Core and plugin types, both
dialects."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cms_fixtures import make_datatype, make_route
from modula.testing import running_app
from modula_testing import token_client
from test_plugins import write_plugin

QC = r"""
plugin.define_table({ name = "qc_parents", fields = {
    {name = "parent_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
}})
plugin.define_table({ name = "qc_children", fields = {
    {name = "child_id", type = "integer", primary_key = true},
    {name = "parent_id", type = "integer", not_null = true, foreign_key = "qc_parents"},
    {name = "name", type = "text", not_null = true},
}})
plugin.field{ type = "QcParent", name = "shout", returns = "String!", handler = function(row, args, ctx)
    return string.upper(row.name)
end }
"""

NESTED_1000 = ("{ qcParents(limit: 1000) { qcChildren(limit: 1000) { parent { qcChildren(limit: 1000) { name } } } } }")


@pytest.fixture
async def qc(database_url: str, tmp_path: Path):
    write_plugin(tmp_path / "plugins", "qc", QC)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", default_page_size=50) as app:
        assert app.state.schemas.last_report.failures == {}
        async with token_client(app, "admin", roles=["admin"]) as client:
            await client.data('mutation { insertQcParents(objects: [{name: "a", qcChildren: [{name: "x"}]}]) { affectedRows } }')
            yield app, client


async def cost_of(client, query: str, variables: dict | None = None) -> tuple[int, dict]:
    response = await client.http.post("/graphql", json={"query": query, "variables": variables, "extensions": {"cost": True}})
    return response.status_code, response.json()


def with_settings(app, **changes) -> None:
    app.state.settings = dataclasses.replace(app.state.settings, **changes)


async def test_three_nested_lists_of_a_thousand_are_refused_with_the_estimate_and_the_limit(qc):
    app, client = qc
    status, body = await cost_of(client, NESTED_1000)
    assert status == 400 and "data" not in body
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "COST_EXCEEDED", "cost": 1000 + 1000**2 * 2 + 1000**3, "maxCost": 500_000}
    assert "1,002,001,000" in error["message"] and "500,000" in error["message"]


async def test_lists_count_at_their_limit_the_default_page_size_or_a_variable(qc):
    app, client = qc
    cases = [
        ("{ qcParents(limit: 3) { name } }", None, 3),
        ("{ qcParents { name } }", None, 50),  # the default page size
        ("query($n: Int) { qcParents(limit: $n) { qcChildren(limit: 2) { name } } }", {"n": 4}, 4 + 4 * 2),
        ("query($n: Int) { qcParents(limit: $n) { name } }", {"n": None}, 50),
        ("{ qcParent(parentId: 1) { name qcChildren { name } } }", None, 1 + 50),
        ("{ qcParentsAggregate { count } __typename }", None, 1),
        ("{ qcParentsConnection(first: 5) { edges { node { name } } } }", None, 5 + 5 + 5),
        ("{ a: qcParents(limit: 2) { name } b: qcParents(limit: 3) { name } }", None, 5),
        ("{ qcParents(limit: 2) { ...P } } fragment P on QcParent { qcChildren(limit: 3) { name } }", None, 2 + 6),
        ("{ __schema { types { name fields { name args { name } } } } }", None, 0),  # introspection is free
    ]
    for query, variables, expected in cases:
        status, body = await cost_of(client, query, variables)
        assert status == 200 and "errors" not in body, (query, body)
        assert body["extensions"]["cost"] == {"estimate": expected, "maxCost": 500_000}, query


async def test_core_types_are_priced_too(qc):
    app, client = qc
    await make_datatype(client, [{"label": "Title", "type": "text"}])
    await make_route(client)
    status, body = await cost_of(client, "{ contents(limit: 10) { fields { value field { label } } children { id } } }")
    assert status == 200 and body["extensions"]["cost"]["estimate"] == 10 + 10 * 50 * 2 + 10 * 50
    status, body = await cost_of(client, "{ contents(limit: 1000) { children { children { children { id } } } } }")
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "COST_EXCEEDED"


async def test_lua_fields_cost_their_weight_per_call(qc):
    app, client = qc
    _, body = await cost_of(client, "{ qcParents(limit: 4) { shout } }")
    assert body["extensions"]["cost"]["estimate"] == 4 + 4 * 10
    with_settings(app, lua_field_cost=1000)
    status, body = await cost_of(client, "{ qcParents(limit: 4) { shout } }")
    assert status == 200 and body["extensions"]["cost"]["estimate"] == 4 + 4 * 1000
    status, body = await cost_of(client, "{ qcParents(limit: 1000) { shout } }")
    assert status == 400 and body["errors"][0]["extensions"]["cost"] == 1000 + 1000 * 1000


async def test_a_refused_mutation_writes_nothing(qc):
    app, client = qc
    with_settings(app, max_query_cost=10)
    before = await client.counts("qc_parents", "qc_children")
    status, body = await cost_of(client, 'mutation { insertQcParents(objects: [{name: "b"}]) { returning { qcChildren { name } } } }')
    assert status == 400 and body["errors"][0]["extensions"] == {"code": "COST_EXCEEDED", "cost": 1 + 50 + 50 * 50,
                                                                "maxCost": 10}
    assert await client.counts("qc_parents", "qc_children") == before
    status, body = await cost_of(client, 'mutation { insertQcParents(objects: [{name: "b"}]) { affectedRows } }')
    assert status == 200 and body["extensions"]["cost"]["estimate"] == 1


async def test_the_cost_is_only_reported_when_asked(qc):
    app, client = qc
    body = await client.execute("{ qcParents(limit: 3) { name } }")
    assert "cost" not in body["extensions"]
