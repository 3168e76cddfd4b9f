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


class CheckAgain(DatabaseError):
    """A statement that checks what the process assumed (SQLSTATE MDL01, raised by Modula's own
    functions) found it no longer so, and wrote nothing: run the checked way instead."""

    code = "CHECK_AGAIN"


class PluginSQLError(DatabaseError):
    """A plugin's own SQL failed; the message is meant for the plugin author and names no host internals."""

    code = "PLUGIN_SQL_ERROR"


class PluginSQLDenied(PluginSQLError):
    """The plugin's SQL touched something its grant does not allow (refused by the database itself)."""

    code = "NOT_AUTHORIZED"


class PluginSQLTimeout(PluginSQLError):
    """The plugin's statement ran longer than its time budget and was stopped."""

    code = "TIMEOUT"


# Each violation once: its default message, asyncpg's exception name, sqlite3's message prefix.
_VIOLATIONS: list[tuple[type[DatabaseError], str, str, str]] = [
    (UniqueViolation, "a row with the same unique value exists", "UniqueViolationError", "UNIQUE constraint failed"),
    (ForeignKeyViolation, "a referenced row does not exist or is still referenced", "ForeignKeyViolationError",
     "FOREIGN KEY constraint failed"),
    (NotNullViolation, "a required column is missing", "NotNullViolationError", "NOT NULL constraint failed"),
    (CheckViolation, "a value breaks a check constraint", "CheckViolationError", "CHECK constraint failed"),
]


def translate(exc: BaseException) -> DatabaseError | None:
    """Map a driver exception (sqlite3 or asyncpg) onto one of ours, or None if unknown."""
    name = type(exc).__name__
    text = str(exc)
    if getattr(exc, "sqlstate", None) == "MDL01":
        return CheckAgain("what the statement was to check has changed")
    for kind, message, asyncpg_name, sqlite_prefix in _VIOLATIONS:
        if name == asyncpg_name:
            return kind(message, constraint=getattr(exc, "constraint_name", None))
        if name == "IntegrityError" and text.startswith(sqlite_prefix):
            return kind(message, constraint=_sqlite_columns(text))
    if name == "IntegrityError":  # sqlite3, a constraint kind not listed above
        return DatabaseError("the statement broke a database constraint")
    return None


def _sqlite_columns(text: str) -> str | None:
    _, _, rest = text.partition(":")
    return rest.strip() or None
