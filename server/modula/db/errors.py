"""Database failures translated into values the rest of Modula can reason about."""

from __future__ import annotations


class DatabaseError(Exception):
    """A statement failed for a reason the caller may want to report (never SQL text)."""

    code = "DATABASE_ERROR"

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.constraint = constraint


class UniqueViolation(DatabaseError):
    code = "UNIQUE_VIOLATION"


class ForeignKeyViolation(DatabaseError):
    code = "FOREIGN_KEY_VIOLATION"


class NotNullViolation(DatabaseError):
    code = "NOT_NULL_VIOLATION"


class CheckViolation(DatabaseError):
    code = "CHECK_VIOLATION"


class PluginSQLError(DatabaseError):
    """A plugin's own SQL failed; the message is meant for the plugin author and names no host internals."""

    code = "PLUGIN_SQL_ERROR"


class PluginSQLDenied(PluginSQLError):
    """The plugin's SQL touched something its grant does not allow (refused by the database itself)."""

    code = "NOT_AUTHORIZED"


class PluginSQLTimeout(PluginSQLError):
    """The plugin's statement ran longer than its time budget and was stopped."""

    code = "TIMEOUT"


def translate(exc: BaseException) -> DatabaseError | None:
    """Map a driver exception (sqlite3 or asyncpg) onto one of ours, or None if unknown."""
    name = type(exc).__name__
    text = str(exc)
    asyncpg_kinds = {
        "UniqueViolationError": UniqueViolation,
        "ForeignKeyViolationError": ForeignKeyViolation,
        "NotNullViolationError": NotNullViolation,
        "CheckViolationError": CheckViolation,
    }
    if name in asyncpg_kinds:
        return asyncpg_kinds[name](
            _asyncpg_message(name), constraint=getattr(exc, "constraint_name", None)
        )
    if name == "IntegrityError":  # sqlite3
        if text.startswith("UNIQUE constraint failed"):
            return UniqueViolation("a row with the same unique value exists", constraint=_sqlite_columns(text))
        if text.startswith("FOREIGN KEY constraint failed"):
            return ForeignKeyViolation("a referenced row does not exist or is still referenced")
        if text.startswith("NOT NULL constraint failed"):
            return NotNullViolation("a required column is missing", constraint=_sqlite_columns(text))
        if text.startswith("CHECK constraint failed"):
            return CheckViolation("a value breaks a check constraint", constraint=_sqlite_columns(text))
        return DatabaseError("the statement broke a database constraint")
    return None


def _sqlite_columns(text: str) -> str | None:
    _, _, rest = text.partition(":")
    return rest.strip() or None


def _asyncpg_message(name: str) -> str:
    return {
        "UniqueViolationError": "a row with the same unique value exists",
        "ForeignKeyViolationError": "a referenced row does not exist or is still referenced",
        "NotNullViolationError": "a required column is missing",
        "CheckViolationError": "a value breaks a check constraint",
    }[name]
