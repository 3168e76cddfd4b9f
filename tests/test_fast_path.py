"""The fast path (schema/compiled) against Strawberry's resolvers: every operation here is answered
once with the fast path off and once on, and the answers must be the same; operations it cannot
answer exactly (Lua fields, forbidden tables, errors) fall back and still work. A warmed request
runs one SQL statement and plans nothing. Both dialects."""

from __future__ import annotations

import asyncio

import dataclasses
import json
from pathlib import Path

import pytest

from modula_testing import running_app, token_client
from test_plugins import write_plugin

PLUGIN = r"""
plugin.define_table({ name = "fp_products", fields = {
    {name = "product_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "price", type = "real"},
    {name = "category", type = "text"},
    {name = "in_stock", type = "boolean"},
    {name = "owner_id", type = "integer"},
    {name = "made", type = "date"},
}, indexes = {{"price"}} })

plugin.define_table({ name = "fp_attributes", fields = {
    {name = "attribute_id", type = "integer", primary_key = true},
    {name = "product_id", type = "integer", foreign_key = "fp_products", not_null = true},
    {name = "key", type = "text", not_null = true},
    {name = "value", type = "text"},
    {name = "rank", type = "integer"},
}})

plugin.define_table({ name = "fp_secrets", fields = {
    {name = "secret_id", type = "integer", primary_key = true},
    {name = "text", type = "text"},
}})

plugin.field{ type = "FpProduct", name = "shout", returns = "String!",
    handler = function(row, args, ctx) return string.upper(row.name) end }
"""

PRODUCTS = [
    # name, price, category, in_stock, owner (None, or "me": the non-admin viewer)
    ("apple", 1.25, "fruit", True, "me"),
    ("banana", None, "fruit", False, None),
    ("cherry", 0.1 + 0.2, None, None, "me"),
    ("date", 12.5, "dried", True, None),
    ("elder", 3.0, "flower", None, "me"),
    ("fig", 12.5, None, False, None),
    ("Grape", -7.75, "fruit", True, None),
    ("h_100%", 1e20, "odd", True, None),
]

# Operations answered by the fast path (each is also run with it off and compared).
COMPILED = [
    ("{ fpProducts { productId name price category inStock ownerId } }", None),
    ("{ fpProducts(orderBy: [{price: ASC}]) { name price } }", None),
    ("{ fpProducts(orderBy: [{price: DESC}]) { name price } }", None),
    ("{ fpProducts(orderBy: [{category: ASC}, {price: DESC}]) { name } }", None),
    ("{ fpProducts(orderBy: {inStock: DESC}) { name inStock } }", None),
    ("{ fpProducts(orderBy: [{name: DESC}], limit: 3, offset: 2) { name } }", None),
    ("{ fpProducts(limit: 0) { name } }", None),
    ("{ fpProducts(offset: 6) { name } }", None),
    ("{ fpProducts(where: {price: {eq: 12.5}}) { name } }", None),
    ("{ fpProducts(where: {price: {neq: 12.5}}) { name } }", None),
    ("{ fpProducts(where: {price: {gt: 1.25, lte: 12.5}}) { name } }", None),
    ("{ fpProducts(where: {price: {gte: 1, lt: 3}}) { name } }", None),
    ("{ fpProducts(where: {price: {in: [12.5, 3]}}) { name } }", None),
    ("{ fpProducts(where: {price: {nin: [12.5]}}) { name } }", None),
    ("{ fpProducts(where: {name: {in: []}}) { name } }", None),
    ("{ fpProducts(where: {name: {nin: []}}) { name } }", None),
    ("{ fpProducts(where: {name: {in: \"fig\"}}) { name } }", None),
    ("{ fpProducts(where: {name: {like: \"%a%\"}}) { name } }", None),
    ("{ fpProducts(where: {name: {like: \"G%\"}}) { name } }", None),
    ("{ fpProducts(where: {name: {like: \"h\\\\_100\\\\%\"}}) { name } }", None),
    ("{ fpProducts(where: {name: {ilike: \"g%\"}}) { name } }", None),
    ("{ fpProducts(where: {category: {isNull: true}}) { name } }", None),
    ("{ fpProducts(where: {made: {isNull: true}}) { name } }", None),
    ("{ fpProducts(where: {inStock: {eq: false}}) { name } }", None),
    ("{ fpProducts(where: {category: {eq: null}}) { name } }", None),
    ("{ fpProducts(where: {}) { name } }", None),
    ("{ fpProducts(where: {not: {}}) { name } }", None),
    ("{ fpProducts(where: {and: []}) { name } }", None),
    ("{ fpProducts(where: {or: []}) { name } }", None),
    ("{ fpProducts(where: {and: [{}]}) { name } }", None),
    ("{ fpProducts(where: {or: [{price: {lt: 1}}, {category: {eq: \"dried\"}}]}) { name } }", None),
    ("{ fpProducts(where: {and: [{price: {gt: 1}}, {not: {category: {eq: \"fruit\"}}}]}) { name } }", None),
    ("{ fpProducts(where: {not: {or: [{inStock: {eq: true}}, {price: {isNull: true}}]}}) { name } }", None),
    ("{ fpProduct(productId: 1) { name fpAttributes { key value } } }", None),
    ("{ fpProduct(productId: 999) { name } }", None),
    ("{ a: fpProduct(productId: 2) { n: name } b: fpProducts(limit: 2) { name __typename } __typename }", None),
    ("{ fpProducts { name fpAttributes(orderBy: [{rank: DESC}]) { key rank product { name } } } }", None),
    ("{ fpProducts { name fpAttributes(where: {value: {isNull: false}}, orderBy: [{key: ASC}], limit: 1, offset: 1) { key } } }", None),
    ("{ fpProducts { name fpAttributes(offset: 1) { key } } }", None),
    ("{ fpAttributes(orderBy: [{value: ASC}]) { key value product { name price fpAttributes(limit: 1) { key } } } }", None),
    ("{ fpProducts { ...P name } } fragment P on FpProduct { name price ... on FpProduct { category } }", None),
    ("{ fpProducts { name ... @include(if: false) { price } category @skip(if: true) inStock @include(if: true) } }", None),
    ("query($s: Boolean!) { fpProducts { name price @skip(if: $s) } }", {"s": True}),
    ("query($s: Boolean!) { fpProducts { name price @skip(if: $s) } }", {"s": False}),
    ("query($lo: Float!, $hi: Float) { fpProducts(where: {price: {gte: $lo, lte: $hi}}) { name } }", {"lo": 1, "hi": None}),
    ("query($lo: Float!, $hi: Float) { fpProducts(where: {price: {gte: $lo, lte: $hi}}) { name } }", {"lo": 1.0, "hi": 12.5}),
    ("query($ids: [Int!]!, $n: Int) { fpProducts(where: {productId: {in: $ids}}, limit: $n) { name } }", {"ids": [1, 3, 5], "n": 2}),
    ("query($ids: [Int!]!, $n: Int) { fpProducts(where: {productId: {in: $ids}}, limit: $n) { name } }", {"ids": [], "n": None}),
    ("query($p: String!) { fpProducts(where: {name: {ilike: $p}}) { name } }", {"p": "%E%"}),
    ("query($id: Int!) { fpProduct(productId: $id) { productId name price category inStock fpAttributes { key value } } }", {"id": 3}),
    ("query($w: FpProductFilter) { fpProducts(where: $w) { name } }",
     {"w": {"price": {"gt": 1, "in": [3, 12.5]}, "or": {"category": {"eq": "dried"}, "name": {"like": "e%"}}}}),
    ("query($w: FpProductFilter!) { fpProducts(where: {not: $w}) { name } }", {"w": {"category": {"isNull": True}, "price": None}}),
    ("query($w: FpAttributeFilter) { fpProducts { name fpAttributes(where: $w) { key } } }", {"w": {"rank": {"gte": 2}}}),
    ("{ all: fpProductsAggregate { count __typename } some: fpProductsAggregate(where: {price: {gt: 2}}) { n: count } }", None),
    ("query($o: [FpProductOrderBy!]) { fpProducts(orderBy: $o) { name } }", {"o": [{"category": "DESC"}, {"price": "ASC"}]}),
    ("query($o: [FpProductOrderBy!]) { fpProducts(orderBy: $o) { name } }", {"o": [{"category": "ASC"}, {"price": "DESC"}]}),
    ("query($o: FpAttributeOrderBy!) { fpProducts { fpAttributes(orderBy: [$o]) { key } } }", {"o": {"key": "DESC"}}),
    ("query One($id: Int!) { fpProduct(productId: $id) { name } } query Two { fpProducts { name } }", {"id": 1}),
]


@pytest.fixture
async def shop(database_url: str, tmp_path: Path):
    write_plugin(tmp_path / "plugins", "fp", PLUGIN)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", max_page_size=50) as app:
        assert app.state.schemas.last_report.failures == {}
        async with token_client(app, "admin", roles=["admin"]) as admin:
            await admin.data('mutation { createRole(name: "clerk", label: "Clerk") { name } }')
            for resource, action, rule in [("fp_products", "read", "own:owner_id"), ("fp_attributes", "read", None)]:
                await admin.data("mutation($s: String!, $a: String!, $r: String) { grantPermission(role: \"clerk\", "
                                 "resource: $s, action: $a, rowRule: $r) { action } }", {"s": resource, "a": action, "r": rule})
            async with token_client(app, "clerk", roles=["clerk"]) as clerk:
                await seed(admin, (await clerk.data("{ me { id } }"))["me"]["id"])
                yield app, admin, clerk


async def seed(admin, clerk_id: int) -> None:
    objects = [{"name": name, "price": price, "category": category, "inStock": stock,
                "ownerId": clerk_id if owner == "me" else None} for name, price, category, stock, owner in PRODUCTS]
    await admin.data("mutation($o: [FpProductInsertInput!]!) { insertFpProducts(objects: $o) { affectedRows } }", {"o": objects})
    attributes = [{"productId": 1, "key": "colour", "value": "red", "rank": 2}, {"productId": 1, "key": "size", "value": None, "rank": None},
                  {"productId": 1, "key": "origin", "value": "here", "rank": 7}, {"productId": 3, "key": "colour", "value": "dark", "rank": 1},
                  {"productId": 4, "key": "a", "value": "b", "rank": 1}]
    await admin.data("mutation($o: [FpAttributeInsertInput!]!) { insertFpAttributes(objects: $o) { affectedRows } }", {"o": attributes})
    await admin.data('mutation { insertFpSecrets(objects: [{text: "s"}]) { affectedRows } }')


def compiled(app):
    return app.state.live_schema.current.schema.compiled


def fast_path(app, on: bool) -> None:
    app.state.settings = dataclasses.replace(app.state.settings, fast_path=on)


async def both_ways(app, client, query: str, variables: dict | None, operation: str | None = None) -> tuple[dict, dict, bool]:
    """The answer with the fast path off, with it on, and whether the fast path gave the latter."""
    payload = {"query": query, "variables": variables, "operationName": operation}
    fast_path(app, False)
    slow = (await client.http.post("/graphql", json=payload)).json()
    fast_path(app, True)
    before = compiled(app).answered
    fast = (await client.http.post("/graphql", json=payload)).json()
    return slow, fast, compiled(app).answered > before


async def test_compiled_answers_equal_strawberry_answers(shop):
    app, admin, _ = shop
    for query, variables in COMPILED:
        operation = "One" if "query One" in query else None
        slow, fast, used = await both_ways(app, admin, query, variables, operation)
        assert "errors" not in slow, (query, slow)
        assert fast == slow, query
        assert used, f"not compiled: {query}"


async def test_floats_keep_every_digit(shop):
    app, admin, _ = shop
    slow, fast, used = await both_ways(app, admin, "{ fpProducts(where: {name: {eq: \"cherry\"}}) { price } }", None)
    assert used and fast == slow and fast["data"]["fpProducts"] == [{"price": 0.1 + 0.2}]


async def test_row_rules_apply_to_a_viewer_who_is_not_an_admin(shop):
    app, _, clerk = shop
    queries = ["{ fpProducts { name fpAttributes { key } } }",
               "{ fpProduct(productId: 2) { name } }",
               "{ fpProduct(productId: 1) { name } }",
               "{ fpProducts(where: {price: {gt: 1}}, orderBy: [{price: DESC}]) { name } }",
               "{ fpProductsAggregate { count } }"]
    for query in queries:
        slow, fast, used = await both_ways(app, clerk, query, None)
        assert "errors" not in slow and fast == slow and used, query
    _, fast, _ = await both_ways(app, clerk, queries[0], None)
    assert [p["name"] for p in fast["data"]["fpProducts"]] == ["apple", "cherry", "elder"]


async def test_a_hidden_parent_of_a_non_null_relation_falls_back_to_its_error(shop):
    app, _, clerk = shop
    query = "{ fpAttributes { key product { name } } }"
    slow, fast, used = await both_ways(app, clerk, query, None)
    assert not used and fast == slow and slow["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("query, variables", [
    ("{ fpSecrets { text } }", None),  # forbidden to the clerk
    ("{ fpProducts(limit: 51) { name } }", None),  # over max_page_size
    ("query($n: Int!) { fpProducts(limit: $n) { name } }", {"n": 51}),
    ("query($n: Int!) { fpProducts(offset: $n) { name } }", {"n": -1}),
    ("query($p: String!) { fpProducts(where: {name: {like: $p}}) { name } }", {"p": "a\\"}),
    ("{ fpProducts(orderBy: [{name: ASC, price: ASC}]) { name } }", None),
    ("{ fpProducts { name shout } }", None),  # a Lua field
    ("{ fpProducts { made } }", None),  # a date column
    ("{ fpProductsAggregate { count sum { price } } }", None),
    ("query($i: Int!) { fpProduct(productId: $i) { name } }", {"i": 2**40}),  # not an Int
    ("query($w: FpProductFilter) { fpProducts(where: $w) { name } }", {"w": {"colour": {"eq": "red"}}}),  # no such field
    ("query($w: FpProductFilter) { fpProducts(where: $w) { name } }", {"w": {"productId": {"eq": "one"}}}),
    ("query($w: FpProductFilter) { fpProducts(where: $w) { name } }", {"w": {"price": {"like": "1%"}}}),
    ("query($o: [FpProductOrderBy!]) { fpProducts(orderBy: $o) { name } }", {"o": [{"price": "UP"}]}),
    ("query($o: [FpProductOrderBy!]) { fpProducts(orderBy: $o) { name } }", {"o": [{"price": "ASC", "name": "ASC"}]}),
])
async def test_what_the_fast_path_cannot_answer_goes_to_strawberry(shop, query, variables):
    app, _, clerk = shop
    slow, fast, used = await both_ways(app, clerk, query, variables)
    assert not used and fast == slow


async def test_an_operation_on_core_fields_is_set_aside_whatever_its_variables(shop):
    app, admin, _ = shop
    plans = compiled(app)
    query = "query($ids: [Int!]!) { fpProducts(where: {productId: {in: $ids}}) { name } me { id } }"
    for n in range(5):
        slow, fast, used = await both_ways(app, admin, query, {"ids": list(range(n))})
        assert not used and "errors" not in fast and fast == slow
    assert (query, None) in plans.foreign and not any(key[0] == query for key in plans.plans)


async def test_an_operation_with_a_lua_field_falls_back_and_works(shop):
    app, admin, _ = shop
    slow, fast, used = await both_ways(app, admin, "{ fpProduct(productId: 1) { name shout fpAttributes { key } } }", None)
    assert not used and fast == slow and fast["data"]["fpProduct"]["shout"] == "APPLE"


async def test_values_strawberry_cannot_serialise_fall_back(shop):
    app, admin, _ = shop
    async with app.state.database.session() as session:  # a value no GraphQL Int input can carry
        await session.fetch_native("UPDATE fp_attributes SET rank = 3000000000 WHERE key = 'a'", [])
    slow, fast, used = await both_ways(app, admin, "{ fpAttributes { key rank } }", None)
    assert not used and fast == slow and "errors" in slow


async def test_insert_one_is_one_statement_with_the_same_answer(shop):
    app, admin, clerk = shop
    insert = "mutation($n: String!, $p: Float!) { insertFpProduct(object: {name: $n, price: $p, category: \"new\"}) { name price category inStock __typename } }"
    slow, fast, used = await both_ways(app, admin, insert, {"n": "kiwi", "p": 2})
    assert used and fast["data"] == slow["data"] == {
        "insertFpProduct": {"name": "kiwi", "price": 2.0, "category": "new", "inStock": None, "__typename": "FpProduct"}}
    rows = await admin.data("{ fpProducts(where: {name: {eq: \"kiwi\"}}) { productId } }")
    assert len(rows["fpProducts"]) == 2  # each way inserted its row
    insert_object = "mutation($o: FpProductInsertInput!) { insertFpProduct(object: $o) { productId name ownerId } }"
    slow, fast, used = await both_ways(app, admin, insert_object, {"o": {"name": "lime", "ownerId": None}})
    assert used and {**fast["data"]["insertFpProduct"], "productId": 0} == {**slow["data"]["insertFpProduct"], "productId": 0}
    # Without create permission, or with a required column missing: Strawberry's errors, nothing written.
    for client, query in [(clerk, insert), (admin, "mutation { insertFpProduct(object: {price: 1}) { name } }")]:
        slow, fast, used = await both_ways(app, client, query, {"n": "x", "p": 1})
        assert not used and fast == slow and "errors" in fast
    assert len((await admin.data("{ fpProducts(where: {name: {eq: \"x\"}}) { name } }"))["fpProducts"]) == 0


async def test_a_warmed_insert_is_one_round_trip_and_concurrent_inserts_all_land(shop):
    """On SQLite the insert holds the process's write lock for its one statement, in autocommit:
    no BEGIN IMMEDIATE or COMMIT of its own, and concurrent inserts never meet "database is locked"."""
    app, admin, _ = shop
    insert = "mutation($n: String!) { insertFpProduct(object: {name: $n, price: 1, category: \"c\"}) { productId } }"
    _, viewer_only = await statements_of(admin, "{ __typename }")
    await admin.execute(insert, {"n": "warm"})
    body, seen = await statements_of(admin, insert, {"n": "once"})
    assert "errors" not in body and len(seen) - len(viewer_only) == 1, seen
    answers = await asyncio.gather(*(admin.execute(insert, {"n": f"many-{i}"}) for i in range(20)))
    assert all("errors" not in answer for answer in answers), answers
    ids = {answer["data"]["insertFpProduct"]["productId"] for answer in answers}
    stored = await admin.data('{ fpProducts(where: {name: {like: "many-%"}}, limit: 50) { productId } }')
    assert len(ids) == 20 and {row["productId"] for row in stored["fpProducts"]} == ids


async def statements_of(client, query: str, variables: dict | None = None) -> tuple[dict, list[str]]:
    seen: list[str] = []
    stop = client.database.observe(seen.append)
    try:
        return await client.execute(query, variables), seen
    finally:
        stop()


async def test_a_warmed_request_runs_one_statement_and_plans_nothing(shop):
    app, admin, _ = shop
    q1 = "query q1($min:Float!,$max:Float!){ fpProducts(where:{price:{gte:$min,lte:$max}}, orderBy:[{price:ASC}], limit:20){ productId name price category } }"
    q2 = "query q2($id:Int!){ fpProduct(productId:$id){ productId name price category fpAttributes { key value } } }"
    _, viewer_only = await statements_of(admin, "{ __typename }")  # answered without the database
    for query, variables, warm_variables in [(q1, {"min": 1, "max": 5.0}, {"min": 2, "max": 20.0}), (q2, {"id": 1}, {"id": 3})]:
        await admin.execute(query, variables)
        planned = compiled(app).compilations
        body, seen = await statements_of(admin, query, warm_variables)
        assert "errors" not in body and compiled(app).compilations == planned
        assert len(seen) - len(viewer_only) == 1, seen


async def test_the_answer_is_spliced_json_with_the_schema_generation(shop):
    app, admin, _ = shop
    response = await admin.http.post("/graphql", json={"query": "{ fpProduct(productId: 4) { name price } }"})
    generation = app.state.live_schema.current.generation
    assert response.status_code == 200
    assert json.loads(response.content) == {"data": {"fpProduct": {"name": "date", "price": 12.5}},
                                            "extensions": {"schemaGeneration": generation}}
    in_order = json.loads(response.content, object_pairs_hook=list)  # keys in selection order
    assert in_order[0] == ("data", [("fpProduct", [("name", "date"), ("price", 12.5)])])


async def test_plans_are_kept_in_a_bounded_cache_of_the_schema(shop):
    app, admin, _ = shop
    plans = compiled(app)
    plans.maxsize = 2
    for n in (1, 2, 3):
        await admin.data(f"{{ fpProducts(limit: {n}) {{ name }} }}")
    assert len(plans.plans) == 2 and [key[0] for key in plans.plans] == ["{ fpProducts(limit: 2) { name } }",
                                                                         "{ fpProducts(limit: 3) { name } }"]
    made = plans.compilations
    await admin.data("{ fpProducts(limit: 1) { name } }")  # evicted: planned again
    assert plans.compilations == made + 1


async def test_a_fast_path_insert_as_the_plugin_role_skips_the_session_reset(shop, dialect, monkeypatch):
    """PostgreSQL: the plugin role's connection is reset (RESET ALL, advisory locks) only after a
    use that ran plugin SQL; the fast path's insert runs only the host's generated statement."""
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's plugin roles")
    import asyncpg

    resets = []
    original = asyncpg.Connection.reset

    async def counted(self, *args, **kwargs):
        resets.append(self)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "reset", counted)
    app, admin, _ = shop
    insert = "mutation($n: String!) { insertFpProduct(object: {name: $n, price: 1, category: \"c\"}) { productId } }"
    await admin.execute(insert, {"n": "warm"})
    resets.clear()
    for n in range(3):
        assert "errors" not in await admin.execute(insert, {"n": f"r{n}"})
    assert resets == []
    from modula.db.plugin_sql import plugin_session

    async with plugin_session(app.state.database, "fp") as session:
        session.state_changed = True  # as plugin SQL marks it
    assert len(resets) == 1
