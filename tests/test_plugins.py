"""Plugins end to end on a real database: install, Lua handlers with confined SQL, id passing,
rollback, failures that stay contained, HTTP only to allowed hosts."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
import respx

from modula.plugins.errors import PluginError
from modula.testing import deliver_outbox

BUNDLED = Path(__file__).resolve().parents[1] / "plugins"


def operation(plugin, name):
    return next(op.handler for op in plugin.declarations.operations if op.name == name)


def write_plugin(folder: Path, name: str, lua: str, permissions: dict | None = None) -> Path:
    import json

    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    (target / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0", "api": 1,
                                                    "permissions": permissions or {}}))
    (target / "init.lua").write_text(lua)
    return target


async def rows(app, sql_table: str) -> int:
    from modula_testing import GraphQLClient

    async with GraphQLClient.for_app(app) as client:
        return await client.count(sql_table)


@pytest.fixture
async def shop(app):
    host = app.state.plugins
    plugin = await host.install(BUNDLED / "shop")
    async with app.state.database.session() as session:
        async with session.transaction():
            from sqlalchemy import text
            await session.execute(text("INSERT INTO shop_categories (name) VALUES ('pens')"))
            await session.execute(text(
                "INSERT INTO shop_products (name, price, stock_count, category_id) VALUES ('pen', 2.5, 10, 1), ('ink', 4.0, 1, 1)"))
    return plugin


async def test_place_order_inserts_order_and_items_with_the_generated_id(app, shop):
    host = app.state.plugins
    order = await host.call("shop", operation(shop, "placeOrder"),
                            {"input": {"customer": "Ada", "items": [{"productId": 1, "quantity": 2}, {"productId": 2, "quantity": 1}]}}, {})
    assert order["customer"] == "Ada" and order["total"] == 9.0
    items = await host.call("shop", operation(shop, "featuredProducts"), {"limit": 5}, {})
    assert [p["name"] for p in items] == ["pen"]  # ink is sold out now
    assert await rows(app, "shop_order_items") == 2


async def test_a_bad_item_rolls_back_the_whole_order(app, shop):
    host = app.state.plugins
    with pytest.raises(PluginError) as failed:
        await host.call("shop", operation(shop, "placeOrder"),
                        {"input": {"customer": "Ada", "items": [{"productId": 1, "quantity": 2}, {"productId": 99, "quantity": 1}]}}, {})
    assert "items[1]: product 99 does not exist" in failed.value.message
    assert failed.value.plugin == "shop"
    assert (await rows(app, "shop_orders"), await rows(app, "shop_order_items")) == (0, 0)
    featured = await host.call("shop", operation(shop, "featuredProducts"), {"limit": 5}, {})
    assert [p["stock_count"] for p in featured] == [10, 1]  # stock untouched


HOSTILE_SQL = [
    ("SELECT * FROM users", "users"),
    ("SELECT token_hash FROM sessions", "sessions"),
    ("SELECT * FROM tokens", "tokens"),
    ("UPDATE routes SET title = 'x'", "routes"),
    ("SELECT * FROM other_things", "other_things"),
    ("CREATE TABLE shop_evil (id integer)", None),
    ("DROP TABLE shop_products", None),
]


@pytest.mark.parametrize("sql, table", HOSTILE_SQL, ids=[s for s, _ in HOSTILE_SQL])
async def test_plugin_sql_cannot_leave_its_tables(app, tmp_path, sql, table):
    host = app.state.plugins
    async with app.state.database.session() as session:
        async with session.transaction():
            from sqlalchemy import text
            await session.execute(text("CREATE TABLE other_things (id integer primary key)"))
    folder = write_plugin(tmp_path / "src", "evil", f"""
plugin.define_table({{name = "evil_notes", fields = {{{{name = "id", type = "integer", primary_key = true}}}}}})
plugin.query{{name = "run", returns = "Int", handler = function(args, ctx) return query({sql!r}) end}}
""", {"read": ["routes"]})
    plugin = await host.install(folder)
    started = time.monotonic()
    with pytest.raises(PluginError):
        await host.call("evil", operation(plugin, "run"), {}, {})
    assert time.monotonic() - started < 6
    assert await rows(app, "routes") == 0
    # The plugin still works for what it may do.
    plugin2 = await host.install(write_plugin(tmp_path / "src", "evil", """
plugin.define_table({name = "evil_notes", fields = {{name = "id", type = "integer", primary_key = true}}})
plugin.query{name = "run", returns = "Int", handler = function(args, ctx) insert("evil_notes", {}); return #query("SELECT * FROM evil_notes") end}
"""))
    assert await host.call("evil", operation(plugin2, "run"), {}, {}) == 1


async def test_a_broken_plugin_is_reported_and_the_others_load(database_url, tmp_path):
    from modula_testing import running_app

    plugins_dir = tmp_path / "plugins"
    shutil.copytree(BUNDLED / "shop", plugins_dir / "shop")
    write_plugin(plugins_dir, "broken", "plugin.define_table({name = 'broken_x', fields = {}})\nlocal x = nil + 1\n")
    async with running_app(database_url, plugins_dir=plugins_dir) as app:
        host = app.state.plugins
        assert "shop" in host.loaded
        assert "broken" not in host.loaded
        assert "init.lua:" in host.failures["broken"]
        async with app.state.database.session() as session:
            from modula.plugins import registry
            assert [r["name"] for r in await registry.list_plugins(session)] == ["shop"]


@respx.mock
async def test_webhooks_post_only_to_allowed_hosts(app):
    host = app.state.plugins
    plugin = await host.install(BUNDLED / "webhooks")
    route = respx.post("https://hooks.example.com/in").mock(return_value=httpx.Response(202))
    async with app.state.database.session() as session:
        async with session.transaction():
            from sqlalchemy import text
            await session.execute(text(
                "INSERT INTO webhooks_subscriptions (event, url) VALUES ('order', 'https://hooks.example.com/in'), "
                "('order', 'https://evil.example.org/steal')"))
    queued = await host.call("webhooks", operation(plugin, "deliverWebhook"), {"event": "order", "payload": {"id": 1}}, {})
    assert queued == 1 and route.call_count == 0
    assert (await deliver_outbox(app))["delivered"] == 1
    assert route.call_count == 1
    import json
    assert json.loads(route.calls[0].request.content) == {"event": "order", "data": {"id": 1}}
    assert await rows(app, "webhooks_deliveries") == 2  # the refused one is recorded with its error


@pytest.mark.parametrize("url, allowed, expected", [
    ("https://api.example.com/x", ["api.example.com"], True),
    ("https://API.example.com/x", ["api.example.com"], True),
    ("https://a.b.example.com/x", ["*.example.com"], True),
    ("https://example.com/x", ["*.example.com"], False),
    ("https://api.example.com.evil.org/x", ["api.example.com"], False),
    ("https://api.example.com:8443/x", ["api.example.com:8443"], True),
    ("https://api.example.com/x", ["api.example.com:8443"], False),
    ("http://api.example.com:80/x", ["api.example.com:80"], True),
])
def test_manifest_hosts_match_the_same_way_in_runtime_and_host(url, allowed, expected):
    from modula.lua.host_requests import host_allowed

    assert host_allowed(url, allowed) is expected


async def test_a_plugin_whose_tables_would_overlap_another_plugins_is_refused(app, tmp_path):
    host = app.state.plugins
    await host.install(write_plugin(tmp_path / "src", "shop", "plugin.define_table({name = 'shop_items', fields = {{name = 'id', type = 'integer', primary_key = true}}})"))
    nested = write_plugin(tmp_path / "src", "shop_extra", "plugin.define_table({name = 'shop_extra_notes', fields = {{name = 'id', type = 'integer', primary_key = true}}})")
    with pytest.raises(PluginError, match="would overlap those of the installed plugin shop"):
        await host.install(nested)
    assert "shop_extra" not in host.loaded
    assert await rows(app, "plugins") == 1
