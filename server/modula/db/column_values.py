"""What a plain value (from Lua, JSON or a plugin's SQL parameters) means for each column type,
and the one text form a datetime takes where the database stores text (SQLite).

Datetimes are UTC everywhere. SQLite stores them as ``YYYY-MM-DD HH:MM:SS.ffffff``: fixed width,
so text order is time order; the form SQLAlchemy's DateTime writes for the core and the generated
API; and the one SQLite's own functions write (``datetime('now')`` is its prefix), so plugin SQL
comparing with them orders right. Outside the database (Lua, JSON) a datetime is ISO 8601 with
``Z``, always with six fraction digits, so those strings sort as text too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
SQLITE_TEXT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
# A date-time with an explicit zone, as Modula hands them to Lua: what a plugin's SQL parameter
# must look like to be bound as a datetime.
ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d(:\d\d(\.\d{1,9})?)?([Zz]|[+-]\d\d:?\d\d)")
ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def utc(moment: dt.datetime) -> dt.datetime:
    """The same instant, timezone-aware in UTC (a naive datetime is read as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 date-time (``Z`` or an offset; none means UTC) as an aware UTC datetime."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = dt.datetime.fromisoformat(text.upper())  # a lower-case "t" or "z"
    return utc(moment)


def sqlite_text(moment: dt.datetime) -> str:
    """The stored form of a datetime on SQLite."""
    return utc(moment).strftime(SQLITE_FORMAT)


def iso_z(moment: dt.datetime) -> str:
    """A datetime as Lua and JSON see it: ``2026-12-02T02:56:22.000000Z``."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_plain(column_type: str, value: Any) -> Any:
    """A plain value in the Python type of its column (strings for datetimes, dates and
    numerics; numbers for booleans; Lua strings for blobs). Raises ValueError when it cannot be."""
    if value is None:
        return None
    if column_type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if column_type == "real" and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return float(value)
    if column_type == "numeric" and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return _decimal(value)
    if column_type == "datetime" and isinstance(value, str):
        return parse_datetime(value)
    if column_type == "datetime" and isinstance(value, dt.datetime):
        return utc(value)
    if column_type == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if column_type == "boolean" and isinstance(value, int):
        return bool(value)
    if column_type == "blob" and isinstance(value, str):  # Lua strings that were valid UTF-8
        return value.encode("utf-8")
    return value


def _decimal(value: int | float | str) -> Decimal:
    try:
        number = Decimal(value.strip() if isinstance(value, str) else repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def for_raw_sql(column_type: str, value: Any) -> Any:
    """A plain value as a parameter of a plugin's own SQL for that column (JSON as its text)."""
    if column_type == "json":
        return None if value is None else json.dumps(value)
    return from_plain(column_type, value)


def sql_parameter(value: Any, dialect: str) -> Any:
    """A parameter of plugin SQL as the driver should bind it: on SQLite a datetime (or a string in
    ISO 8601 date-time form with a zone) is bound in the stored form, a Decimal as its text (which
    a NUMERIC column reads as a number); PostgreSQL's statement knows its parameter types
    (`typed_parameter`)."""
    if dialect != "sqlite":
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return sqlite_text(value)
    if isinstance(value, str) and ISO_DATETIME.fullmatch(value):
        try:
            return sqlite_text(parse_datetime(value))
        except ValueError:  # shaped like one but no date-time (month 13): stored as the text it is
            return value
    return value


def may_need_type(value: Any) -> bool:
    """Whether a PostgreSQL parameter may have to be read as its statement's type first."""
    return isinstance(value, str) and ISO_DATE.match(value) is not None


def typed_parameter(value: Any, pg_type: str) -> Any:
    """A PostgreSQL parameter in the Python type its driver wants for `pg_type` (asyncpg takes no
    strings for timestamps and dates); values that do not parse are left for the driver to refuse."""
    if not isinstance(value, str):
        return value
    try:
        if pg_type in ("timestamptz", "timestamp"):
            moment = parse_datetime(value)
            return moment if pg_type == "timestamptz" else moment.replace(tzinfo=None)
        if pg_type == "date":
            return dt.date.fromisoformat(value)
    except ValueError:
        return value
    return value


def for_lua_from_sqlite(value: Any) -> Any:
    """A value SQLite returned to a plugin's own SQL: a datetime in its stored form becomes ISO 8601
    with ``Z``, as PostgreSQL's typed datetimes do on their way to Lua."""
    if isinstance(value, str) and len(value) == 26 and SQLITE_TEXT.fullmatch(value):
        return iso_z(dt.datetime.strptime(value, SQLITE_FORMAT))
    return value
