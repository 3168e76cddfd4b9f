"""What a plugin column's declared `default` means: checked against the column's type, and
rendered as the server default of that column on each dialect (`"now"` for date and datetime).

A datetime "now" is stored as the generated API stores datetimes: on SQLite the text
`YYYY-MM-DD HH:MM:SS.ffffff` in UTC, on PostgreSQL a `timestamptz`; a date "now" is the UTC date.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

NOW = "now"


class Now(sa.sql.expression.ColumnElement):
    """The current date or time as a column's server default, in the column's stored form."""

    inherit_cache = True

    def __init__(self, column_type: str) -> None:
        self.column_type = column_type  # "date" or "datetime"


@compiles(Now)
def _now_standard(element: Now, compiler: Any, **kw: Any) -> str:
    return "CURRENT_DATE" if element.column_type == "date" else "CURRENT_TIMESTAMP"


@compiles(Now, "sqlite")
def _now_sqlite(element: Now, compiler: Any, **kw: Any) -> str:
    # SQLite's CURRENT_TIMESTAMP has no fraction and would sort before the generated API's
    # `.ffffff` rows of the same second; %f gives milliseconds, padded to microseconds.
    if element.column_type == "date":
        return "(date('now'))"
    return "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


def server_default(column_type: str, value: Any) -> sa.sql.ClauseElement:
    """The server default for `value` on a column of `column_type`; ValueError saying why when
    the value does not fit the type (the caller names the column)."""
    if isinstance(value, str) and value.lower() == NOW:
        if column_type not in ("date", "datetime"):
            raise ValueError(f'default "now" is only for date and datetime columns, not {column_type}')
        return Now(column_type)
    if column_type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"default {value!r} is not an integer")
        return sa.text(repr(value))
    if column_type in ("real", "numeric"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"default {value!r} is not a finite number")
        return sa.text(repr(value))
    if column_type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"default {value!r} is not a boolean (true or false)")
        return sa.true() if value else sa.false()
    if not isinstance(value, str):
        raise ValueError(f"default {value!r} is not a string, as a {column_type} column needs")
    if column_type == "date":
        try:
            return sa.literal(dt.date.fromisoformat(value).isoformat())
        except ValueError:
            raise ValueError(f'default {value!r} is not a date (YYYY-MM-DD) or "now"') from None
    if column_type == "datetime":
        raise ValueError(f'default {value!r} for a datetime column: only "now" is supported')
    if column_type == "json":
        try:
            json.loads(value)
        except ValueError:
            raise ValueError(f"default {value!r} is not JSON text") from None
    return sa.literal(value)  # text, json, blob: rendered with proper quoting by the DDL compiler
