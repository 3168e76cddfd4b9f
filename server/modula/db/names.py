"""The naming rules for plugins, their tables and columns, and SQL identifier quoting: one place,
so the manifest, the Lua declarations, the DDL and the database grants agree."""

from __future__ import annotations

import re

PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted the same way on SQLite and PostgreSQL."""
    return '"' + name.replace('"', '""') + '"'
