"""Bad input never reaches the database (issue 14, part 4): numbers that are not finite, text with
a NUL or a lone surrogate, an update or delete of every row that nobody asked for, and documents
over the size limit are refused with a clear error and the input path, and nothing is written.
Every path is tried: literals, variables, a hook's row, a Lua handler's SQL. Both dialects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cms_fixtures import field_ids, make_datatype, make_route
from modula.testing import running_app
from modula_testing import token_client
from test_plugins import write_plugin

UV = r"""
plugin.define_table({ name = "uv_items", fields = {
    {name = "item_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "price", type = "real"},
}})
plugin.on("before_insert", "uv_items", function(row, ctx)
    if row.name == "made huge" then row.price = math.huge end
    if row.name == "made nul" then row.name = "a\0b" end
    return row
end)
plugin.mutation{ name = "uvExec", args = { price = "Float", name = "String" }, returns = "Int!", handler = function(args, ctx)
    local price = args.price
    if args.name == "lua infinity" then price = math.huge elseif args.name == "lua nan" then price = 0/0 end
    local name = args.name
    if name == "lua nul" then name = "x\0y" end
    exec("INSERT INTO uv_items (name, price) VALUES (?, ?)", {name, price})
    return 1
end }
plugin.query{ name = "uvEcho", args = { text = "String!" }, returns = "String!", handler = function(args, ctx)
    return args.text
end }
"""


@pytest.fixture
async def uv(database_url: str, tmp_path: Path):
    write_plugin(tmp_path / "plugins", "uv", UV)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        assert app.state.schemas.last_report.failures == {}
        async with token_client(app, "admin", roles=["admin"]) as client:
            await client.data('mutation { insertUvItems(objects: [{name: "one", price: 1}, {name: "two", price: 2}]) { affectedRows } }')
            yield client


async def items(client) -> list[tuple[str, float | None]]:
    data = await client.data("{ uvItems(orderBy: [{itemId: ASC}]) { name price } }")
    return [(row["name"], row["price"]) for row in data["uvItems"]]


SEEDED = [("one", 1.0), ("two", 2.0)]


async def post_json(client, query: str, variables: dict) -> dict:
    """POST what a client's own JSON encoder may send: Infinity and NaN, and lone surrogates as
    \ud800 escapes (httpx's encoder refuses both)."""
    payload = json.dumps({"query": query, "variables": variables}, allow_nan=True)
    response = await client.http.post("/graphql", content=payload, headers={"content-type": "application/json"})
    return response.json()


# --- numbers that are not finite ---------------------------------------------------------------


NOT_FINITE = [
    'mutation { insertUvItem(object: {name: "inf", price: 1e400}) { itemId } }',
    'mutation { insertUvItems(objects: [{name: "ok", price: 1}, {name: "inf", price: -1e400}]) { affectedRows } }',
    'mutation { updateUvItems(where: {name: {eq: "one"}}, set: {price: -1e400}) { affectedRows } }',
    'mutation { insertUvItem(object: {name: "digits", price: %s}) { itemId } }' % ("9" * 400),
    '{ uvItems(where: {price: {gt: 1e999}}) { name } }',
]


async def test_a_literal_that_is_not_finite_is_refused_before_anything_runs(uv):
    for query in NOT_FINITE:
        body = await uv.execute(query)
        assert "data" not in body, query  # a request error: nothing ran
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_VALUE" and "not finite" in error["message"]
        assert error["locations"]
    assert await items(uv) == SEEDED
    assert (await uv.data("{ uvItemsAggregate { count } }"))["uvItemsAggregate"]["count"] == 2


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400 + ".0"])
async def test_a_variable_that_is_not_finite_once_read_is_refused_with_its_path(uv, number):
    # A JSON number too large for a double is Infinity once read (NaN and Infinity themselves are
    # not JSON, and are refused as such)
    payload = ('{"query": "mutation($o: UvItemInsertInput!) { insertUvItem(object: $o) { itemId } }",'
               ' "variables": {"o": {"name": "v", "price": %s}}}' % number)
    response = await uv.http.post("/graphql", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_VALUE", "path": ["variables", "o", "price"]}
    assert "$o.price" in error["message"] and "not a finite number" in error["message"]
    assert await items(uv) == SEEDED


async def test_nan_and_infinity_are_not_json(uv):
    body = await post_json(uv, "mutation($o: UvItemInsertInput!) { insertUvItem(object: $o) { itemId } }",
                           {"o": {"name": "v", "price": float("nan")}})
    assert "not valid JSON" in body["errors"][0]["message"]
    assert await items(uv) == SEEDED


@pytest.mark.parametrize("name, path", [("lua infinity", "parameter 2"), ("lua nan", "parameter 2"), ("lua nul", "parameter 1")])
async def test_a_lua_handlers_sql_with_an_unstorable_value_is_refused(uv, name, path):
    error = await uv.error("mutation($n: String) { uvExec(name: $n, price: 1) }", {"n": name})
    assert path in error["message"] and error["extensions"]["plugin"] == "uv"
    assert await items(uv) == SEEDED


@pytest.mark.parametrize("name, column", [("made huge", "price"), ("made nul", "name")])
async def test_a_hook_that_makes_a_value_unstorable_writes_nothing(uv, name, column):
    error = await uv.error("mutation($n: String!) { insertUvItem(object: {name: $n, price: 1}) { itemId } }", {"n": name})
    assert error["extensions"]["code"] == "INVALID_VALUE" and f"uv_items.{column}" in error["message"]
    assert error["path"] == ["insertUvItem"]
    assert await items(uv) == SEEDED


# --- text with a NUL or a lone surrogate -------------------------------------------------------


TEXTS = [("x\ud800y", "lone surrogate"), ("x\x00y", "NUL"), ("\udfff", "lone surrogate")]
TEXT_VARIABLES = [
    ("mutation($v: String!) { insertUvItem(object: {name: $v}) { itemId } }", lambda t: {"v": t}, ["variables", "v"]),
    ("mutation($o: UvItemInsertInput!) { insertUvItem(object: $o) { itemId } }", lambda t: {"o": {"name": t}}, ["variables", "o", "name"]),
    ("query($v: String!) { uvItems(where: {name: {eq: $v}}) { name } }", lambda t: {"v": t}, ["variables", "v"]),
    ("query($v: String!) { uvEcho(text: $v) }", lambda t: {"v": t}, ["variables", "v"]),
    ("mutation($l: [UvItemInsertInput!]!) { insertUvItems(objects: $l) { affectedRows } }",
     lambda t: {"l": [{"name": "fine"}, {"name": t}]}, ["variables", "l", 1, "name"]),
]


async def test_unstorable_text_in_a_variable_is_refused_alike_on_both_databases(uv):
    for text, problem in TEXTS:
        for operation, variables, path in TEXT_VARIABLES:
            body = await post_json(uv, operation, variables(text))
            assert "data" not in body, operation
            (error,) = body["errors"]
            assert error["extensions"] == {"code": "INVALID_VALUE", "path": path} and problem in error["message"]
    assert await items(uv) == SEEDED


async def test_unstorable_text_in_a_literal_is_refused_by_validation(uv):
    literals = [r'"x\u0000y"', r'"\ud800"', '"""a\x00"""']
    for query in [q % literal for literal in literals
                  for q in ('mutation { insertUvItem(object: {name: %s}) { itemId } }', '{ uvEcho(text: %s) }')]:
        body = await uv.execute(query)
        assert "data" not in body and body["errors"], query
        codes = {error.get("extensions", {}).get("code") for error in body["errors"]}
        assert codes <= {"INVALID_VALUE", "GRAPHQL_PARSE_FAILED", None}, body
    assert await items(uv) == SEEDED


async def test_a_content_value_with_a_nul_is_refused_and_writes_nothing(uv):
    route, datatype = await make_route(uv), await make_datatype(uv)
    given = {"routeId": route["id"], "datatypeId": datatype["id"],
             "fields": [{"fieldId": field_ids(datatype)["Title"], "value": "T\x00itle"}]}
    body = await post_json(uv, "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }", {"i": given})
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "INVALID_VALUE", "path": ["variables", "i", "fields", 0, "value"]}
    assert await uv.counts("content_data", "content_fields") == {"content_data": 0, "content_fields": 0}


# --- every row only when asked ------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "mutation { deleteUvItems(where: {}) { affectedRows } }",
    "mutation { deleteUvItems(where: {and: [{}, {and: []}]}) { affectedRows } }",
    'mutation { updateUvItems(where: {}, set: {name: "same"}) { affectedRows } }',
    'mutation { updateUvItems(where: {}, allRows: false, set: {name: "same"}) { affectedRows } }',
])
async def test_an_empty_where_alone_touches_nothing_and_says_how(uv, query):
    error = await uv.error(query)
    assert error["extensions"]["code"] == "ALL_ROWS_NOT_CONFIRMED" and "allRows: true" in error["message"]
    assert error["path"][0] in ("deleteUvItems", "updateUvItems")
    assert await items(uv) == SEEDED


async def test_every_row_when_the_request_says_so(uv):
    data = await uv.data('mutation { updateUvItems(where: {}, allRows: true, set: {price: 5}) { affectedRows } }')
    assert data["updateUvItems"]["affectedRows"] == 2 and await items(uv) == [("one", 5.0), ("two", 5.0)]
    data = await uv.data('mutation { deleteUvItems(where: {name: {eq: "one"}}) { affectedRows } }')  # a condition needs no flag
    assert data["deleteUvItems"]["affectedRows"] == 1
    data = await uv.data("mutation { deleteUvItems(where: {}, allRows: true) { affectedRows } }")
    assert data["deleteUvItems"]["affectedRows"] == 1 and await items(uv) == []


# --- documents over the size limit -------------------------------------------------------------


async def test_a_document_over_the_size_limit_is_refused_before_it_is_parsed(uv):
    limit = uv.app.state.settings.max_document_bytes
    assert limit == 100 * 1024
    comment = "# " + "x" * (1024 * 1024) + "\n"  # one comment: no token limit sees it
    response = await uv.http.post("/graphql", json={"query": comment + "{ __typename }"})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "DOCUMENT_TOO_LARGE" and "102,400" in error["message"]
    just_under = "# " + "x" * (limit - 100) + "\n{ __typename }"
    assert (await uv.data(just_under)) == {"__typename": "Query"}
