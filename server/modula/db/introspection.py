"""Reads tables from the live database (SQLAlchemy reflection) into plain table specs.

The database is the source of truth for plugin tables: whatever created them (define_table or
raw DDL), generated APIs and the plugin host see what reflection reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# Reflected SQL types -> the column type names plugins declare.
_TYPE_NAMES: list[tuple[type, str]] = [
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),  # includes BigInteger, SmallInteger
    (sa.Float, "real"),  # before Numeric: Float subclasses it
    (sa.Numeric, "numeric"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.JSON, "json"),
    (sa.LargeBinary, "blob"),
    (sa.String, "text"),  # includes Text
]


def type_name(sql_type: sa.types.TypeEngine) -> str:
    for cls, name in _TYPE_NAMES:
        if isinstance(sql_type, cls):
            return name
    return "text"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool
    has_default: bool
    primary_key: bool
    autoincrement: bool


@dataclass(frozen=True)
class ForeignKeySpec:
    column: str
    target_table: str
    target_column: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKeySpec, ...] = ()
    unique: tuple[tuple[str, ...], ...] = field(default=())
    index_names: frozenset[str] = frozenset()

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


def _async_url(url: str) -> str:
    parsed = make_url(url)
    driver = "sqlite+aiosqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+asyncpg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _spec(table: sa.Table, inspector: sa.Inspector) -> TableSpec:
    pk = tuple(c.name for c in table.primary_key.columns)
    single_integer_pk = len(pk) == 1 and isinstance(table.c[pk[0]].type, sa.Integer)
    columns = tuple(
        ColumnSpec(
            name=c.name,
            type=type_name(c.type),
            nullable=bool(c.nullable) and not c.primary_key,
            has_default=c.server_default is not None or (c.primary_key and single_integer_pk),
            primary_key=c.primary_key,
            autoincrement=c.primary_key and single_integer_pk,
        )
        for c in table.columns
    )
    foreign_keys = tuple(
        sorted(
            (
                ForeignKeySpec(column, fk["referred_table"], target)
                for fk in inspector.get_foreign_keys(table.name)
                for column, target in zip(fk["constrained_columns"], fk["referred_columns"])
            ),
            key=lambda f: f.column,
        )
    )
    indexes = inspector.get_indexes(table.name)
    unique = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)]
    unique += [tuple(i["column_names"]) for i in indexes if i.get("unique")]
    index_names = frozenset(i["name"] for i in indexes if i.get("name"))
    return TableSpec(table.name, columns, pk, foreign_keys, tuple(sorted(set(unique))), index_names)


async def reflect_tables(url: str, names: list[str] | None = None, *,
                         prefix: str | tuple[str, ...] | None = None) -> dict[str, TableSpec]:
    """Specs of the named tables (or of every table whose name starts with `prefix`, or with one of them)."""
    engine = create_async_engine(_async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            def reflect(sync_connection) -> dict[str, TableSpec]:
                inspector = sa.inspect(sync_connection)
                existing = inspector.get_table_names()
                wanted = [n for n in existing if (names is None or n in names) and (prefix is None or n.startswith(prefix))]
                metadata = sa.MetaData()
                # One table at a time: MetaData.reflect(only=...) costs in proportion to every table
                # in the database on SQLite, so installs slowed down as plugins accumulated.
                reflected = [sa.Table(name, metadata, autoload_with=sync_connection, resolve_fks=False) for name in wanted]
                return {table.name: _spec(table, inspector) for table in reflected}

            return await connection.run_sync(reflect)
    finally:
        await engine.dispose()
