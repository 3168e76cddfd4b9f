"""Paths and trees (issue 12 §2): slugs unique among siblings, derived when not given; paths
`/route/slug/slug`; contentByPath typed through ContentNode fragments; ancestors, siblings and
descendants in batches; moves and renames that keep every path right and refuse cycles and taken
slugs with the database unchanged; the ContentStatus enum (§5)."""

from __future__ import annotations

import sqlalchemy as sa

from cms_fixtures import make_datatype, make_route
from test_fast_path import statements_of

FIELDS = [{"label": "Title", "type": "text", "required": True}, {"label": "Views", "type": "integer"}]
CREATE = "mutation($i: ArticleCreateInput!) { createArticle(input: $i) { id slug path status } }"
BY_PATH = """query($p: String!, $s: Int) { contentByPath(path: $p, siteId: $s) {
  __typename id slug path ... on Article { title views } } }"""
MOVE = "mutation($id: Int!, $parent: Int, $slug: String) { moveContent(id: $id, parentId: $parent, slug: $slug) { id slug } }"


async def _article(client, route, title: str, parent: dict | None = None, **more) -> dict:
    given = {"routeId": route["id"], "title": title, "parentId": parent and parent["id"], "status": "PUBLISHED", **more}
    return (await client.data(CREATE, {"i": given}))["createArticle"]


async def _nodes(client) -> list[tuple]:
    """What the database holds: (id, parent_id, position, slug, tree_path) of every node."""
    async with client.database.session() as session:
        rows = await session.fetch_all(sa.text("SELECT id, parent_id, position, slug, tree_path FROM content_data ORDER BY id"))
    return [tuple(row.values()) for row in rows]


async def _blog(client):
    """/blog/2026/hello, /blog/2026/world, /blog/about."""
    route = await make_route(client)
    await make_datatype(client, FIELDS)
    year = await _article(client, route, "2026")
    hello = await _article(client, route, "Hello!", year, views=3)
    world = await _article(client, route, "World", year)
    about = await _article(client, route, "About")
    return route, year, hello, world, about


async def test_slugs_are_derived_from_the_title_and_made_free_among_siblings(client):
    route, year, hello, world, about = await _blog(client)
    assert (hello["slug"], hello["path"], about["path"]) == ("hello", "/blog/2026/hello", "/blog/about")
    again = await _article(client, route, "Hello", year)
    third = await _article(client, route, "hello", year)
    elsewhere = await _article(client, route, "Hello")  # another parent: free
    assert [again["slug"], third["slug"], elsewhere["slug"]] == ["hello-2", "hello-3", "hello"]
    given = await _article(client, route, "Anything", year, slug="my-own")
    assert given["path"] == "/blog/2026/my-own"
    untitled = await _article(client, route, "¡¿!", year)
    assert untitled["slug"] == "content"
    assert (await _nodes(client))[1][3:] == ("hello", "2026/hello")


async def test_a_taken_or_malformed_slug_is_refused_and_nothing_is_written(client):
    route, year, *_ = await _blog(client)
    before = await _nodes(client), await client.counts("content_fields")
    taken = await client.error(CREATE, {"i": {"routeId": route["id"], "title": "x", "parentId": year["id"], "slug": "hello"}})
    assert taken["extensions"] == {"code": "SLUG_TAKEN", "inputPath": ["input", "slug"]}
    for bad in ("Hello", "-x", "a/b", "", "x" * 129):
        error = await client.error(CREATE, {"i": {"routeId": route["id"], "title": "x", "slug": bad}})
        assert error["extensions"] == {"code": "INVALID_VALUE", "inputPath": ["input", "slug"]}, bad
    generic = await client.error(
        "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
        {"i": {"routeId": route["id"], "datatypeId": 1, "slug": "2026",
               "fields": [{"fieldId": 1, "value": "x"}]}})
    assert generic["extensions"] == {"code": "SLUG_TAKEN", "inputPath": ["input", "slug"]}
    assert (await _nodes(client), await client.counts("content_fields")) == before


async def test_content_by_path_returns_the_typed_node(client):
    route, year, hello, *_ = await _blog(client)
    found = (await client.data(BY_PATH, {"p": "/blog/2026/hello"}))["contentByPath"]
    assert found == {"__typename": "Article", "id": hello["id"], "slug": "hello", "path": "/blog/2026/hello",
                     "title": "Hello!", "views": 3}
    assert (await client.data(BY_PATH, {"p": "/blog/2026/hello/"}))["contentByPath"]["id"] == hello["id"]
    for missing in ("/blog/2026/nope", "/blog", "/", "/news/2026/hello", "/blog/hello"):
        assert (await client.data(BY_PATH, {"p": missing}))["contentByPath"] is None, missing
    assert (await client.data(BY_PATH, {"p": "/blog/2026/hello", "s": 1}))["contentByPath"] is None  # no such site
    for bad in ("blog/2026", "/Blog/x", "/blog//x", "/blog/a b"):
        error = await client.error(BY_PATH, {"p": bad})
        assert error["extensions"] == {"code": "INVALID_VALUE", "inputPath": ["path"]}, bad


async def test_a_route_slug_with_segments_takes_the_longest_match(client):
    await make_datatype(client, FIELDS)
    blog, news = await make_route(client), await make_route(client, "blog/news", "News")
    in_blog = await _article(client, blog, "News")
    nested = await _article(client, blog, "Today", in_blog)  # /blog/news/today through the blog route
    in_news = await _article(client, news, "Today")  # /blog/news/today too: the longer route wins
    assert nested["path"] == in_news["path"] == "/blog/news/today"
    assert (await client.data(BY_PATH, {"p": "/blog/news/today"}))["contentByPath"]["id"] == in_news["id"]
    assert (await client.data(BY_PATH, {"p": "/blog/news"}))["contentByPath"]["id"] == in_blog["id"]


async def test_content_by_path_follows_the_read_rules_of_contents(client, anonymous):
    route, year, hello, *_ = await _blog(client)
    draft = await _article(client, route, "Draft", year, status="DRAFT")
    assert (await client.data(BY_PATH, {"p": "/blog/2026/draft"}))["contentByPath"]["id"] == draft["id"]
    assert (await anonymous.data(BY_PATH, {"p": "/blog/2026/draft"}))["contentByPath"] is None
    assert (await anonymous.data(BY_PATH, {"p": "/blog/2026/hello"}))["contentByPath"]["id"] == hello["id"]


async def test_ancestors_siblings_and_descendants(client, anonymous):
    route, year, hello, world, about = await _blog(client)
    deep = await _article(client, route, "Deep", hello)
    hidden = await _article(client, route, "Hidden", hello, status="DRAFT")
    query = """query($id: Int!) { article(id: $id) { ancestors { id } siblings { id }
      all: descendants { id } one: descendants(depth: 1) { id ... on Article { title } }
      hidden: descendants(where: {status: {eq: DRAFT}}) { id } } }"""
    data = (await client.data(query, {"id": deep["id"]}))["article"]
    assert data["ancestors"] == [{"id": year["id"]}, {"id": hello["id"]}]  # root first
    assert data["siblings"] == [{"id": hidden["id"]}]
    top = (await client.data(query, {"id": year["id"]}))["article"]
    assert top["ancestors"] == [] and top["siblings"] == [{"id": about["id"]}]
    assert [n["id"] for n in top["all"]] == [hello["id"], world["id"], deep["id"], hidden["id"]]
    assert top["one"] == [{"id": hello["id"], "title": "Hello!"}, {"id": world["id"], "title": "World"}]
    assert top["hidden"] == [{"id": hidden["id"]}]
    seen = (await anonymous.data(query, {"id": year["id"]}))["article"]
    assert [n["id"] for n in seen["all"]] == [hello["id"], world["id"], deep["id"]] and seen["hidden"] == []
    assert (await anonymous.data(query, {"id": deep["id"]}))["article"]["siblings"] == []
    error = await client.error("{ contents { descendants(depth: 0) { id } } }")
    assert error["extensions"] == {"code": "INVALID_VALUE", "inputPath": ["depth"]}


async def test_moving_a_node_moves_its_subtrees_paths(client):
    route, year, hello, world, about = await _blog(client)
    deep = await _article(client, route, "Deep", hello)
    await client.data(MOVE, {"id": hello["id"], "parent": about["id"]})
    paths = {n[0]: n[4] for n in await _nodes(client)}
    assert (paths[hello["id"]], paths[deep["id"]], paths[world["id"]]) == ("about/hello", "about/hello/deep", "2026/world")
    assert (await client.data(BY_PATH, {"p": "/blog/about/hello/deep"}))["contentByPath"]["id"] == deep["id"]
    assert (await client.data(BY_PATH, {"p": "/blog/2026/hello/deep"}))["contentByPath"] is None
    moved = (await client.data(MOVE, {"id": hello["id"], "parent": None, "slug": "greeting"}))["moveContent"]
    assert moved == {"id": hello["id"], "slug": "greeting"}
    assert {n[0]: n[4] for n in await _nodes(client)}[deep["id"]] == "greeting/deep"
    renamed = await client.data('mutation($id: Int!) { updateArticle(id: $id, set: {slug: "hi"}) { path } }', {"id": hello["id"]})
    assert renamed["updateArticle"]["path"] == "/blog/hi"
    assert {n[0]: n[4] for n in await _nodes(client)}[deep["id"]] == "hi/deep"


async def test_refused_moves_and_renames_leave_the_database_unchanged(client):
    route, year, hello, world, about = await _blog(client)
    deep = await _article(client, route, "Deep", hello)
    await _article(client, route, "Hello", about)  # /blog/about/hello
    before = await _nodes(client)
    cycle = await client.error(MOVE, {"id": year["id"], "parent": deep["id"]})
    assert cycle["extensions"] == {"code": "CYCLE", "inputPath": ["parentId"]}
    itself = await client.error(MOVE, {"id": year["id"], "parent": year["id"]})
    assert itself["extensions"]["code"] == "CYCLE"
    taken = await client.error(MOVE, {"id": hello["id"], "parent": about["id"]})
    assert taken["extensions"] == {"code": "SLUG_TAKEN", "inputPath": ["parentId"]}
    renamed_into = await client.error(MOVE, {"id": world["id"], "parent": year["id"], "slug": "hello"})
    assert renamed_into["extensions"] == {"code": "SLUG_TAKEN", "inputPath": ["slug"]}
    bad = await client.error(MOVE, {"id": world["id"], "slug": "No"})
    assert bad["extensions"] == {"code": "INVALID_VALUE", "inputPath": ["slug"]}
    update = await client.error('mutation($id: Int!) { updateArticle(id: $id, set: {slug: "world", views: 1}) { id } }',
                                {"id": hello["id"]})
    assert update["extensions"] == {"code": "SLUG_TAKEN", "inputPath": ["set", "slug"]}
    generic = await client.error('mutation($id: Int!) { updateContent(id: $id, fields: [], slug: "x y") { id } }',
                                 {"id": hello["id"]})
    assert generic["extensions"] == {"code": "INVALID_VALUE", "inputPath": ["slug"]}
    assert await _nodes(client) == before


async def test_new_content_is_a_draft_unless_asked_and_status_is_an_enum(client, anonymous):
    route = await make_route(client)
    await make_datatype(client, FIELDS)
    draft = (await client.data(CREATE, {"i": {"routeId": route["id"], "title": "d"}}))["createArticle"]
    public = await _article(client, route, "p")
    assert (draft["status"], public["status"]) == ("DRAFT", "PUBLISHED")
    assert (await anonymous.data("{ articles { id status } }"))["articles"] == [{"id": public["id"], "status": "PUBLISHED"}]
    listed = await client.data("{ articles(where: {status: {in: [DRAFT]}}) { id } contents(where: {status: {neq: DRAFT}}) { id } }")
    assert listed == {"articles": [{"id": draft["id"]}], "contents": [{"id": public["id"]}]}
    async with client.database.session() as session:
        stored = await session.fetch_all(sa.text("SELECT status FROM content_data ORDER BY id"))
    assert [row["status"] for row in stored] == ["draft", "published"]  # stored as before


async def test_tree_fields_of_a_page_take_a_fixed_number_of_statements(client):
    route = await make_route(client)
    await make_datatype(client, FIELDS)
    root = await _article(client, route, "Root")
    query = """{ articles(where: {parentId: {isNull: false}}, limit: 100) { id path ancestors { id }
      siblings { id } descendants(depth: 2) { id } parent { id } } }"""
    counts, made = {}, 0
    for size in (10, 100):
        for n in range(made, size):
            parent = await _article(client, route, f"Item {n}", root)
            await _article(client, route, "Leaf", parent)  # a leaf per item, listed too
        made = size
        body, seen = await statements_of(client, query)
        assert "errors" not in body, body
        rows = body["data"]["articles"]
        assert len(rows) == 100 if size == 100 else len(rows) == 2 * size
        assert all(row["ancestors"][0] == {"id": root["id"]} and row["path"].startswith("/blog/root/") for row in rows)
        counts[size] = len(seen)
    # the viewer, the page, routes, the tree fields' rows, the parents, and the typed rows of each
    assert counts[10] == counts[100] <= 12, counts
