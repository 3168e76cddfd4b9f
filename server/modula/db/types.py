"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from modula.db import column_values


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python, whatever the dialect stores."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = column_values.utc(value)
        if dialect.name == "sqlite":  # SQLAlchemy then writes column_values.SQLITE_FORMAT
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            return column_values.parse_datetime(value)
        return column_values.utc(value)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
