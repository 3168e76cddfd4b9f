"""The fast path for core content (schema/compiled/content.py) against Strawberry's resolvers: each
operation is answered with the fast path off and on, by an admin, a reader of published content
only, an author who reads their own drafts too, and nobody; the answers must be equal and the fast
one must come from one statement. Selections it does not compile fall back and still answer.
Both dialects."""

from __future__ import annotations

import dataclasses

import pytest

from cms_fixtures import make_content, make_datatype, make_route
from modula_testing import GraphQLClient, token_client
from test_fast_path import statements_of

FIELDS = [
    {"label": "Title", "type": "text", "required": True},
    {"label": "Body \"quoted\" ü", "type": "richtext"},
    {"label": "Views", "type": "integer"},
    {"label": "Featured", "type": "boolean"},
    {"label": "Meta", "type": "json", "data": {"hint": [1, 2.5]}},
]

GRANT = "mutation($r: String!, $s: String!, $a: String!, $rule: String) { grantPermission(role: $r, resource: $s, action: $a, rowRule: $rule) { action } }"

COMPILED = [
    ("{ contents { id position status fields { id value field { id label type required } } } }", None),
    ("{ contents(limit: 100) { id fields { value field { label type } } } }", None),
    ("{ contents { id fields { value field { name } } } }", None),
    ("{ contents(limit: 3) { id } }", None),
    ("{ contents(limit: 2, offset: 3) { id status } }", None),
    ("{ contents { id slug status } content(id: 2) { slug status } }", None),
    ("{ contents(offset: 4) { id } }", None),
    ("{ contents(limit: 0) { id } }", None),
    ("{ contents(limit: null, offset: null) { id } }", None),
    ("{ contents(routeId: 1) { id } b: contents(routeId: 2) { id } }", None),
    ("{ contents(datatypeId: 2) { id fields { value } } }", None),
    ("{ contents(routeId: 1, datatypeId: 1) { id } }", None),
    ("{ contents(routeId: 999) { id } }", None),
    ("{ n: contents { i: id p: position __typename v: fields { __typename x: value f: field { __typename t: type } } } __typename }", None),
    ("{ contents { id fields { id } fields { value field { id } field { label } } } }", None),
    ("{ contents { ...C } } fragment C on ContentNode { id fields { ...V } } fragment V on ContentField { value }", None),
    ("{ contents { id status @skip(if: true) fields @include(if: true) { value } } }", None),
    ("query($r: Int, $n: Int!, $o: Int) { contents(routeId: $r, limit: $n, offset: $o) { id } }", {"r": 1, "n": 2, "o": 1}),
    ("query($r: Int, $n: Int!, $o: Int) { contents(routeId: $r, limit: $n, offset: $o) { id } }", {"r": None, "n": 5, "o": None}),
    ("{ content(id: 1) { id status fields { value field { label } } } }", None),
    ("{ content(id: 999) { id } }", None),
    ("query($id: Int!) { content(id: $id) { id position } other: content(id: 2) { id } }", {"id": 3}),
    ("{ a: content(id: 5) { id } contents(limit: 1) { id } }", None),
]

FALLBACK = [
    ("{ contents { ...on Content { id } } }", None),  # only nodes of a datatype without a generated type
    ("{ contents { id createdAt } }", None),  # DateTime: Strawberry's format
    ("{ contents { id updatedAt } }", None),
    ("{ contents { id route { slug } } }", None),
    ("{ contents { id children { id } } }", None),
    ("{ contents { fields { field { data } } } }", None),  # JSON: Strawberry re-serialises it
    ("{ contents { fields { field { createdAt } } } }", None),
    ("{ contents(limit: 101) { id } }", None),  # over max_page_size: Strawberry's error
    ("{ contents(limit: -1) { id } }", None),
    ("query($o: Int!) { contents(offset: $o) { id } }", {"o": -1}),
    ("query($n: Int!) { contents(limit: $n) { id } }", {"n": 101}),
    ("{ contents { id } sites { id } }", None),  # a core root the fast path does not know
    ("query($id: Int! = 1) { content(id: $id) { id } }", None),  # defaults are graphql-core's to coerce
    ("query($id: Int!) { content(id: $id) { id } }", {"id": 2**40}),  # not an Int: Strawberry's error
    ("query($r: Int) { contents(routeId: $r) { id } }", {"r": -(2**40)}),
]


def fast_path(app, on: bool) -> None:
    app.state.settings = dataclasses.replace(app.state.settings, fast_path=on)


def compiled(app):
    return app.state.live_schema.current.schema.compiled


def is_fast(statement: str) -> bool:
    return "json_object(" in statement or "json_build_object(" in statement


async def answer(client: GraphQLClient, query: str, variables: dict | None) -> tuple[dict, list[str]]:
    return await statements_of(client, query, variables)


async def both_ways(app, client: GraphQLClient, query: str, variables: dict | None) -> tuple[dict, dict, bool]:
    """The answer with the fast path off, with it on, and whether the fast path gave the latter."""
    fast_path(app, False)
    slow, seen = await answer(client, query, variables)
    assert not any(is_fast(s) for s in seen)
    fast_path(app, True)
    fast, seen = await answer(client, query, variables)
    return slow, fast, any(is_fast(s) for s in seen)


@pytest.fixture
async def site(database_url, tmp_path):
    from modula.testing import running_app

    async with running_app(database_url, plugins_dir=tmp_path / "plugins", max_page_size=100, default_page_size=6) as app:
        async with token_client(app, "root", roles=["admin"]) as admin:
            for role in ("reader", "author"):
                await admin.data(f'mutation {{ createRole(name: "{role}", label: "{role}") {{ name }} }}')
            await admin.data(GRANT, {"r": "reader", "s": "content", "a": "read", "rule": "published"})
            for resource, action, rule in [("content", "read", "own"), ("content", "create", None), ("route", "read", None), ("datatype", "read", None)]:
                await admin.data(GRANT, {"r": "author", "s": resource, "a": action, "rule": rule})
            async with (token_client(app, "pub", roles=["reader"]) as reader,
                        token_client(app, "writer", roles=["author"]) as author,
                        token_client(app, "both", roles=["author", "reader"]) as both,
                        token_client(app, "nobody") as nobody,
                        GraphQLClient.for_app(app) as anonymous):
                await seed(admin, author, both)
                yield app, {"admin": admin, "reader": reader, "author": author, "both": both, "nobody": nobody,
                            "anonymous": anonymous}


async def seed(admin: GraphQLClient, author: GraphQLClient, both: GraphQLClient) -> None:
    blog, news = await make_route(admin, "blog", "Blog"), await make_route(admin, "news", "News")
    article, note = await make_datatype(admin, FIELDS), await make_datatype(admin, FIELDS[:2], label="Note", type="note")
    values = {"Title": "Hello", "Body \"quoted\" ü": "Line\n\t\"two\" — ü ✓ \\ </script>", "Views": "42",
              "Featured": "true", "Meta": "{\"a\": [1, 2]}"}
    first = await make_content(admin, blog, article, values)
    await make_content(admin, blog, article, {"Title": "Second", "Views": "7"}, parent_id=first["id"])
    await make_content(admin, news, note, {"Title": "Note", "Body \"quoted\" ü": ""})
    await make_content(author, blog, article, {"Title": "By the author"})
    ids = {f["label"]: f["id"] for f in article["fields"]}
    await admin.data("mutation($i: CreateContentInput!) { createContent(input: $i) { id } }", {"i": {
        "routeId": blog["id"], "datatypeId": article["id"], "status": "DRAFT",
        "fields": [{"fieldId": ids["Title"], "value": "Draft"}, {"fieldId": ids["Views"], "value": "1"}]}})
    for client, title in [(author, "My draft"), (both, "Both's draft")]:
        await client.data("mutation($i: CreateContentInput!) { createContent(input: $i) { id } }", {"i": {
            "routeId": news["id"], "datatypeId": note["id"], "status": "DRAFT",
            "fields": [{"fieldId": note["fields"][0]["id"], "value": title}]}})
    for n in range(3):
        await make_content(admin, news, article, {"Title": f"More {n}", "Featured": "false"})
    # A value whose field the datatype no longer lists has no position (values_of sorts it where
    # the database puts NULL); Featured moves before Title.
    async with admin.database.session() as session:
        await session.fetch_native(f"DELETE FROM datatypes_fields WHERE field_id = {ids['Views']}", [])
        await session.fetch_native(f"UPDATE datatypes_fields SET position = -1 WHERE field_id = {ids['Featured']}", [])


@pytest.mark.parametrize("who", ["admin", "reader", "author", "both", "anonymous"])
async def test_compiled_content_answers_equal_strawberry_answers(site, who):
    app, people = site
    for query, variables in COMPILED:
        slow, fast, used = await both_ways(app, people[who], query, variables)
        assert "errors" not in slow, (query, slow)
        assert fast == slow, query
        assert used, f"not compiled: {query}"


async def test_row_rules_pick_the_same_nodes(site):
    app, people = site
    seen = {}
    for who in ("admin", "reader", "author", "both", "anonymous"):
        _, fast, used = await both_ways(app, people[who], "{ contents(limit: 100) { status fields { value field { label } } } }", None)
        assert used
        seen[who] = [(c["status"], next(v["value"] for v in c["fields"] if v["field"]["label"] == "Title"))
                     for c in fast["data"]["contents"]]
    assert len(seen["admin"]) == 10 and ("DRAFT", "Draft") in seen["admin"]
    assert all(status == "PUBLISHED" for status, _ in seen["reader"])
    assert [title for _, title in seen["author"]] == ["By the author", "My draft"]
    assert seen["both"] == [*seen["reader"][:4], ("DRAFT", "Both's draft"), *seen["reader"][4:]]
    assert seen["anonymous"] == seen["reader"]  # the anonymous role reads published content


async def test_values_keep_the_datatype_order_and_text_exactly(site):
    app, people = site
    slow, fast, used = await both_ways(app, people["admin"], "{ content(id: 1) { fields { value field { label required } } } }", None)
    assert used and fast == slow
    values = fast["data"]["content"]["fields"]
    labels = [v["field"]["label"] for v in values]
    assert [label for label in labels if label != "Views"] == ["Featured", "Title", "Body \"quoted\" ü", "Meta"]
    assert "Views" in labels  # without a position: first or last, as the database sorts NULL
    assert {"value": "true", "field": {"label": "Featured", "required": False}} in values
    assert {"value": "Line\n\t\"two\" — ü ✓ \\ </script>", "field": {"label": "Body \"quoted\" ü", "required": False}} in values
    assert {"value": "Hello", "field": {"label": "Title", "required": True}} in values


@pytest.mark.parametrize("query, variables", FALLBACK)
async def test_what_the_content_fast_path_cannot_answer_goes_to_strawberry(site, query, variables):
    app, people = site
    slow, fast, used = await both_ways(app, people["admin"], query, variables)
    assert not used and fast == slow


async def test_a_viewer_without_read_permission_gets_strawberrys_error(site):
    app, people = site
    for query in ("{ contents { id } }", "{ content(id: 1) { id } }"):
        slow, fast, used = await both_ways(app, people["nobody"], query, None)
        assert not used and fast == slow and slow["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_warmed_contents_request_runs_one_statement_and_plans_nothing(site):
    app, people = site
    admin = people["admin"]
    _, baseline = await answer(admin, "{ __typename }", None)  # resolving the viewer
    query = "query($n: Int!) { contents(limit: $n) { id fields { value field { label type } } } }"
    await admin.execute(query, {"n": 5})
    planned = compiled(app).compilations
    body, seen = await answer(admin, query, {"n": 10})
    assert "errors" not in body and len(body["data"]["contents"]) == 10
    assert compiled(app).compilations == planned
    assert len(seen) - len(baseline) == 1 and is_fast(seen[-1]), seen
