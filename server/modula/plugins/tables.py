"""Plugin tables: from what init.lua declares to DDL, and the additive-only upgrade plan.

A new plugin version may add tables, nullable or defaulted columns and indexes. Dropping or
retyping a column, dropping a table or tightening nullability is refused with a message that
says what and why: plugin data is user data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modula.db.connection import Session
from modula.db.introspection import TableSpec, type_name
from modula.db.names import COLUMN_NAME, TABLE_NAME, quote_ident
from modula.errors import did_you_mean
from modula.plugins import column_defaults
from modula.plugins.errors import PluginError
from modula.plugins.manifest import READABLE_CORE_TABLES

COLUMN_TYPES: dict[str, sa.types.TypeEngine] = {
    "integer": sa.BigInteger(),
    "real": sa.Float(),
    "numeric": sa.Numeric(),
    "text": sa.Text(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "datetime": sa.DateTime(timezone=True),
    "json": sa.JSON(),
    "blob": sa.LargeBinary(),
}


@dataclass
class Plan:
    """DDL to run, in order; empty when the live tables already match."""

    new_tables: list[sa.Table] = field(default_factory=list)
    new_columns: list[tuple[sa.Table, sa.Column]] = field(default_factory=list)
    new_indexes: list[sa.Index] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.new_tables or self.new_columns or self.new_indexes)

    def describe(self) -> list[str]:
        return (
            [f"create table {t.name}" for t in self.new_tables]
            + [f"add column {t.name}.{c.name}" for t, c in self.new_columns]
            + [f"create index {i.name}" for i in self.new_indexes]
        )


def _integer_pk(table: sa.Table) -> str | None:
    pk = list(table.primary_key.columns)
    return pk[0].name if len(pk) == 1 else None


def declared_tables(plugin: str, declarations: list, live: dict[str, TableSpec]) -> sa.MetaData:
    """SQLAlchemy tables for the declarations; every name and reference checked."""
    metadata = sa.MetaData()
    problems: list[str] = []
    names = {decl.name for decl in declarations}
    location = None  # where init.lua declared the first table with a problem
    for decl in declarations:
        if problems and location is None:
            location = previous.location
        previous = decl
        if not decl.name.startswith(f"{plugin}_") or not TABLE_NAME.match(decl.name):
            problems.append(f"table {decl.name!r} must be named {plugin}_<table> in lowercase letters, digits and '_'")
            continue
        columns: list[sa.Column] = []
        pk_count = 0
        for spec in decl.fields:
            if not COLUMN_NAME.match(spec.name):
                problems.append(f"{decl.name}.{spec.name}: column names use lowercase letters, digits and '_'")
                continue
            if spec.type not in COLUMN_TYPES:
                problems.append(f"{decl.name}.{spec.name}: unknown type {spec.type!r}; use {', '.join(COLUMN_TYPES)}")
                continue
            args: list = []
            if spec.foreign_key:
                target = _foreign_key_target(plugin, decl.name, spec, names, live, declarations, problems)
                if target:
                    args.append(sa.ForeignKey(target, ondelete="CASCADE" if target.startswith(plugin + "_") else None))
            pk_count += bool(spec.primary_key)
            kwargs = {}
            if spec.default is not None:
                kwargs["server_default"] = _default_literal(decl.name, spec, problems)
            columns.append(sa.Column(
                spec.name,
                sa.Integer() if spec.primary_key and spec.type == "integer" else COLUMN_TYPES[spec.type],
                *args,
                primary_key=spec.primary_key,
                nullable=not (spec.not_null or spec.primary_key),
                unique=spec.unique or None,
                **kwargs,
            ))
        if pk_count == 0:
            problems.append(f"table {decl.name} needs a primary key column (e.g. {{name = \"id\", type = \"integer\", primary_key = true}})")
            continue
        known = {c.name for c in columns}
        constraints = []
        for group in decl.unique:
            missing = [c for c in group if c not in known]
            if missing:
                problems.append(f"{decl.name}: unique names unknown column(s) {', '.join(missing)}")
            else:
                constraints.append(sa.UniqueConstraint(*group, name=_constraint_name("uq", decl.name, group)))
        for column in columns:
            for fk in column.foreign_keys:
                core, _, core_column = fk.target_fullname.partition(".")
                if core in READABLE_CORE_TABLES and core not in metadata.tables:
                    # A stand-in so the DDL compiler can resolve REFERENCES; never created.
                    sa.Table(core, metadata, sa.Column(core_column, sa.Integer, primary_key=True))
        table = sa.Table(decl.name, metadata, *columns, *constraints)
        for group in decl.indexes:
            missing = [c for c in group if c not in known]
            if missing:
                problems.append(f"{decl.name}: index names unknown column(s) {', '.join(missing)}")
            else:
                sa.Index(_constraint_name("ix", decl.name, group), *(table.c[c] for c in group))
    if problems:
        raise PluginError(plugin, "; ".join(problems), code="INVALID_TABLE", location=location or previous.location)
    return metadata


def plugin_tables(plugin: str, metadata: sa.MetaData) -> list[sa.Table]:
    """The plugin's own tables in dependency order (core tables referenced by them left out)."""
    return [t for t in metadata.sorted_tables if t.name.startswith(plugin + "_")]


def _foreign_key_target(plugin, table_name, spec, names, live, declarations, problems) -> str | None:
    target_table, _, target_column = spec.foreign_key.partition(".")
    if target_table.startswith(plugin + "_"):
        if target_table not in names and target_table not in live:
            problems.append(f"{table_name}.{spec.name}: foreign key names unknown table {target_table}"
                            f"{did_you_mean(target_table, {*names, *live})}")
            return None
        if not target_column:
            decl = next((d for d in declarations if d.name == target_table), None)
            pks = [f.name for f in decl.fields if f.primary_key] if decl else list(live[target_table].primary_key)
            if len(pks) != 1:
                problems.append(f"{table_name}.{spec.name}: {target_table} has no single-column primary key to reference")
                return None
            target_column = pks[0]
        return f"{target_table}.{target_column}"
    if target_table in READABLE_CORE_TABLES:
        return f"{target_table}.{target_column or 'id'}"  # the core table joins the metadata below
    problems.append(
        f"{table_name}.{spec.name}: a foreign key may reference the plugin's own tables or a core table "
        f"({', '.join(sorted(READABLE_CORE_TABLES))}), not {target_table!r}"
    )
    return None


def _default_literal(table_name: str, spec, problems: list[str]):
    try:
        return column_defaults.server_default(spec.type, spec.default)
    except ValueError as error:
        problems.append(f"{table_name}.{spec.name}: {error}")
        return None


def _constraint_name(prefix: str, table: str, columns: list[str]) -> str:
    name = f"{prefix}_{table}_{'_'.join(columns)}"
    return name[:63]


def plan(plugin: str, metadata: sa.MetaData, live: dict[str, TableSpec], dialect: str | None = None) -> Plan:
    """What to create or add so the live tables match the declarations; refuses destructive change."""
    result = Plan()
    refused: list[str] = []
    declared = {t.name for t in plugin_tables(plugin, metadata)}
    for name in sorted(set(live) - declared):
        refused.append(f"table {name} is no longer declared: dropping a table loses data, so it is kept; declare it again")
    for table in plugin_tables(plugin, metadata):
        current = live.get(table.name)
        if current is None:
            result.new_tables.append(table)
            continue
        for column in table.columns:
            existing = current.column(column.name)
            wanted_type = _type_name(column)
            if existing is None:
                if not column.nullable and column.server_default is None:
                    refused.append(f"new column {table.name}.{column.name} is NOT NULL without a default: existing rows would have no value")
                elif column.primary_key:
                    refused.append(f"{table.name}: the primary key cannot change")
                elif dialect == "sqlite" and isinstance(_default_arg(column), column_defaults.Now):
                    refused.append(f'new column {table.name}.{column.name} with default "now": SQLite cannot add a '
                                   "column with a non-constant default to an existing table; declare it nullable without "
                                   "a default, or in a new table")
                else:
                    result.new_columns.append((table, column))
                continue
            if existing.type != wanted_type:
                refused.append(f"column {table.name}.{column.name} is {existing.type}, declared {wanted_type}: retyping a column is refused")
            if existing.nullable and not column.nullable and not column.primary_key:
                refused.append(f"column {table.name}.{column.name} would become NOT NULL: existing rows may hold NULL")
        for column in current.columns:
            if column.name not in table.columns:
                refused.append(f"column {table.name}.{column.name} is no longer declared: dropping a column loses data")
        for index in table.indexes:
            if index.name not in current.index_names:
                result.new_indexes.append(index)
    if refused:
        raise PluginError(plugin, "refused destructive change: " + "; ".join(refused), code="DESTRUCTIVE_CHANGE")
    return result


def _default_arg(column: sa.Column):
    return getattr(column.server_default, "arg", None)


def _type_name(column: sa.Column) -> str:
    return type_name(column.type)


async def apply(session: Session, plan_: Plan) -> None:
    """Run the plan's DDL on the session (inside the caller's transaction)."""
    for table in plan_.new_tables:
        await session.execute(sa.schema.CreateTable(table))
        for index in table.indexes:
            await session.execute(sa.schema.DDL(_create_index_sql(session.dialect, index)))
    for table, column in plan_.new_columns:
        await session.execute(sa.schema.DDL(_add_column_sql(session.dialect, table, column)))
    for index in plan_.new_indexes:
        await session.execute(sa.schema.DDL(_create_index_sql(session.dialect, index)))


def _create_index_sql(dialect_name: str, index: sa.Index) -> str:
    """CREATE INDEX whose order serves the generated API's ORDER BY (db/crud.py): NULL sorts first
    ascending on both dialects. SQLite's indexes already keep NULL first; PostgreSQL's keep it last
    unless told, so there a nullable column is indexed NULLS FIRST (and a descending order, NULLS
    LAST, is the same index read backwards)."""
    columns = []
    for column in index.columns:
        nulls_first = dialect_name == "postgresql" and column.nullable
        columns.append(quote_ident(column.name) + (" NULLS FIRST" if nulls_first else ""))
    return f"CREATE INDEX {quote_ident(index.name)} ON {quote_ident(index.table.name)} ({', '.join(columns)})"


def _add_column_sql(dialect_name: str, table: sa.Table, column: sa.Column) -> str:
    dialect = sqlite.dialect() if dialect_name == "sqlite" else postgresql.dialect()
    column_sql = str(sa.schema.CreateColumn(column).compile(dialect=dialect))
    return f"ALTER TABLE {quote_ident(table.name)} ADD COLUMN {column_sql}"

