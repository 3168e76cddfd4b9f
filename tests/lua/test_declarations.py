"""init.lua declarations are collected into plain dataclasses and validated with clear messages."""
import pytest

from modula.lua import (FieldDecl, HandlerRef, LuaPluginError, PluginRuntime, TableDecl)

SHOP = """
plugin.define_table({ name = "shop_products", fields = {
    {name = "product_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "price", type = "real", default = 0},
    {name = "category_id", type = "integer", foreign_key = "shop_categories"},
}, indexes = {{"price"}}, unique = {{"name"}} })
plugin.query{name = "cheapProducts", args = {limit = "Int"}, returns = "[ShopProduct!]!",
             description = "Products under 10", handler = function(args, ctx) return {} end}
plugin.mutation{name = "restock", args = {id = "Int!"}, returns = "Boolean",
                handler = function(args, ctx) return true end}
plugin.field{type = "ShopProduct", name = "priceWithTax", returns = "Float",
             handler = function(row, args, ctx) return row.price * (1 + args.rate) end,
             args = {rate = "Float!"}}
plugin.type{name = "Stock", fields = {count = "Int!", where = "String"}}
plugin.input{name = "StockInput", fields = {count = "Int!"}}
plugin.on("before_insert", "shop_products", function(row, ctx) row.name = row.name:upper() return row end)
"""


async def test_declarations_are_collected_as_plain_data(host):
    runtime = PluginRuntime("shop")
    decls = runtime.load(SHOP)
    assert decls.tables == [TableDecl("shop_products", [
        FieldDecl("product_id", "integer", primary_key=True),
        FieldDecl("name", "text", not_null=True),
        FieldDecl("price", "real", default=0),
        FieldDecl("category_id", "integer", foreign_key="shop_categories"),
    ], indexes=[["price"]], unique=[["name"]], location="init.lua:2")]
    query, mutation = decls.operations
    assert (query.kind, query.name, query.args, query.returns, query.description) == (
        "query", "cheapProducts", {"limit": "Int"}, "[ShopProduct!]!", "Products under 10")
    assert (mutation.kind, mutation.name) == ("mutation", "restock")
    assert isinstance(query.handler, HandlerRef) and query.handler.kind == "operation"
    (field,) = decls.fields
    assert (field.type, field.name, field.args, field.returns) == (
        "ShopProduct", "priceWithTax", {"rate": "Float!"}, "Float")
    assert decls.types[0].fields == {"count": "Int!", "where": "String"}
    assert decls.inputs[0].name == "StockInput"
    (hook,) = decls.hooks
    assert (hook.event, hook.table, hook.handler.kind) == ("before_insert", "shop_products", "hook")
    # where each was declared, for problems found after init.lua ran (unknown types, hook tables)
    assert [d.location for d in (query, mutation, field, decls.types[0], decls.inputs[0], hook)] == [
        "init.lua:8", "init.lua:10", "init.lua:12", "init.lua:15", "init.lua:16", "init.lua:17"]

    assert await runtime.call(field.handler, ({"price": 10}, {"rate": 0.5}), {}, host) == 15.0
    assert await runtime.call(hook.handler, {"name": "mug"}, {}, host) == {"name": "MUG"}
    assert await runtime.call(mutation.handler, {"id": 1}, {}, host) is True


@pytest.mark.parametrize("source, message, line", [
    ("plugin.define_table{name = 'products', fields = {{name = 'id', type = 'integer', primary_key = true}}}",
     "must start with 'shop_'", 1),
    ("plugin.define_table{name = 'shop_Products', fields = {{name = 'id', type = 'integer', primary_key = true}}}",
     "must start with 'shop_'", 1),
    ("\nplugin.define_table{name = 'shop_x', fields = {{name = 'Id', type = 'integer', primary_key = true}}}",
     "column name 'Id'", 2),
    ("plugin.define_table{name = 'shop_x', fields = {{name = 'id', type = 'uuid', primary_key = true}}}",
     "type 'uuid' must be one of integer, real", 1),
    ("plugin.define_table{name = 'shop_x', fields = {{name = 'id', type = 'integer'}}}",
     "needs a primary key", 1),
    ("plugin.define_table{name = 'shop_x', fields = {{name = 'id', type = 'integer', primarykey = true}}}",
     "unknown key(s) primarykey", 1),
    ("plugin.define_table{name = 'shop_x', fields = {{name = 'id', type = 'integer', primary_key = true},"
     " {name = 'id', type = 'text'}}}", "column 'id' is declared twice", 1),
    ("plugin.define_table{name = 'shop_x', fields = {{name = 'id', type = 'integer', primary_key = true}},"
     " indexes = {{'nope'}}}", "unknown column 'nope'", 1),
    ("local t = {name = 'shop_x', fields = {{name = 'id', type = 'integer', primary_key = true}}}\n"
     "plugin.define_table(t)\nplugin.define_table(t)", "table 'shop_x' is declared twice", 3),
    ("plugin.query{name = 'a', returns = 'Int', handler = 1}", "handler must be a function", 1),
    ("plugin.query{name = 'a b', returns = 'Int', handler = print}", "not a valid GraphQL name", 1),
    ("plugin.query{name = 'a', returns = '[Int', handler = print}", "not a GraphQL type", 1),
    ("plugin.query{name = 'a', returns = 'Int', handler = print}\n"
     "plugin.query{name = 'a', returns = 'Int', handler = print}", "query 'a' is declared twice", 2),
    ("plugin.type{name = 'T', fields = {a = 'Int'}}\nplugin.input{name = 'T', fields = {a = 'Int'}}",
     "input 'T' is declared twice", 2),
    ("plugin.on('before_upsert', 'shop_x', print)", "unknown event 'before_upsert'", 1),
    ("plugin.type('T')", "expects a table", 1),
    ("local x = nil\nx.y = 1", "attempt to index a nil value", 2),
    ("this is not lua", "syntax error", 1),
])
def test_invalid_declarations_name_plugin_file_and_line(source, message, line):
    with pytest.raises(LuaPluginError) as error:
        PluginRuntime("shop").load(source)
    assert message in error.value.message
    assert error.value.plugin == "shop" and error.value.location == f"init.lua:{line}"
    assert error.value.code == "LUA_ERROR"


async def test_declarations_are_refused_after_load(make_plugin, host):
    plugin = make_plugin("plugin.query{name = 'late', returns = 'Int', handler = print}")
    with pytest.raises(LuaPluginError, match="only be called while init.lua loads"):
        await plugin.call(host)


def test_init_lua_has_its_own_budget():
    from modula.lua import Limits
    runtime = PluginRuntime("shop", limits=Limits(instructions=1_000_000))
    with pytest.raises(LuaPluginError) as error:
        runtime.load("while true do end")
    assert error.value.code == "BUDGET_EXCEEDED"
