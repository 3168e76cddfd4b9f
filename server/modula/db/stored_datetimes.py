"""The one-time rewrite of plugin tables' datetimes on SQLite into the stored form of
`column_values` (migration 0014): rows written before every writer agreed on it."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from modula.db import column_values
from modula.db.names import quote_ident

log = logging.getLogger("modula.migrations")

_DATETIME_DECLARATIONS = ("DATETIME", "TIMESTAMP")
# What the stored form looks like, for SQLite's GLOB: rows already in it are left alone.
_STORED_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]"


async def plugin_datetime_columns(session) -> list[tuple[str, str]]:
    """(table, column) of every datetime column of an installed plugin's tables, as SQLite's
    catalogue declares them."""
    plugins = [row["name"] for row in await session.fetch_all(sa.text("SELECT name FROM plugins"))]
    found = []
    for row in await session.fetch_all(sa.text(
            "SELECT m.name AS tbl, c.name AS col, upper(c.type) AS type FROM sqlite_master AS m "
            "JOIN pragma_table_info(m.name) AS c WHERE m.type = 'table' ORDER BY m.name, c.cid")):
        if row["type"] in _DATETIME_DECLARATIONS and any(row["tbl"].startswith(p + "_") for p in plugins):
            found.append((row["tbl"], row["col"]))
    return found


async def rewrite(session) -> None:
    """Rewrite each plugin datetime that is not in the stored form; text that is no datetime at
    all is left as it is and logged."""
    if session.dialect != "sqlite":
        return
    for table, column in await plugin_datetime_columns(session):
        name, col = quote_ident(table), quote_ident(column)
        rows = await session.fetch_all(sa.text(
            f"SELECT rowid AS id, {col} AS value FROM {name} "
            f"WHERE typeof({col}) = 'text' AND {col} NOT GLOB :stored"), {"stored": _STORED_GLOB})
        for row in rows:
            try:
                stored = column_values.sqlite_text(column_values.parse_datetime(row["value"]))
            except ValueError:
                log.warning("%s.%s row %s: %r is not a datetime; left as it is", table, column, row["id"], row["value"])
                continue
            await session.execute(sa.text(f"UPDATE {name} SET {col} = :stored WHERE rowid = :id")
                                  .bindparams(stored=stored, id=row["id"]))
