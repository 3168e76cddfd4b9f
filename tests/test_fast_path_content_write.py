"""createContent on the fast path (schema/compiled/content_write.py) against Strawberry's resolver:
the same mutation is sent with the fast path off and on; the answers must agree (but for the new
node's own id, position and times), bad input must get Strawberry's very error and write nothing,
and plugins watching content must still hear of it. Also the coupled write's statements: a fixed
few (five on SQLite, on the loop's own connection; one on PostgreSQL, a call of
modula_create_content). Both dialects."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import httpx
import pytest
import respx

from cms_fixtures import field_ids, make_datatype, make_route
from modula.testing import deliver_outbox, running_app
from modula_testing import token_client
from test_fast_path import statements_of
from test_fast_path_content import compiled, fast_path
from test_plugins import BUNDLED

CONTENT_TABLES = ("content_data", "content_fields")
CREATE = "mutation($input: CreateContentInput!) { createContent(input: $input) { %s } }"
GRANT = "mutation($r: String!, $s: String!, $a: String!) { grantPermission(role: $r, resource: $s, action: $a) { action } }"


@pytest.fixture
async def blog(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
            token_client(app, "root", roles=["admin"]) as admin:
        route = await make_route(admin)
        datatype = await make_datatype(admin)
        yield app, admin, route, datatype


def article(route: dict, datatype: dict, **values: str | None) -> dict:
    ids = field_ids(datatype)
    values = {"Title": "Hello", **values}
    return {"routeId": route["id"], "datatypeId": datatype["id"],
            "fields": [{"fieldId": ids[label.replace("_", " ")], "value": value} for label, value in values.items()]}


async def both_ways(app, client, query: str, variables: dict | None) -> tuple[dict, dict, bool]:
    """The answer with the fast path off, then with it on, and whether the fast path gave it."""
    fast_path(app, False)
    slow = await client.execute(query, variables)
    fast_path(app, True)
    answered = compiled(app).answered
    fast = await client.execute(query, variables)
    return slow, fast, compiled(app).answered == answered + 1


def own_columns_apart(body: dict) -> dict:
    """The answer with the new node's own values (which differ between two creates) replaced by
    what they must be: an id and a position that are ints, times in ISO 8601 with their offset."""
    node = body["data"]["createContent"]
    for key, value in node.items():
        if key in ("id", "position", "i"):
            assert isinstance(value, int)
            node[key] = "int"
        elif key in ("createdAt", "updatedAt"):
            assert dt.datetime.fromisoformat(value).utcoffset() == dt.timedelta(0)
            node[key] = "time"
    return body


SELECTIONS = [
    "id",
    "id position status createdAt updatedAt __typename",
    "i: id s: status ...on Content { position } t: __typename",
    "mutation($input: CreateContentInput!) { createContent(input: $input) { ...C } } fragment C on Content { id status }",
    "id status @skip(if: true) position @include(if: true)",
]


@pytest.mark.parametrize("selection", SELECTIONS)
async def test_a_fast_create_answers_as_strawberry_does(blog, selection):
    app, admin, route, datatype = blog
    before = await admin.counts(*CONTENT_TABLES)
    query = selection if selection.startswith("mutation") else CREATE % selection
    slow, fast, used = await both_ways(app, admin, query, {"input": article(route, datatype, Views="3")})
    assert used, selection
    assert "errors" not in slow and own_columns_apart(fast) == own_columns_apart(slow)
    assert await admin.counts(*CONTENT_TABLES) == {"content_data": before["content_data"] + 2,
                                                   "content_fields": before["content_fields"] + 4}


async def test_the_fast_create_writes_what_strawberry_writes(blog):
    app, admin, route, datatype = blog
    given = article(route, datatype, Views="42", Rating="2.5", Featured="true", Published_on="2026-12-03",
                    Updated="2026-12-03T10:00:00+01:00", Meta='{"a": [1]}', Body="é <b>")
    given["status"] = "DRAFT"
    slow, fast, used = await both_ways(app, admin, CREATE % "id", {"input": given})
    assert used
    read = "query($id: Int!) { content(id: $id) { status parent { id } fields { value field { label } } } }"
    fast_path(app, False)
    nodes = [await admin.data(read, {"id": body["data"]["createContent"]["id"]}) for body in (slow, fast)]
    assert nodes[0] == nodes[1] and nodes[0]["content"]["status"] == "DRAFT"
    async with admin.database.session() as session:
        marks = ("$1", "$2") if session.dialect == "postgresql" else ("?", "?")
        rows = await session.fetch_native(
            "SELECT content_data_id, field_id, value, value_number, value_time FROM content_fields"
            " WHERE content_data_id IN (%s, %s) ORDER BY field_id, content_data_id" % marks,
            [slow["data"]["createContent"]["id"], fast["data"]["createContent"]["id"]])
    assert len(rows) == 16
    for slow_row, fast_row in zip(rows[0::2], rows[1::2]):
        assert slow_row[1:] == fast_row[1:]  # the typed value columns, stored alike


async def test_a_child_goes_after_its_siblings(blog):
    app, admin, route, datatype = blog
    parent = (await admin.data(CREATE % "id", {"input": article(route, datatype)}))["createContent"]
    child = {**article(route, datatype), "parentId": parent["id"]}
    slow, fast, used = await both_ways(app, admin, CREATE % "id position", {"input": child})
    assert used
    assert [slow["data"]["createContent"]["position"], fast["data"]["createContent"]["position"]] == [0, 1]
    root = (await admin.data(CREATE % "position", {"input": article(route, datatype)}))["createContent"]
    assert root["position"] == 1


BAD = [
    ("unknown field", lambda g: g["fields"].append({"fieldId": 9999, "value": "x"})),
    ("bad integer", lambda g: g["fields"].append({"fieldId": g["_ids"]["Views"], "value": "many"})),
    ("required missing", lambda g: g.update(fields=[{"fieldId": g["_ids"]["Views"], "value": "1"}])),
    ("required null", lambda g: g["fields"][0].update(value=None)),
    ("no such route", lambda g: g.update(routeId=9999)),
    ("no such datatype", lambda g: g.update(datatypeId=9999)),
    ("no such parent", lambda g: g.update(parentId=9999)),
    ("bad status", lambda g: g.update(status="archived")),
    ("null status", lambda g: g.update(status=None)),
    ("unknown input key", lambda g: g.update(colour="red")),
    ("id not an Int", lambda g: g.update(routeId=2**40)),
    ("id a string", lambda g: g.update(routeId="1")),
    ("value not a string", lambda g: g["fields"][0].update(value=5)),
]


@pytest.mark.parametrize("case, spoil", BAD, ids=[case for case, _ in BAD])
async def test_bad_input_gets_strawberrys_error_and_writes_nothing(blog, case, spoil):
    app, admin, route, datatype = blog
    given = {**article(route, datatype), "_ids": field_ids(datatype)}
    spoil(given)
    del given["_ids"]
    before = await admin.counts(*CONTENT_TABLES)
    slow, fast, used = await both_ways(app, admin, CREATE % "id", {"input": given})
    assert not used and fast == slow and slow.get("errors"), case
    assert await admin.counts(*CONTENT_TABLES) == before


async def test_a_value_left_out_is_null_as_strawberry_takes_it(blog):
    app, admin, route, datatype = blog
    given = article(route, datatype)
    given["fields"].append({"fieldId": field_ids(datatype)["Views"]})
    slow, fast, used = await both_ways(app, admin, CREATE % "status", {"input": given})
    assert used and fast == slow and "errors" not in fast
    assert await admin.counts(*CONTENT_TABLES) == {"content_data": 2, "content_fields": 2}


async def test_a_viewer_who_may_not_create_content_is_refused_either_way(blog):
    app, admin, route, datatype = blog
    await admin.data('mutation { createRole(name: "reader", label: "Reader") { name } }')
    await admin.data(GRANT, {"r": "reader", "s": "content", "a": "read"})
    async with token_client(app, "reader", roles=["reader"]) as reader:
        slow, fast, used = await both_ways(app, reader, CREATE % "id", {"input": article(route, datatype)})
    assert not used and fast == slow and slow["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await admin.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}


async def test_a_selection_beyond_the_nodes_own_columns_goes_to_strawberry(blog):
    app, admin, route, datatype = blog
    for selection in ("id route { slug }", "id fields { value }", "id parent { id }"):
        slow, fast, used = await both_ways(app, admin, CREATE % selection, {"input": article(route, datatype)})
        assert not used and "errors" not in fast and fast["data"]["createContent"].keys() == slow["data"]["createContent"].keys()


async def test_a_literal_input_is_planned_like_a_variable(blog):
    app, admin, route, datatype = blog
    ids = field_ids(datatype)
    query = ('mutation { createContent(input: {routeId: %d, datatypeId: %d, status: DRAFT, fields: '
             '[{fieldId: %d, value: "Literal"}]}) { status } }' % (route["id"], datatype["id"], ids["Title"]))
    slow, fast, used = await both_ways(app, admin, query, None)
    assert used and fast == slow == {"data": {"createContent": {"status": "DRAFT"}}, "extensions": fast["extensions"]}


@respx.mock
async def test_plugins_watching_content_hear_a_fast_create(database_url, tmp_path):
    shutil.copytree(BUNDLED / "webhooks", tmp_path / "plugins" / "webhooks")
    posted = respx.post("https://hooks.example.com/content").mock(return_value=httpx.Response(204))
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
            token_client(app, "admin", roles=["admin"]) as admin:
        await admin.data('mutation { insertWebhooksSubscriptions(objects: [{event: "content.created",'
                         ' url: "https://hooks.example.com/content"}]) { affectedRows } }')
        route, datatype = await make_route(admin), await make_datatype(admin)
        answered = compiled(app).answered
        node = (await admin.data(CREATE % "id", {"input": article(route, datatype)}))["createContent"]
        assert compiled(app).answered == answered + 1
        await deliver_outbox(app)
        assert posted.call_count == 1
        body = json.loads(posted.calls[0].request.content)
        assert body["event"] == "content.created" and body["data"]["id"] == node["id"]


async def test_the_coupled_write_is_a_fixed_few_statements_whatever_the_number_of_values(blog, dialect):
    app, admin, route, datatype = blog
    await admin.execute(CREATE % "id", {"input": article(route, datatype)})  # warm
    _, viewer_only = await statements_of(admin, "{ __typename }")  # resolving the viewer
    counts = []
    for n, values in enumerate(({}, {"Views": "1", "Rating": "2", "Featured": "false", "Body": "b", "Meta": "{}"})):
        given = article(route, datatype, **values) | {"slug": f"given-{n}"}
        _, seen = await statements_of(admin, CREATE % "id", {"input": given})
        counts.append(len(seen) - len(viewer_only))
    # SQLite: BEGIN, the route with the datatype and its fields, the node with its position, slug
    # and path, its values (one executemany), COMMIT; a slug taken among the siblings fails the
    # node's statement (a unique index). PostgreSQL: one call of modula_create_content, the fields
    # being known to the process (their digest is checked under the route's lock).
    assert counts == ([5, 5] if dialect == "sqlite" else [1, 1])
    # A derived slug costs SQLite one statement more (the siblings' slugs it must not take);
    # PostgreSQL's function finds a free one itself.
    _, seen = await statements_of(admin, CREATE % "id", {"input": article(route, datatype, Views="2")})
    assert len(seen) - len(viewer_only) == counts[0] + (1 if dialect == "sqlite" else 0)


async def test_a_field_changed_behind_the_process_is_seen_by_the_next_create(blog, dialect):
    """What the process knows of a datatype's fields (PostgreSQL's one-statement write) is checked
    by the database: fields changed by another process (here: in the database, behind this one's
    back) decide the next write, which then says what is wrong and writes nothing."""
    import sqlalchemy as sa

    from modula.db import core_tables as t
    app, admin, route, datatype = blog
    await admin.data(CREATE % "id", {"input": article(route, datatype, Views="1", Body="b")})  # known now
    ids = field_ids(datatype)
    async with app.state.database.session() as session:
        await session.execute(sa.update(t.fields).where(t.fields.c.id == ids["Views"]).values(required=True))
        await session.execute(sa.update(t.fields).where(t.fields.c.id == ids["Body"]).values(type="integer"))
    before = await admin.counts(*CONTENT_TABLES)
    body = await admin.execute(CREATE % "id", {"input": article(route, datatype, Body="b")})
    told = json.dumps(body["errors"])  # one error listing both problems
    assert "field 'Body' (integer): expected an integer" in told and "field 'Views' (id" in told, body
    assert body["data"] is None and await admin.counts(*CONTENT_TABLES) == before
    created = await admin.data(CREATE % "id", {"input": article(route, datatype, Views="2", Body="3")})
    assert await admin.counts(*CONTENT_TABLES) == {"content_data": before["content_data"] + 1,
                                                  "content_fields": before["content_fields"] + 3}
    assert created["createContent"]["id"]


async def test_on_sqlite_the_coupled_write_runs_on_the_loops_connection(blog, dialect):
    if dialect != "sqlite":
        pytest.skip("SQLite's loop-thread connection")
    app, admin, route, datatype = blog
    inline = app.state.database.inline
    await admin.execute(CREATE % "id", {"input": article(route, datatype)})
    before = inline.statements
    await admin.data(CREATE % "id", {"input": article(route, datatype, Views="2") | {"slug": "given"}})
    assert inline.statements == before + 5 and inline.owner is None


async def test_the_fast_create_takes_a_slug_and_a_status_and_answers_them(blog):
    app, admin, route, datatype = blog
    given = article(route, datatype) | {"status": "PUBLISHED"}
    slow, fast, used = await both_ways(app, admin, CREATE % "slug status", {"input": given})
    assert used and slow["data"]["createContent"] == {"slug": "hello", "status": "PUBLISHED"}
    assert fast["data"]["createContent"] == {"slug": "hello-2", "status": "PUBLISHED"}  # derived, free among siblings
    before = await admin.counts(*CONTENT_TABLES)
    taken = await admin.execute(CREATE % "id", {"input": given | {"slug": "hello"}})  # the fast write fails: Strawberry answers
    assert taken["errors"][0]["extensions"] == {"code": "SLUG_TAKEN", "inputPath": ["input", "slug"]}
    assert await admin.counts(*CONTENT_TABLES) == before
