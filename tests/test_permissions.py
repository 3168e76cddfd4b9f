"""Who may do what, checked on every node and edge: built-in roles against core and plugin types,
relationships, nested inserts, row rules, manifest grants that wait for an admin, plugin
management. Each client carries a real API token of a user with the roles under test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cms_fixtures import make_content, make_datatype, make_route
from modula_testing import GraphQLClient, running_app, token_client
from test_plugins import BUNDLED, write_plugin

FORBIDDEN = "FORBIDDEN"


def code(body: dict) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("extensions", {}).get("code") if errors else None


# --- core types -----------------------------------------------------------------------------


@pytest.fixture
async def people(app):
    """An admin, an editor, a viewer and nobody, each with its own client."""
    async with (token_client(app, "root", roles=["admin"]) as admin, token_client(app, "ed", roles=["editor"]) as editor,
                token_client(app, "vi", roles=["viewer"]) as viewer, GraphQLClient.for_app(app) as anonymous):
        yield {"admin": admin, "editor": editor, "viewer": viewer, "anonymous": anonymous}


CREATE_SITE = 'mutation { createSite(input: {name: "s"}) { id } }'
CREATE_ROUTE = 'mutation { createRoute(input: {slug: "r", title: "R"}) { id } }'
CREATE_DATATYPE = 'mutation { createDatatype(input: {label: "D", type: "d"}) { id } }'


@pytest.mark.parametrize("role, allowed", [("admin", True), ("editor", True), ("viewer", False), ("anonymous", False)])
async def test_core_writes_by_role(people, role, allowed):
    client = people[role]
    for mutation, table in [(CREATE_SITE, "sites"), (CREATE_ROUTE, "routes"), (CREATE_DATATYPE, "datatypes")]:
        before = await client.count(table)
        body = await client.execute(mutation)
        assert (code(body) is None) == allowed, body
        assert await client.count(table) == before + (1 if allowed else 0)
        if not allowed:
            assert code(body) == FORBIDDEN


@pytest.mark.parametrize("role, allowed", [("admin", True), ("editor", True), ("viewer", False), ("anonymous", False)])
async def test_content_create_update_move_delete_by_role(people, role, allowed):
    admin, client = people["admin"], people[role]
    route, datatype = await make_route(admin), await make_datatype(admin)
    node = await make_content(admin, route, datatype)
    title = datatype["fields"][0]["id"]
    attempts = [
        ("mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
         {"i": {"routeId": route["id"], "datatypeId": datatype["id"], "fields": [{"fieldId": title, "value": "x"}]}}),
        ("mutation($id: Int!, $f: Int!) { updateContent(id: $id, fields: [{fieldId: $f, value: \"changed\"}]) { id } }",
         {"id": node["id"], "f": title}),
        ("mutation($id: Int!) { moveContent(id: $id, position: 0) { id } }", {"id": node["id"]}),
        ("mutation($id: Int!) { deleteContent(id: $id) { deletedIds } }", {"id": node["id"]}),
    ]
    for mutation, variables in attempts:
        before = await client.counts("content_data", "content_fields")
        body = await client.execute(mutation, variables)
        assert (code(body) is None) == allowed, (mutation, body)
        if not allowed:
            assert code(body) == FORBIDDEN
            assert await client.counts("content_data", "content_fields") == before
    if not allowed:
        values = await admin.data(f"{{ content(id: {node['id']}) {{ fields {{ value }} }} }}")
        assert values["content"]["fields"][0]["value"] == "Hello"  # nothing changed


@pytest.mark.parametrize("role", ["admin", "editor", "viewer", "anonymous"])
async def test_core_reads_by_role(people, role):
    body = await people[role].execute("{ sites { id } routes { id } datatypes { id } }")
    assert code(body) is None, body  # every built-in role may read the site structure


async def test_anonymous_reads_only_published_content_through_every_path(people):
    admin = people["admin"]
    route, datatype = await make_route(admin), await make_datatype(admin)
    root = await make_content(admin, route, datatype)
    ids = datatype["fields"][0]["id"]
    draft = (await admin.data("mutation($i: CreateContentInput!) { createContent(input: $i) { id } }", {"i": {
        "routeId": route["id"], "datatypeId": datatype["id"], "parentId": root["id"], "status": "DRAFT",
        "fields": [{"fieldId": ids, "value": "secret"}]}}))["createContent"]
    anonymous = people["anonymous"]
    data = await anonymous.data(f"{{ contents {{ id }} content(id: {draft['id']}) {{ id }} root: content(id: {root['id']}) {{ children {{ id }} }} }}")
    assert data == {"contents": [{"id": root["id"]}], "content": None, "root": {"children": []}}
    data = await people["viewer"].data(f"{{ contents {{ id }} root: content(id: {root['id']}) {{ children {{ id }} }} }}")
    assert [c["id"] for c in data["contents"]] == [root["id"], draft["id"]]
    assert data["root"]["children"] == [{"id": draft["id"]}]


async def test_own_row_rule_limits_updates_to_the_authors_content(app, people):
    admin = people["admin"]
    await admin.data('mutation { createRole(name: "author", label: "Author") { name } }')
    grants = [("content", "read", None), ("content", "create", None), ("content", "update", "own"),
              ("content", "delete", "own"), ("route", "read", None), ("datatype", "read", None)]
    for resource, action, rule in grants:
        await admin.data("mutation($s: String!, $a: String!, $r: String) { grantPermission(role: \"author\", resource: $s, action: $a, rowRule: $r) { action } }",
                         {"s": resource, "a": action, "r": rule})
    route, datatype = await make_route(admin), await make_datatype(admin)
    theirs = await make_content(admin, route, datatype)
    async with token_client(app, "writer", roles=["author"]) as writer:
        mine = await make_content(writer, route, datatype)
        update = "mutation($id: Int!) { updateContent(id: $id, fields: [], status: DRAFT) { id status } }"
        assert (await writer.data(update, {"id": mine["id"]}))["updateContent"]["status"] == "DRAFT"
        body = await writer.execute(update, {"id": theirs["id"]})
        assert code(body) == FORBIDDEN
        body = await writer.execute("mutation($id: Int!) { deleteContent(id: $id) { deletedIds } }", {"id": theirs["id"]})
        assert code(body) == FORBIDDEN
    status = await admin.data(f"{{ content(id: {theirs['id']}) {{ status }} }}")
    assert status["content"]["status"] == "PUBLISHED"  # untouched


@pytest.mark.parametrize("role", ["editor", "viewer", "anonymous"])
async def test_plugin_management_and_admin_queries_are_admin_only(people, role):
    client = people[role]
    for operation in ['mutation { loadPlugin(name: "shop") { plugin } }', 'mutation { unloadPlugin(name: "x") { plugin } }',
                      "{ users { id } }", "{ pluginGrantRequests { plugin } }",
                      'mutation { approvePluginGrants(plugin: "shop") { plugin } }',
                      'mutation { grantPermission(role: "viewer", resource: "site", action: "delete") { action } }']:
        body = await client.execute(operation)
        assert code(body) in (FORBIDDEN, "UNAUTHENTICATED"), (operation, body)


# --- plugin tables --------------------------------------------------------------------------

ORDERS = """
plugin.define_table({ name = "acl_customers", fields = {
    {name = "customer_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "user_id", type = "integer"},
}})
plugin.define_table({ name = "acl_orders", fields = {
    {name = "order_id", type = "integer", primary_key = true},
    {name = "customer_id", type = "integer", not_null = true, foreign_key = "acl_customers"},
    {name = "total", type = "real"},
}})
plugin.query{ name = "aclWho", returns = "String", handler = function(args, ctx)
    return ctx.viewer.username or "nobody"
end }
plugin.query{ name = "aclMayOrder", returns = "Boolean", handler = function(args, ctx)
    return ctx.can("create", "acl_orders")
end }
"""
GRANTS = {"viewer": {"acl_customers": ["read"], "plugin:acl": ["read"]},
          "editor": {"acl_customers": ["read", "create"], "acl_orders": [{"action": "read", "rowRule": "own:customer_id"}]}}


@pytest.fixture
async def acl(database_url: str, tmp_path: Path):
    import json

    folder = write_plugin(tmp_path / "plugins", "acl", ORDERS)
    manifest = json.loads((folder / "plugin.json").read_text())
    (folder / "plugin.json").write_text(json.dumps({**manifest, "grants": GRANTS}))
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with (token_client(app, "root", roles=["admin"]) as admin, token_client(app, "vi", roles=["viewer"]) as viewer,
                    token_client(app, "ed", roles=["editor"]) as editor):
            await admin.data('mutation { insertAclCustomers(objects: [{name: "a", aclOrders: [{total: 5}]}]) { affectedRows } }')
            yield {"admin": admin, "viewer": viewer, "editor": editor}


async def test_plugin_tables_are_admin_only_until_an_admin_approves_the_manifest_grants(acl):
    viewer, admin = acl["viewer"], acl["admin"]
    body = await viewer.execute("{ aclCustomers { name } }")
    assert code(body) == FORBIDDEN
    requests = await admin.data('{ pluginGrantRequests(plugin: "acl") { role resource action rowRule } }')
    assert {"role": "viewer", "resource": "acl_customers", "action": "read", "rowRule": None} in requests["pluginGrantRequests"]
    assert {"role": "editor", "resource": "acl_orders", "action": "read", "rowRule": "own:customer_id"} in requests["pluginGrantRequests"]
    approved = await admin.data('mutation { approvePluginGrants(plugin: "acl") { resource } }')
    assert len(approved["approvePluginGrants"]) == len(requests["pluginGrantRequests"])
    assert (await viewer.data("{ aclCustomers { name } }")) == {"aclCustomers": [{"name": "a"}]}
    assert (await admin.data('{ pluginGrantRequests(plugin: "acl") { role } }'))["pluginGrantRequests"] == []


async def test_a_relationship_does_not_reach_a_table_the_viewer_may_not_read(acl):
    await acl["admin"].data('mutation { approvePluginGrants(plugin: "acl") { resource } }')
    viewer = acl["viewer"]
    body = await viewer.execute("{ aclCustomers { name aclOrders { total } } }")
    assert code(body) == FORBIDDEN and body["errors"][0]["path"][-1] == "aclOrders"
    assert code(await viewer.execute("{ aclOrders { total } }")) == FORBIDDEN
    assert code(await viewer.execute("{ aclOrdersAggregate { count } }")) == FORBIDDEN


async def test_nested_insert_needs_create_on_every_table_it_reaches(acl):
    await acl["admin"].data('mutation { approvePluginGrants(plugin: "acl") { resource } }')
    editor = acl["editor"]
    before = await editor.counts("acl_customers", "acl_orders")
    body = await editor.execute('mutation { insertAclCustomers(objects: [{name: "b", aclOrders: [{total: 1}]}]) { affectedRows } }')
    assert code(body) == FORBIDDEN
    assert await editor.counts("acl_customers", "acl_orders") == before
    data = await editor.data('mutation { insertAclCustomers(objects: [{name: "c"}]) { affectedRows } }')
    assert data["insertAclCustomers"]["affectedRows"] == 1
    body = await acl["viewer"].execute('mutation { insertAclCustomers(objects: [{name: "d"}]) { affectedRows } }')
    assert code(body) == FORBIDDEN
    body = await editor.execute('mutation { deleteAclCustomers(where: {}, allRows: true) { affectedRows } }')
    assert code(body) == FORBIDDEN
    assert await editor.count("acl_customers") == before["acl_customers"] + 1


async def test_own_column_row_rule_on_a_plugin_table(acl):
    admin, editor = acl["admin"], acl["editor"]
    await admin.data('mutation { approvePluginGrants(plugin: "acl") { resource } }')
    me = (await editor.data("{ me { id } }"))["me"]["id"]
    # The rule compares customer_id with the viewer's user id: give the editor's id a customer and an order.
    await admin.data(f'mutation {{ insertAclCustomers(objects: [{{customerId: {me + 100}, name: "x"}}, {{customerId: {me}, name: "mine", aclOrders: [{{total: 7}}]}}]) {{ affectedRows }} }}')
    data = await editor.data("{ aclOrders { total } aclOrdersAggregate { count } }")
    assert data == {"aclOrders": [{"total": 7.0}], "aclOrdersAggregate": {"count": 1}}
    everything = await admin.data("{ aclOrdersAggregate { count } }")
    assert everything["aclOrdersAggregate"]["count"] == 2


async def test_lua_handlers_see_the_viewer_and_can_ask_what_it_may_do(acl):
    admin, viewer, editor = acl["admin"], acl["viewer"], acl["editor"]
    assert code(await viewer.execute("{ aclWho }")) == FORBIDDEN  # plugin:acl not granted yet
    await admin.data('mutation { approvePluginGrants(plugin: "acl") { resource } }')
    assert await viewer.data("{ aclWho aclMayOrder }") == {"aclWho": "vi", "aclMayOrder": False}
    assert await admin.data("{ aclWho aclMayOrder }") == {"aclWho": "root", "aclMayOrder": True}
    assert code(await editor.execute("{ aclWho }")) == FORBIDDEN  # the editor was granted no plugin:acl


async def test_bundled_shop_grants_wait_for_approval(database_url: str, tmp_path: Path):
    shutil.copytree(BUNDLED / "shop", tmp_path / "plugins" / "shop")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, GraphQLClient.for_app(app) as anonymous:
        assert code(await anonymous.execute("{ shopProducts { name } }")) == FORBIDDEN
        async with token_client(app, "root", roles=["admin"]) as admin:
            await admin.data('mutation { approvePluginGrants(plugin: "shop") { resource } }')
        assert await anonymous.data("{ shopProducts { name } }") == {"shopProducts": []}
        assert code(await anonymous.execute("{ shopOrders { total } }")) == FORBIDDEN


async def test_written_rows_come_back_only_to_viewers_who_may_read_them(acl):
    admin, editor = acl["admin"], acl["editor"]
    await admin.data('mutation { createRole(name: "clerk", label: "Clerk") { name } }')
    await admin.data('mutation { grantPermission(role: "clerk", resource: "acl_customers", action: "create") { action } }')
    await admin.data(f'mutation {{ setUserRoles(userId: {(await editor.data("{ me { id } }"))["me"]["id"]}, roles: ["clerk"]) {{ id }} }}')
    data = await editor.data('mutation { insertAclCustomers(objects: [{name: "blind"}]) { affectedRows } }')
    assert data["insertAclCustomers"]["affectedRows"] == 1
    before = await editor.count("acl_customers")
    body = await editor.execute('mutation { insertAclCustomers(objects: [{name: "peek"}]) { affectedRows returning { name } } }')
    assert code(body) == FORBIDDEN
    assert await editor.count("acl_customers") == before  # refused before writing
    body = await editor.execute('mutation { insertAclCustomers(objects: [{name: "peek"}]) { affectedRows ...R } } '
                                'fragment R on AclCustomerMutationResponse { returning { name } }')
    assert code(body) == FORBIDDEN and body["errors"][0]["path"][-1] == "returning"  # the field's own check
    before = await editor.count("acl_customers")
    assert code(await editor.execute('mutation { insertAclCustomer(object: {name: "one"}) { name } }')) == FORBIDDEN
    assert await editor.count("acl_customers") == before  # refused before writing
