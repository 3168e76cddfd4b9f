"""The generated GraphQL API of plugin tables, from a plugin written here: names predicted from the
documented rules, every filter operator, ordering, pagination, aggregates, nested inserts with
rollback, hooks that change and veto rows, Lua queries and fields. Both dialects."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import respx

from cms_fixtures import make_content, make_datatype, make_route
from modula_testing import GraphQLClient, deliver_outbox, running_app, token_client
from test_plugins import BUNDLED, write_plugin

LIB = r"""
plugin.define_table({ name = "lib_authors", fields = {
    {name = "author_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "born", type = "date"},
    {name = "active", type = "boolean", not_null = true, default = true},
    {name = "meta", type = "json"},
}, unique = {{"name"}} })

plugin.define_table({ name = "lib_books", fields = {
    {name = "book_id", type = "integer", primary_key = true},
    {name = "author_id", type = "integer", not_null = true, foreign_key = "lib_authors"},
    {name = "title", type = "text", not_null = true},
    {name = "slug", type = "text"},
    {name = "price", type = "real"},
    {name = "pages", type = "integer"},
    {name = "rating", type = "numeric"},
    {name = "published_at", type = "datetime"},
    {name = "cover", type = "blob"},
}, indexes = {{"price"}} })

plugin.define_table({ name = "lib_news", fields = {
    {name = "news_id", type = "integer", primary_key = true},
    {name = "headline", type = "text", not_null = true},
}})

plugin.define_table({ name = "lib_log", fields = {
    {name = "log_id", type = "integer", primary_key = true},
    {name = "event", type = "text", not_null = true},
}})

plugin.on("before_insert", "lib_books", function(row, ctx)
    if row.title == "forbidden" then error("this title is not allowed") end
    row.slug = string.lower((string.gsub(row.title, "%s+", "-")))
    return row
end)
plugin.on("after_insert", "lib_books", function(row, ctx)
    insert("lib_log", {event = "insert " .. row.slug})
end)
plugin.on("before_update", "lib_books", function(row, ctx)
    if row.price ~= nil and row.price < 0 then error("price cannot be negative") end
    return row
end)
plugin.on("before_delete", "lib_books", function(row, ctx)
    if row.title == "keep" then error("this book is kept") end
end)
plugin.on("after_delete", "lib_books", function(row, ctx)
    insert("lib_log", {event = "delete " .. row.title})
end)

plugin.field{ type = "LibAuthor", name = "shout", returns = "String!",
    handler = function(row, args, ctx) return string.upper(row.name) end }
plugin.field{ type = "LibBook", name = "boom", returns = "String",
    handler = function(row, args, ctx) error("boom on " .. row.title) end }
plugin.field{ type = "LibBook", name = "priceWith", args = { tax = "Float!" }, returns = "Float",
    handler = function(row, args, ctx) return row.price * (1 + args.tax) end }

plugin.type{ name = "LibStats", fields = { books = "Int!", cheapest = "LibBook" } }
plugin.query{ name = "libStats", returns = "LibStats!", handler = function(args, ctx)
    local n = query_one("SELECT count(*) AS n FROM lib_books", {}).n
    return { books = n, cheapest = query_one("SELECT * FROM lib_books WHERE price IS NOT NULL ORDER BY price LIMIT 1", {}) }
end }
plugin.input{ name = "LibRename", fields = { from = "String!", to = "String!" } }
plugin.mutation{ name = "libRename", args = { input = "LibRename!" }, returns = "[LibAuthor!]!", handler = function(args, ctx)
    exec("UPDATE lib_authors SET name = ? WHERE name = ?", {args.input.to, args.input["from"]})
    return query("SELECT * FROM lib_authors WHERE name = ?", {args.input.to})
end }
"""


@pytest.fixture
async def lib(database_url: str, tmp_path: Path):
    write_plugin(tmp_path / "plugins", "lib", LIB)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", max_page_size=50) as app:
        assert app.state.schemas.last_report.failures == {}
        async with token_client(app, "admin", roles=["admin"]) as client:
            yield client


def sdl(client: GraphQLClient) -> str:
    return client.app.state.live_schema.current.schema.as_str()


async def seed(client: GraphQLClient) -> None:
    await client.data("""mutation {
      insertLibAuthors(objects: [
        {name: "Ann", born: "1970-05-01", meta: {tags: ["a"]}, libBooks: [
          {title: "Alpha Book", price: 10, pages: 100, rating: "4.5", publishedAt: "2020-01-01T10:00:00+00:00"},
          {title: "beta book", price: 25.5, pages: 300, rating: "3.25"}]},
        {name: "Bob", active: false, libBooks: [{title: "Gamma", pages: 50}]},
        {name: "cy"}
      ]) { affectedRows }
    }""")


# --- names --------------------------------------------------------------------------------


async def test_names_follow_the_documented_rules(lib):
    schema = sdl(lib)
    for expected in [
        "type LibAuthor {", "type LibBook {", "type LibNews {",
        "libAuthors(where: LibAuthorFilter, orderBy: [LibAuthorOrderBy!], limit: Int, offset: Int): [LibAuthor!]!",
        "libAuthorsConnection(where: LibAuthorFilter, orderBy: [LibAuthorOrderBy!], first: Int, after: String): LibAuthorConnection!",
        "libAuthor(authorId: Int!): LibAuthor",
        "libAuthorsAggregate(where: LibAuthorFilter): LibAuthorAggregate!",
        "insertLibAuthors(objects: [LibAuthorInsertInput!]!, onConflict: LibAuthorOnConflict): LibAuthorMutationResponse!",
        "insertLibAuthor(object: LibAuthorInsertInput!, onConflict: LibAuthorOnConflict): LibAuthor",
        "updateLibAuthors(where: LibAuthorFilter!, set: LibAuthorSetInput!, allRows: Boolean! = false): LibAuthorMutationResponse!",
        "updateLibAuthor(authorId: Int!, set: LibAuthorSetInput!): LibAuthor",
        "deleteLibAuthors(where: LibAuthorFilter!, allRows: Boolean! = false): LibAuthorMutationResponse!",
        "deleteLibAuthor(authorId: Int!): LibAuthor",
        # same singular and plural: the one-row forms get a suffix
        "libNews(where: LibNewsFilter", "libNewsByPk(newsId: Int!): LibNews", "insertLibNewsOne(object:",
        # columns in camelCase, relationships both ways
        "publishedAt: DateTime", "author: LibAuthor!",
        "libBooks(where: LibBookFilter, orderBy: [LibBookOrderBy!], limit: Int, offset: Int): [LibBook!]!",
        # Lua-declared API (outer level nullable)
        "shout: String", "priceWith(tax: Float!): Float", "libStats: LibStats", "libRename(input: LibRename!): [LibAuthor!]",
    ]:
        assert expected in schema, expected


# --- reading ------------------------------------------------------------------------------


async def test_every_filter_operator(lib):
    await seed(lib)

    async def titles(where: str) -> list[str]:
        data = await lib.data(f"{{ libBooks(where: {where}, orderBy: [{{title: ASC}}]) {{ title }} }}")
        return [b["title"] for b in data["libBooks"]]

    assert await titles("{price: {eq: 10}}") == ["Alpha Book"]
    assert await titles("{price: {neq: 10}}") == ["beta book"]  # NULL price matches neither
    assert await titles("{pages: {gt: 100}}") == ["beta book"]
    assert await titles("{pages: {gte: 100}}") == ["Alpha Book", "beta book"]
    assert await titles("{pages: {lt: 100}}") == ["Gamma"]
    assert await titles("{pages: {lte: 100}}") == ["Alpha Book", "Gamma"]
    assert await titles("{pages: {in: [50, 300]}}") == ["Gamma", "beta book"]
    assert await titles("{pages: {nin: [50, 300]}}") == ["Alpha Book"]
    assert await titles("{pages: {in: []}}") == []
    assert await titles("{title: {like: \"%Book\"}}") == ["Alpha Book"]  # like is case-sensitive
    assert await titles("{title: {ilike: \"%book\"}}") == ["Alpha Book", "beta book"]
    assert await titles("{price: {isNull: true}}") == ["Gamma"]
    assert await titles("{price: {isNull: false}}") == ["Alpha Book", "beta book"]
    assert await titles("{rating: {gt: \"4\"}}") == ["Alpha Book"]
    assert await titles("{publishedAt: {lt: \"2021-01-01T00:00:00+00:00\"}}") == ["Alpha Book"]
    assert await titles("{or: [{pages: {eq: 50}}, {price: {gt: 20}}]}") == ["Gamma", "beta book"]
    assert await titles("{and: [{pages: {gt: 10}}, {pages: {lt: 200}}]}") == ["Alpha Book", "Gamma"]
    assert await titles("{not: {pages: {eq: 50}}}") == ["Alpha Book", "beta book"]
    data = await lib.data('{ libAuthors(where: {active: {eq: false}}) { name } a: libAuthors(where: {born: {gte: "1970-01-01"}}) { name } }')
    assert data == {"libAuthors": [{"name": "Bob"}], "a": [{"name": "Ann"}]}


async def test_ordering_limit_offset_and_page_size(lib):
    await seed(lib)
    data = await lib.data("{ libBooks(orderBy: [{price: DESC}, {title: ASC}]) { title } }")
    assert [b["title"] for b in data["libBooks"]] == ["beta book", "Alpha Book", "Gamma"]  # nulls last descending
    data = await lib.data("{ libBooks(orderBy: [{price: ASC}], limit: 2, offset: 1) { title } }")
    assert [b["title"] for b in data["libBooks"]] == ["Alpha Book", "beta book"]  # nulls first ascending
    error = await lib.error("{ libBooks(limit: 51) { title } }")
    assert error["extensions"]["code"] == "PAGE_SIZE_EXCEEDED" and "at most 50" in error["message"]
    error = await lib.error("{ libBooks(orderBy: [{price: ASC, title: ASC}]) { title } }")
    assert error["extensions"]["code"] == "INVALID_ORDER" and error["extensions"]["inputPath"] == ["orderBy", 0]


async def test_cursor_pagination(lib):
    await seed(lib)
    seen, after = [], None
    while True:
        data = await lib.data(
            "query($after: String) { libBooksConnection(first: 2, after: $after, orderBy: [{title: ASC}]) {"
            " totalCount edges { cursor node { title } } pageInfo { hasNextPage hasPreviousPage endCursor } } }",
            {"after": after})
        page = data["libBooksConnection"]
        assert page["totalCount"] == 3
        seen += [edge["node"]["title"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["Alpha Book", "Gamma", "beta book"]
    error = await lib.error('{ libBooksConnection(first: 1, after: "bm9wZQ==") { totalCount } }')
    assert error["extensions"]["code"] == "INVALID_CURSOR"


async def test_aggregates(lib):
    await seed(lib)
    data = await lib.data("""{ libBooksAggregate(where: {pages: {gte: 50}}) {
        count sum { price pages rating } avg { pages } min { title price publishedAt } max { title pages } } }""")
    agg = data["libBooksAggregate"]
    assert agg["count"] == 3
    assert agg["sum"] == {"price": 35.5, "pages": 450.0, "rating": "7.75"}
    assert agg["avg"] == {"pages": 150.0}
    assert agg["min"]["title"] == "Alpha Book" and agg["min"]["price"] == 10.0
    assert agg["min"]["publishedAt"].startswith("2020-01-01T10:00:00")
    assert agg["max"] == {"title": "beta book", "pages": 300}
    empty = await lib.data("{ libBooksAggregate(where: {pages: {gt: 1000}}) { count sum { price } } }")
    assert empty["libBooksAggregate"] == {"count": 0, "sum": {"price": None}}


async def test_one_row_by_primary_key_and_value_types(lib):
    cover = base64.b64encode(b"\x00\x01png").decode()
    data = await lib.data(f"""mutation {{ insertLibAuthor(object: {{name: "Dee", meta: {{k: [1, 2]}}, libBooks: [
        {{title: "T", rating: "1.10", publishedAt: "2024-02-03T04:05:06+00:00", cover: "{cover}"}}]}}) {{ authorId }} }}""")
    author_id = data["insertLibAuthor"]["authorId"]
    data = await lib.data(f"""{{ libAuthor(authorId: {author_id}) {{ name active meta born shout
        libBooks {{ rating publishedAt cover author {{ name }} }} }} missing: libAuthor(authorId: 999) {{ name }} }}""")
    assert data["missing"] is None
    author = data["libAuthor"]
    assert author["name"] == "Dee" and author["active"] is True and author["meta"] == {"k": [1, 2]}
    assert author["born"] is None and author["shout"] == "DEE"
    book = author["libBooks"][0]
    assert Decimal(book["rating"]) == Decimal("1.10") and book["publishedAt"].startswith("2024-02-03T04:05:06")
    assert base64.b64decode(book["cover"]) == b"\x00\x01png" and book["author"] == {"name": "Dee"}


@pytest.mark.parametrize("fast_path", [False, True])
async def test_relationships_are_batched(lib, fast_path):
    """Strawberry's resolvers batch each relationship into one statement per level; the fast path
    (schema/compiled) answers each of these queries in a single statement."""
    lib.app.state.settings = dataclasses.replace(lib.app.state.settings, fast_path=fast_path)
    objects = ", ".join(f'{{name: "a{i}", libBooks: [{{title: "b{i}-1"}}, {{title: "b{i}-2"}}]}}' for i in range(100))
    await lib.data(f"mutation {{ insertLibAuthors(objects: [{objects}]) {{ affectedRows }} }}")

    async def counted(query: str) -> tuple[dict, int]:
        """The query's result and its statements, besides the one that finds the viewer."""
        statements: list = []
        unsubscribe = lib.database.observe(statements.append)
        try:
            return await lib.data(query), len(statements) - 1
        finally:
            unsubscribe()

    data, count = await counted("{ libBooks(limit: 50) { title author { name } } }")
    assert len(data["libBooks"]) == 50 and all(b["author"]["name"] for b in data["libBooks"])
    assert count == (1 if fast_path else 2)
    data, count = await counted("{ libAuthors(limit: 50) { name libBooks { title } } }")
    assert all(len(a["libBooks"]) == 2 for a in data["libAuthors"]) and count == (1 if fast_path else 2)
    data, count = await counted("{ libAuthors(limit: 50) { name libBooks(orderBy: [{title: DESC}], limit: 1) { title author { name } } } }")
    assert len(data["libAuthors"]) == 50
    assert all(len(a["libBooks"]) == 1 and a["libBooks"][0]["title"].endswith("-2") for a in data["libAuthors"])
    # Strawberry: authors, their newest books (one statement for all, limited per author), the books' authors
    assert count == (1 if fast_path else 3)


# --- writing ------------------------------------------------------------------------------


async def test_nested_insert_passes_generated_ids_and_counts_rows(lib):
    data = await lib.data("""mutation { insertLibAuthors(objects: [
        {name: "Ann", libBooks: [{title: "One"}, {title: "Two"}]}, {name: "Bob", libBooks: [{title: "Three"}]}]) {
        affectedRows returning { authorId name libBooks(orderBy: [{title: ASC}]) { title slug author { authorId } } } } }""")
    result = data["insertLibAuthors"]
    assert result["affectedRows"] == 5
    for author in result["returning"]:
        assert all(book["author"]["authorId"] == author["authorId"] for book in author["libBooks"])
    assert [b["slug"] for b in result["returning"][0]["libBooks"]] == ["one", "two"]  # set by before_insert
    assert await lib.counts("lib_authors", "lib_books", "lib_log") == {"lib_authors": 2, "lib_books": 3, "lib_log": 3}


async def test_nested_insert_rolls_back_everything_on_a_bad_child(lib):
    await seed(lib)
    before = await lib.counts("lib_authors", "lib_books", "lib_log")
    # A database error in a child (the second author's book duplicates nothing, but its author name does)
    error = await lib.error('mutation { insertLibAuthors(objects: [{name: "New", libBooks: [{title: "x"}]}, {name: "Ann"}]) { affectedRows } }')
    assert error["extensions"]["code"] == "UNIQUE_VIOLATION"
    # A hook veto on a grandchild level, after the parent and a sibling were written
    error = await lib.error('mutation { insertLibAuthors(objects: [{name: "Zed", libBooks: [{title: "fine"}, {title: "forbidden"}]}]) { affectedRows } }')
    assert error["extensions"]["code"] == "LUA_ERROR" and error["extensions"]["plugin"] == "lib"
    assert "this title is not allowed" in error["message"]
    # A required column missing in a nested row names its path
    error = await lib.error('mutation { insertLibBooks(objects: [{title: "orphan"}]) { affectedRows } }')
    assert error["extensions"]["code"] == "REQUIRED" and error["extensions"]["inputPath"] == ["objects", 0]
    assert await lib.counts("lib_authors", "lib_books", "lib_log") == before


async def test_upsert_through_on_conflict(lib):
    await seed(lib)
    data = await lib.data("""mutation { insertLibAuthors(objects: [{name: "Ann", active: false}, {name: "Eve"}],
        onConflict: {columns: [NAME], updateColumns: [ACTIVE]}) { affectedRows returning { name active } } }""")
    assert sorted((a["name"], a["active"]) for a in data["insertLibAuthors"]["returning"]) == [("Ann", False), ("Eve", True)]
    assert await lib.count("lib_authors") == 4
    error = await lib.error('mutation { insertLibAuthors(objects: [{name: "X"}], onConflict: {columns: [BORN]}) { affectedRows } }')
    assert error["extensions"]["code"] == "INVALID_INPUT"


async def test_update_and_delete_with_hooks(lib):
    await seed(lib)
    data = await lib.data('mutation { updateLibBooks(where: {pages: {gte: 100}}, set: {price: 1.5}) { affectedRows returning { title price } } }')
    assert data["updateLibBooks"]["affectedRows"] == 2
    error = await lib.error('mutation { updateLibBooks(where: {}, allRows: true, set: {price: -1}) { affectedRows } }')
    assert "price cannot be negative" in error["message"]
    prices = await lib.data("{ libBooks(orderBy: [{title: ASC}]) { price } }")
    assert [b["price"] for b in prices["libBooks"]] == [1.5, None, 1.5]  # the vetoed update changed nothing

    data = await lib.data('mutation { deleteLibBooks(where: {title: {eq: "Gamma"}}) { affectedRows returning { title } } }')
    assert data["deleteLibBooks"] == {"affectedRows": 1, "returning": [{"title": "Gamma"}]}
    await lib.data('mutation { updateLibBooks(where: {title: {eq: "beta book"}}, set: {title: "keep"}) { affectedRows } }')
    error = await lib.error("mutation { deleteLibBooks(where: {}, allRows: true) { affectedRows } }")
    assert "this book is kept" in error["message"]
    assert await lib.count("lib_books") == 2
    logs = await lib.data("{ libLog(orderBy: [{logId: ASC}]) { event } }")
    assert [e["event"] for e in logs["libLog"]][-1] == "delete Gamma"


async def test_by_primary_key_mutations(lib):
    await seed(lib)
    data = await lib.data('{ libAuthors(where: {name: {eq: "cy"}}) { authorId } }')
    author_id = data["libAuthors"][0]["authorId"]
    data = await lib.data(f'mutation {{ updateLibAuthor(authorId: {author_id}, set: {{name: "Cy", born: null}}) {{ name }} }}')
    assert data["updateLibAuthor"] == {"name": "Cy"}
    data = await lib.data(f"mutation {{ deleteLibAuthor(authorId: {author_id}) {{ name }} gone: deleteLibAuthor(authorId: 999) {{ name }} }}")
    assert data == {"deleteLibAuthor": {"name": "Cy"}, "gone": None}
    error = await lib.error(f"mutation {{ updateLibAuthor(authorId: {author_id}, set: {{}}) {{ name }} }}")
    assert error["extensions"]["inputPath"] == ["set"]


# --- Lua-declared API ----------------------------------------------------------------------


async def test_lua_queries_mutations_and_types(lib):
    await seed(lib)
    data = await lib.data("{ libStats { books cheapest { title author { name } } } }")
    assert data["libStats"] == {"books": 3, "cheapest": {"title": "Alpha Book", "author": {"name": "Ann"}}}
    data = await lib.data('mutation { libRename(input: {from: "cy", to: "Cyd"}) { name shout } }')
    assert data["libRename"] == [{"name": "Cyd", "shout": "CYD"}]
    data = await lib.data('{ libBooks(where: {title: {eq: "Alpha Book"}}) { priceWith(tax: 0.5) } }')
    assert data["libBooks"] == [{"priceWith": 15.0}]


async def test_a_failing_lua_field_errs_alone(lib):
    await seed(lib)
    body = await lib.execute("{ libBooks(orderBy: [{title: ASC}]) { title boom } }")
    assert [b["title"] for b in body["data"]["libBooks"]] == ["Alpha Book", "Gamma", "beta book"]
    assert all(b["boom"] is None for b in body["data"]["libBooks"])
    assert len(body["errors"]) == 3 and body["errors"][0]["path"] == ["libBooks", 0, "boom"]
    assert "boom on Alpha Book" in body["errors"][0]["message"] and body["errors"][0]["extensions"]["plugin"] == "lib"


# --- core content events --------------------------------------------------------------------


@respx.mock
async def test_webhooks_plugin_posts_after_content_is_created(database_url: str, tmp_path: Path):
    shutil.copytree(BUNDLED / "webhooks", tmp_path / "plugins" / "webhooks")
    posted = respx.post("https://hooks.example.com/content").mock(return_value=httpx.Response(204))
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, token_client(app, "admin", roles=["admin"]) as client:
        await client.data('mutation { insertWebhooksSubscriptions(objects: [{event: "content.created", url: "https://hooks.example.com/content"}]) { affectedRows } }')
        route, datatype = await make_route(client), await make_datatype(client)
        node = await make_content(client, route, datatype)
        assert posted.call_count == 0  # queued with the node, posted once it committed
        assert (await deliver_outbox(app))["delivered"] == 2  # the after_commit hook, then its request
        assert posted.call_count == 1
        body = json.loads(posted.calls[0].request.content)
        assert body["event"] == "content.created" and body["data"]["id"] == node["id"]
        assert body["data"]["route_id"] == route["id"]
        deliveries = await client.data("{ webhooksDeliveries { outboxId error subscription { event } } }")
        [queued] = deliveries["webhooksDeliveries"]
        assert queued["error"] is None and queued["subscription"] == {"event": "content.created"}
        outbox = await client.data("{ deliveries(status: DELIVERED) { id kind target attempts } }")
        assert {"id": queued["outboxId"], "kind": "http", "target": "POST https://hooks.example.com/content",
                "attempts": 1} in outbox["deliveries"]


async def test_a_foreign_key_to_a_core_table_is_an_object_field_of_the_core_type(database_url: str, tmp_path: Path):
    write_plugin(tmp_path / "plugins", "pages", """
plugin.define_table({ name = "pages_meta", fields = {
    {name = "meta_id", type = "integer", primary_key = true},
    {name = "route_id", type = "integer", foreign_key = "routes"},
    {name = "description", type = "text"},
}})""")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, token_client(app, "admin", roles=["admin"]) as client:
        assert app.state.schemas.last_report.failures == {}
        route = await make_route(client)
        await client.data(f'mutation {{ insertPagesMeta(objects: [{{routeId: {route["id"]}, description: "d"}}, {{description: "none"}}]) {{ affectedRows }} }}')
        data = await client.data("{ pagesMeta(orderBy: [{metaId: ASC}]) { description route { slug } } }")
        assert data["pagesMeta"] == [{"description": "d", "route": {"slug": "blog"}}, {"description": "none", "route": None}]
