"""The generated API's ORDER BY is one the table's plain indexes serve, on both dialects: NOT NULL
columns get no NULLS clause, nullable ones keep NULL first and are indexed that way."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modula.db.crud import crud_for
from modula.db.introspection import reflect_tables
from modula.lua.declarations import FieldDecl, TableDecl
from modula.plugins import tables

ROWS = 3000


async def _install(app):
    database = app.state.database
    decls = [TableDecl("idx_items", [
        FieldDecl("item_id", "integer", primary_key=True),
        FieldDecl("price", "real", not_null=True),
        FieldDecl("rank", "integer"),
    ], indexes=[["price"], ["rank"]])]
    live = await reflect_tables(database.url, prefix="idx_")
    metadata = tables.declared_tables("idx", decls, live)
    async with database.session() as session:
        async with session.transaction():
            await tables.apply(session, tables.plan("idx", metadata, live))
    spec = (await reflect_tables(database.url, prefix="idx_"))["idx_items"]
    crud = crud_for(spec)
    async with database.session() as session:
        await session.insert_rows(crud.table, [
            {"price": (i * 7919) % 1000 / 10, "rank": None if i % 10 == 0 else i % 97} for i in range(ROWS)])
        await session.execute(sa.text("ANALYZE"))
    return crud


def _ordered_sql(crud, dialect: str, column: str, direction: str) -> str:
    statement = crud._select(crud.table).order_by(*crud._ordering([(column, direction)])).limit(20)
    compiled = statement.compile(dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect(),
                                 compile_kwargs={"literal_binds": True})
    return str(compiled)


async def _plan(app, sql: str) -> str:
    explain = "EXPLAIN QUERY PLAN " if app.state.database.is_sqlite else "EXPLAIN "
    async with app.state.database.session() as session:
        rows = await session.fetch_all(sa.text(explain + sql))
    return "\n".join(str(list(row.values())[-1]) for row in rows)


async def test_not_null_columns_are_ordered_without_a_nulls_clause(app, dialect):
    crud = await _install(app)
    sql = _ordered_sql(crud, dialect, "price", "asc")
    assert "NULLS" not in sql.upper()
    assert "NULLS" not in _ordered_sql(crud, dialect, "price", "desc").upper()


@pytest.mark.parametrize("column", ["price", "rank"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_an_ordered_page_is_read_from_the_index_without_sorting_the_table(app, dialect, column, direction):
    crud = await _install(app)
    plan = await _plan(app, _ordered_sql(crud, dialect, column, direction))
    index = f"ix_idx_items_{column}"
    assert index in plan, plan
    # The primary key tie-break may sort rows of one value among themselves (SQLite: a temp b-tree
    # for the right part of the ORDER BY; PostgreSQL: an incremental sort), never the whole table.
    if dialect == "sqlite":
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    else:
        assert not re.search(r"^\s*(->\s+)?Sort\s+\(cost", plan, re.MULTILINE), plan


async def test_null_sorts_first_ascending_and_last_descending_on_both_dialects(app):
    crud = await _install(app)
    async with app.state.database.session() as session:
        ascending = await crud.find(session, order_by=[("rank", "asc")], limit=3)
        descending = await crud.find(session, order_by=[("rank", "desc")], limit=ROWS)
    assert [row["rank"] for row in ascending] == [None, None, None]
    assert descending[0]["rank"] == 96 and descending[-1]["rank"] is None
