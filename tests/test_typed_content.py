"""A GraphQL type per datatype: field machine names, `type Article implements ContentNode`, typed
lists with filters and orders in SQL, typed writes that are createContent underneath, the schema
swap when a datatype is created, permissions, and bounded statement counts."""

from __future__ import annotations

import asyncio

from cms_fixtures import ARTICLE_FIELDS, CREATE_DATATYPE, make_datatype, make_route
from modula_testing import GraphQLClient, admin_client, running_app
from test_fast_path import statements_of
from test_live_schema import eventually, serving
from test_plugins import write_plugin

CREATE_ARTICLE = """
mutation($input: ArticleCreateInput!) {
  createArticle(input: $input) {
    id status title body views rating featured publishedOn updated meta cover
    related { id title } route { slug } parent { id }
  }
}"""
EDITORIAL = [*ARTICLE_FIELDS[:9], {"label": "Related", "type": "content", "data": {"datatype": "article"}}]


async def _article(client, route, **values) -> dict:
    payload = {"routeId": route["id"], "title": "Hello", **values}
    return (await client.data(CREATE_ARTICLE, {"input": payload}))["createArticle"]


async def _rows(client) -> dict[str, int]:
    return await client.counts("content_data", "content_fields", "datatypes", "fields")


# --- field names ----------------------------------------------------------------------------


async def test_field_names_are_derived_from_labels_unless_given(client):
    datatype = (await client.data(CREATE_DATATYPE.replace("required data", "required data name"), {"input": {
        "label": "Event", "type": "event", "fields": [
            {"label": "Published on", "type": "date"}, {"label": "Views", "type": "integer", "name": "viewCount"},
            {"label": "Status", "type": "text"}, {"label": "2nd title", "type": "text"},
            {"label": "References", "type": "content"}]}}))["createDatatype"]
    assert [f["name"] for f in datatype["fields"]] == ["publishedOn", "viewCount", "status2", "field2ndTitle", "references"]
    route = await make_route(client)
    made = await client.data(f'mutation {{ createEvent(input: {{routeId: {route["id"]}, viewCount: 2}}) {{ id }} }}')
    listed = await client.data(f'mutation {{ createEvent(input: {{routeId: {route["id"]}, references: {made["createEvent"]["id"]}}}) '
                               "{ viewCount references { id ... on Event { viewCount } } } }")
    assert listed["createEvent"] == {"viewCount": None, "references": {"id": made["createEvent"]["id"], "viewCount": 2}}


async def test_bad_field_names_are_refused_with_their_path_and_nothing_is_written(client):
    before = await _rows(client)
    error = await client.error(CREATE_DATATYPE, {"input": {"label": "X", "type": "x", "fields": [
        {"label": "A", "type": "text", "name": "status"}, {"label": "B", "type": "text", "name": "Bad-name"},
        {"label": "C", "type": "text", "name": "same"}, {"label": "D", "type": "text", "name": "same"}]}})
    problems = {tuple(p["inputPath"]): p["code"] for p in error["extensions"]["problems"]}
    assert problems == {("input", "fields", 0, "name"): "RESERVED_NAME", ("input", "fields", 1, "name"): "INVALID_VALUE",
                        ("input", "fields", 3, "name"): "DUPLICATE_FIELD"}
    assert await _rows(client) == before


async def test_a_type_whose_names_are_taken_is_refused_naming_the_owner(app, client, tmp_path):
    await make_datatype(client)
    core = await client.error(CREATE_DATATYPE, {"input": {"label": "R", "type": "route", "fields": []}})
    assert core["extensions"] == {"code": "NAME_TAKEN", "inputPath": ["input", "type"]}
    assert "Route (from the core schema)" in core["message"]
    again = await client.error(CREATE_DATATYPE, {"input": {"label": "A2", "type": "article", "fields": []}})
    assert "Article (from datatype article)" in again["message"]
    write_plugin(app.state.settings.plugins_dir, "shop", 'plugin.define_table{name = "shop_products", fields = {'
                 '{name = "id", type = "integer", primary_key = true}, {name = "name", type = "text"}}}')
    await client.data('mutation { loadPlugin(name: "shop") { loadedPlugins } }')
    plugin = await client.error(CREATE_DATATYPE, {"input": {"label": "P", "type": "shop_product", "fields": []}})
    assert "ShopProduct (from plugin shop)" in plugin["message"]
    assert (await client.data("{ datatypes { type } }"))["datatypes"] == [{"type": "article"}]


async def test_a_plugin_whose_names_a_datatype_has_is_left_out_naming_the_datatype(app, client):
    await make_datatype(client, [{"label": "Name", "type": "text"}], label="Product", type="shop_product")
    write_plugin(app.state.settings.plugins_dir, "shop", 'plugin.define_table{name = "shop_products", fields = {'
                 '{name = "id", type = "integer", primary_key = true}, {name = "name", type = "text"}}}')
    swap = (await client.data('mutation { loadPlugin(name: "shop") { loadedPlugins failures { plugin message } } }'))["loadPlugin"]
    assert swap["loadedPlugins"] == []
    assert "ShopProduct (from datatype shop_product)" in swap["failures"][0]["message"]
    assert await client.data("{ shopProducts { id } }") == {"shopProducts": []}  # the datatype's list


# --- reading --------------------------------------------------------------------------------


async def test_a_new_datatype_is_served_as_its_own_type_with_typed_values(client):
    route = await make_route(client)
    await make_datatype(client, EDITORIAL)
    first = await _article(client, route, title="First", views=3)
    made = await _article(client, route, title="Second", body="<p>x</p>", views=42, rating=4.5, featured=True,
                          publishedOn="2026-05-01", updated="2026-05-01T12:30:00Z", meta={"tags": ["a"]},
                          related=first["id"], parentId=first["id"])
    assert made | {"id": 0} == {
        "id": 0, "status": "DRAFT", "title": "Second", "body": "<p>x</p>", "views": 42, "rating": 4.5,
        "featured": True, "publishedOn": "2026-05-01", "updated": "2026-05-01T12:30:00+00:00", "meta": {"tags": ["a"]},
        "cover": None, "related": {"id": first["id"], "title": "First"}, "route": {"slug": "blog"},
        "parent": {"id": first["id"]}}
    data = await client.data(f"""{{ article(id: {first['id']}) {{ children {{ __typename ... on Article {{ title views }} }} }}
        contents(where: {{id: {{eq: {made['id']}}}}}) {{ id fields {{ value field {{ name }} }} }} }}""")
    assert data["article"]["children"] == [{"__typename": "Article", "title": "Second", "views": 42}]
    stored = {f["field"]["name"]: f["value"] for f in data["contents"][0]["fields"]}
    assert stored["views"] == "42" and stored["featured"] == "true" and stored["publishedOn"] == "2026-05-01"


async def test_filters_and_orders_compare_typed_values_in_sql(client):
    route, other = await make_route(client), await make_route(client, "news", "News")
    await make_datatype(client, EDITORIAL)
    for title, views, day, featured in [("a", 5, "2026-01-05", True), ("b", 10, "2026-02-01", False),
                                        ("c", 100, "2026-03-01", True), ("d", None, None, None)]:
        await _article(client, route, title=title, views=views, publishedOn=day, featured=featured, status="PUBLISHED")
    await _article(client, other, title="elsewhere", views=7, status="DRAFT")

    async def titles(arguments: str) -> list[str]:
        return [a["title"] for a in (await client.data(f"{{ articles({arguments}) {{ title }} }}"))["articles"]]

    # as numbers, 100 > 10 > 5 (as text "5" would sort last)
    assert await titles("where: {views: {gt: 6}}, orderBy: [{views: DESC}]") == ["c", "b", "elsewhere"]
    assert await titles("orderBy: [{views: ASC}]") == ["d", "a", "elsewhere", "b", "c"]
    assert await titles('where: {publishedOn: {gte: "2026-02-01"}}') == ["b", "c"]
    assert await titles("where: {featured: {eq: true}}") == ["a", "c"]
    assert await titles("where: {views: {isNull: true}}") == ["d"]
    assert await titles('where: {or: [{title: {like: "a%"}}, {status: {eq: DRAFT}}]}') == ["a", "elsewhere"]
    assert await titles(f"where: {{routeId: {{eq: {other['id']}}}, parentId: {{isNull: true}}}}") == ["elsewhere"]
    assert await titles("where: {not: {views: {in: [5, 10]}}}, orderBy: [{title: DESC}]") == ["elsewhere", "c"]  # NULL is not "not in"
    data = await client.data("""{ articlesAggregate(where: {views: {isNull: false}}) { count sum { views } max { publishedOn title } }
        articlesConnection(first: 2, orderBy: [{views: DESC}]) { totalCount pageInfo { hasNextPage } edges { node { title } } } }""")
    assert data["articlesAggregate"] == {"count": 4, "sum": {"views": 122.0}, "max": {"publishedOn": "2026-03-01", "title": "elsewhere"}}
    assert data["articlesConnection"] == {"totalCount": 5, "pageInfo": {"hasNextPage": True},
                                          "edges": [{"node": {"title": "c"}}, {"node": {"title": "b"}}]}


async def test_untyped_references_and_authors_resolve_through_content_node(client, anonymous):
    route = await make_route(client)
    await make_datatype(client, [{"label": "Name", "type": "text"}], label="Tag", type="tag")
    await make_datatype(client, ARTICLE_FIELDS)  # `related` names no datatype: any ContentNode
    tag = (await client.data(f'mutation {{ createTag(input: {{routeId: {route["id"]}, name: "t", status: PUBLISHED}}) {{ id }} }}'))["createTag"]
    article = (await client.data("mutation($i: ArticleCreateInput!) { createArticle(input: $i) { id } }",
                                 {"i": {"routeId": route["id"], "title": "x", "related": tag["id"], "status": "PUBLISHED"}}))["createArticle"]
    query = f"{{ article(id: {article['id']}) {{ related {{ __typename id ... on Tag {{ name }} }} author {{ username }} }} }}"
    assert (await client.data(query))["article"] == {"related": {"__typename": "Tag", "id": tag["id"], "name": "t"},
                                                     "author": {"username": "admin"}}
    body = await anonymous.execute(query)
    assert body["data"]["article"] == {"related": {"__typename": "Tag", "id": tag["id"], "name": "t"}, "author": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["errors"][0]["path"] == ["article", "author"]


async def test_contents_gains_filters_and_orders_on_the_common_columns(client):
    route = await make_route(client)
    await make_datatype(client, EDITORIAL)
    ids = [(await _article(client, route, title=t, status=s))["id"] for t, s in [("a", "DRAFT"), ("b", "PUBLISHED"), ("c", "DRAFT")]]
    data = await client.data('{ contents(where: {status: {eq: DRAFT}}, orderBy: [{id: DESC}]) { id status } }')
    assert data["contents"] == [{"id": ids[2], "status": "DRAFT"}, {"id": ids[0], "status": "DRAFT"}]
    error = await client.error("{ contents(orderBy: [{id: ASC, status: ASC}]) { id } }")
    assert error["extensions"] == {"code": "INVALID_ORDER", "inputPath": ["orderBy", 0]}


async def test_contents_answers_each_node_as_its_datatypes_type_on_both_paths(client):
    """`contents` returns ContentNode: the generic selection (compiled into one statement) tells
    each node's own type, and typed fragments reach the typed fields (through Strawberry)."""
    route = await make_route(client)
    await make_datatype(client, EDITORIAL)
    await make_datatype(client, [{"label": "Caption", "type": "text"}], label="Note", type="note")
    article = await _article(client, route, title="Typed", views=7)
    note = (await client.data("mutation($input: NoteCreateInput!) { createNote(input: $input) { id } }",
                              {"input": {"routeId": route["id"], "caption": "hi"}}))["createNote"]
    generic = "{ contents { __typename id position fields { value field { name } } } }"
    answer, statements = await statements_of(client, generic)
    data = answer["data"]
    assert len([s for s in statements if not s.startswith("PRAGMA")]) <= 2, statements  # the viewer, the compiled statement
    assert data["contents"][0]["__typename"] == "Article" and data["contents"][1]["__typename"] == "Note"
    assert {"value": "Typed", "field": {"name": "title"}} in data["contents"][0]["fields"]
    typed = await client.data("{ contents { id ... on Article { title views } ... on Note { caption } "
                              "... on Content { position } } content(id: %d) { __typename ... on Note { caption } } }" % note["id"])
    assert typed["contents"] == [{"id": article["id"], "title": "Typed", "views": 7}, {"id": note["id"], "caption": "hi"}]
    assert typed["content"] == {"__typename": "Note", "caption": "hi"}


async def test_anonymous_readers_see_published_typed_content_only(client, anonymous):
    route = await make_route(client)
    await make_datatype(client, EDITORIAL)
    public = await _article(client, route, title="public", status="PUBLISHED")
    draft = await _article(client, route, title="draft", status="DRAFT", related=public["id"], parentId=public["id"])
    data = await anonymous.data(f"""{{ articles {{ title children {{ id }} }} article(id: {draft['id']}) {{ id }}
        articlesAggregate {{ count }} }}""")
    assert data == {"articles": [{"title": "public", "children": []}], "article": None, "articlesAggregate": {"count": 1}}
    error = await anonymous.error(f'mutation {{ updateArticle(id: {public["id"]}, set: {{title: "x"}}) {{ id }} }}')
    assert error["extensions"]["code"] == "FORBIDDEN"


# --- writing --------------------------------------------------------------------------------


async def test_typed_write_errors_name_the_typed_input_and_write_nothing(client):
    route = await make_route(client)
    await make_datatype(client, EDITORIAL)
    before = await _rows(client)
    body = await client.execute(CREATE_ARTICLE, {"input": {"routeId": route["id"], "title": "  ", "related": 999, "cover": 5}})
    problems = {tuple(p["inputPath"]): p["code"] for p in body["errors"][0]["extensions"]["problems"]}
    assert problems == {("input", "title"): "REQUIRED_FIELD_MISSING", ("input", "related"): "NOT_FOUND",
                        ("input", "cover"): "NOT_FOUND"}
    error = await client.error(CREATE_ARTICLE, {"input": {"routeId": 999, "title": "x"}})
    assert error["extensions"] == {"code": "NOT_FOUND", "inputPath": ["input", "routeId"]}
    assert await _rows(client) == before


async def test_update_and_delete_change_only_nodes_of_their_datatype(client):
    route = await make_route(client)
    await make_datatype(client, EDITORIAL)
    await make_datatype(client, [{"label": "Name", "type": "text"}], label="Tag", type="tag")
    article = await _article(client, route, title="a", views=1, body="text")
    tag = (await client.data(f'mutation {{ createTag(input: {{routeId: {route["id"]}, name: "t"}}) {{ id name }} }}'))["createTag"]
    changed = await client.data(f'mutation {{ updateArticle(id: {article["id"]}, set: {{views: 7, body: null, status: DRAFT}}) '
                                "{ views body title status } }")
    assert changed["updateArticle"] == {"views": 7, "body": None, "title": "a", "status": "DRAFT"}
    error = await client.error(f'mutation {{ updateArticle(id: {article["id"]}, set: {{title: null}}) {{ id }} }}')
    assert error["extensions"] == {"code": "REQUIRED_FIELD_MISSING", "inputPath": ["set", "title"]}
    wrong = await client.error(f'mutation {{ deleteArticle(id: {tag["id"]}) {{ deletedIds }} }}')
    assert wrong["extensions"] == {"code": "NOT_FOUND", "inputPath": ["id"]}
    assert await client.count("content_data") == 2
    deleted = await client.data(f'mutation {{ deleteArticle(id: {article["id"]}) {{ deletedIds }} }}')
    assert deleted["deleteArticle"] == {"deletedIds": [article["id"]]}
    assert await client.data("{ articles { id } tags { name } }") == {"articles": [], "tags": [{"name": "t"}]}


# --- the schema swap and statement counts ---------------------------------------------------


async def test_creating_a_datatype_swaps_the_schema_without_failing_a_request(app, client):
    stop = asyncio.Event()
    answers: list[dict] = []

    async def keep_asking():
        async with GraphQLClient.for_app(app) as reader:
            while not stop.is_set():
                answers.append(await reader.execute("{ datatypes { id } }"))

    readers = [asyncio.create_task(keep_asking()) for _ in range(3)]
    try:
        await asyncio.sleep(0.05)
        generation = app.state.schemas.live.current.generation
        await make_datatype(client, EDITORIAL)
        await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert answers and all("errors" not in a for a in answers)
    assert app.state.schemas.live.current.generation > generation
    assert await client.data("{ articles { id } }") == {"articles": []}


async def test_a_server_sharing_the_database_serves_a_datatype_another_one_created(database_url, tmp_path):
    async with (running_app(database_url, plugins_dir=tmp_path / "plugins", follow_interval=0.05) as app_a,
                running_app(database_url, plugins_dir=tmp_path / "plugins", follow_interval=0.05) as app_b,
                admin_client(app_a, "admin_a") as a, admin_client(app_b, "admin_b") as b):
        route = await make_route(a)
        await make_datatype(a, EDITORIAL)
        made = await _article(a, route, title="from a", views=3)
        await eventually(lambda: serving(b, "{ articles { id } }"))
        assert (await b.data("{ articles { id title views } }"))["articles"] == [{"id": made["id"], "title": "from a", "views": 3}]
        assert app_b.state.live_schema.current.generation == app_a.state.live_schema.current.generation


MANY = [{"label": f"Field {n}", "type": "integer" if n % 2 else "text"} for n in range(19)]
ITEMS = ("{ items(where: {rank: {gte: 0}}, orderBy: [{rank: DESC}], limit: 100) { id rank "
         + " ".join(f"field{i}" for i in range(19)) + " route { slug } parent { id ... on Item { rank } } } }")


async def _seed_items(client, route, numbers: range, parent: int | None) -> int | None:
    for n in numbers:
        values = {f"field{i}": (n * i if i % 2 else f"v{n}") for i in range(19)}
        made = await client.data("mutation($i: ItemCreateInput!) { createItem(input: $i) { id } }",
                                 {"i": {"routeId": route["id"], "parentId": parent, "rank": n, **values}})
        parent = parent or made["createItem"]["id"]
    return parent


async def test_a_typed_list_of_any_length_takes_a_fixed_number_of_statements(client):
    route = await make_route(client)
    await make_datatype(client, [{"label": "Rank", "type": "integer"}, *MANY], label="Item", type="item")
    counts, parent = {}, None
    for size in (10, 100):
        parent = await _seed_items(client, route, range(len(counts) and 10, size), parent)
        body, seen = await statements_of(client, ITEMS)
        assert "errors" not in body, body
        rows = body["data"]["items"]
        assert len(rows) == size and rows[0]["rank"] == size - 1 and rows[0]["parent"] == {"id": parent, "rank": 0}
        assert rows[0]["field3"] == 3 * (size - 1) and rows[0]["field2"] == f"v{size - 1}"
        counts[size] = len(seen)
    assert counts[10] == counts[100] <= 5, counts
