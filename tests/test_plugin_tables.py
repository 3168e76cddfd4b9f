"""Plugin tables: created from declarations, upgraded additively, destructive changes refused."""

from __future__ import annotations

import pytest

from modula.db.introspection import reflect_tables
from modula.lua.declarations import FieldDecl, TableDecl
from modula.plugins import tables
from modula.plugins.errors import PluginError


def shop_v1() -> list[TableDecl]:
    return [
        TableDecl("shop_categories", [FieldDecl("category_id", "integer", primary_key=True), FieldDecl("name", "text", not_null=True)],
                  unique=[["name"]]),
        TableDecl("shop_products", [
            FieldDecl("product_id", "integer", primary_key=True),
            FieldDecl("name", "text", not_null=True),
            FieldDecl("price", "real"),
            FieldDecl("category_id", "integer", foreign_key="shop_categories"),
            FieldDecl("route_id", "integer", foreign_key="routes"),
        ], indexes=[["price"]]),
    ]


async def install(app, decls):
    database = app.state.database
    live = await reflect_tables(database.url, prefix="shop_")
    metadata = tables.declared_tables("shop", decls, live)
    plan = tables.plan("shop", metadata, live)
    async with database.session() as session:
        async with session.transaction():
            await tables.apply(session, plan)
    return plan, await reflect_tables(database.url, prefix="shop_")


async def test_declared_tables_are_created_with_keys_and_indexes(app):
    plan, live = await install(app, shop_v1())
    assert plan.describe()[:2] == ["create table shop_categories", "create table shop_products"]
    products = live["shop_products"]
    assert products.primary_key == ("product_id",)
    assert {(f.column, f.target_table, f.target_column) for f in products.foreign_keys} == {
        ("category_id", "shop_categories", "category_id"), ("route_id", "routes", "id")}
    assert "ix_shop_products_price" in products.index_names
    assert live["shop_categories"].unique == (("name",),)
    assert products.column("name").nullable is False and products.column("price").type == "real"


async def test_same_declarations_again_plan_nothing(app):
    await install(app, shop_v1())
    plan, _ = await install(app, shop_v1())
    assert plan.empty


async def test_new_version_may_add_tables_and_nullable_or_defaulted_columns(app):
    await install(app, shop_v1())
    v2 = shop_v1()
    v2[1].fields += [FieldDecl("stock_count", "integer", not_null=True, default=0), FieldDecl("note", "text")]
    v2.append(TableDecl("shop_orders", [FieldDecl("order_id", "integer", primary_key=True), FieldDecl("customer", "text")]))
    plan, live = await install(app, v2)
    assert sorted(plan.describe()) == ["add column shop_products.note", "add column shop_products.stock_count", "create table shop_orders"]
    assert live["shop_products"].column("stock_count").has_default


@pytest.mark.parametrize("change, message", [
    (lambda d: d[1].fields.pop(4), "column shop_products.route_id is no longer declared"),
    (lambda d: setattr(d[1].fields[2], "type", "text"), "column shop_products.price is real, declared text"),
    (lambda d: d.pop(1), "table shop_products is no longer declared"),
    (lambda d: d[1].fields.append(FieldDecl("sku", "text", not_null=True)), "NOT NULL without a default"),
    (lambda d: setattr(d[1].fields[2], "not_null", True), "would become NOT NULL"),
], ids=["drop column", "retype column", "drop table", "not null without default", "tighten null"])
async def test_destructive_changes_are_refused_and_nothing_changes(app, change, message):
    await install(app, shop_v1())
    before = await reflect_tables(app.state.database.url, prefix="shop_")
    v2 = shop_v1()
    change(v2)
    v2.append(TableDecl("shop_extra", [FieldDecl("id", "integer", primary_key=True)]))  # would be additive
    with pytest.raises(PluginError) as refused:
        await install(app, v2)
    assert refused.value.code == "DESTRUCTIVE_CHANGE"
    assert message in refused.value.message
    assert await reflect_tables(app.state.database.url, prefix="shop_") == before


@pytest.mark.parametrize("decl, message", [
    (TableDecl("products", [FieldDecl("id", "integer", primary_key=True)]), "must be named shop_<table>"),
    (TableDecl("blog_posts", [FieldDecl("id", "integer", primary_key=True)]), "must be named shop_<table>"),
    (TableDecl("shop_x", [FieldDecl("name", "text")]), "needs a primary key"),
    (TableDecl("shop_x", [FieldDecl("id", "integer", primary_key=True), FieldDecl("u", "integer", foreign_key="users")]), "not 'users'"),
    (TableDecl("shop_x", [FieldDecl("id", "integer", primary_key=True), FieldDecl("o", "integer", foreign_key="blog_posts")]), "not 'blog_posts'"),
    (TableDecl("shop_x", [FieldDecl("id", "integer", primary_key=True), FieldDecl("c", "colour")]), "unknown type 'colour'"),
], ids=["no prefix", "other plugin prefix", "no primary key", "fk to users", "fk to other plugin", "bad type"])
def test_bad_declarations_are_refused_with_a_clear_message(decl, message):
    with pytest.raises(PluginError) as refused:
        tables.declared_tables("shop", [decl], {})
    assert message in refused.value.message
    assert refused.value.message.startswith("plugin shop: ")
