"""What went wrong in a `modula` command, as one line plus the fix: database connections, plugins,
and a fallback for the unexpected (whose traceback `--debug` shows)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from modula.errors import CommandError, ModulaError
from modula.plugins.errors import PluginError

URL_FORMS = "sqlite:///path/to/modula.db or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
WHERE_THE_URL_IS = "--database-url or the DATABASE_URL environment variable"


def shown_url(url: str) -> str:
    """The URL with its password masked, fit to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown as given
        return url


def bad_url(url: str, reason: str) -> CommandError:
    return CommandError(f"{reason}: {shown_url(url)!r}",
                        f"give {URL_FORMS} in {WHERE_THE_URL_IS}", code="BAD_DATABASE_URL")


def database_problem(exc: BaseException, url: str) -> CommandError | None:
    """A connection failure (server down, unknown host or database, refused login, unopenable
    SQLite file) as a CommandError, or None when `exc` is something else."""
    import asyncpg

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if isinstance(exc, sqlite3.DatabaseError):
            path = Path(parsed.database or "")
            if "unable to open" in str(exc):
                return CommandError(
                    f"cannot open the SQLite database {path}: {exc}",
                    f"create the folder {path.parent} or give a writable path in {WHERE_THE_URL_IS}",
                    code="DATABASE_UNREACHABLE")
            if "not a database" in str(exc):
                return CommandError(f"{path} is not an SQLite database: {exc}",
                                    f"give the path of a Modula database (or of a new file) in {WHERE_THE_URL_IS}",
                                    code="DATABASE_UNREACHABLE")
        return None
    server = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if isinstance(exc, socket.gaierror):
        return CommandError(f"cannot reach PostgreSQL: host {parsed.host!r} is unknown ({exc.strerror})",
                            f"correct the host in the database URL ({WHERE_THE_URL_IS})", code="DATABASE_UNREACHABLE")
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) and not isinstance(exc, FileNotFoundError):
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc) or "timed out")
        return CommandError(f"cannot reach PostgreSQL at {server}: {reason}",
                            f"start PostgreSQL there, or correct the host and port in the database URL ({WHERE_THE_URL_IS})",
                            code="DATABASE_UNREACHABLE")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return CommandError(f"PostgreSQL at {server} has no database {parsed.database!r}",
                            f"create it (`createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432} "
                            f"{parsed.database}`) or correct the database name in the URL", code="DATABASE_UNREACHABLE")
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):  # includes a wrong password
        return CommandError(f"PostgreSQL at {server} refused the login of {parsed.username!r}: {exc}",
                            f"correct the user name and password in the database URL (postgresql://USER:PASSWORD@{server}/...)",
                            code="DATABASE_LOGIN_REFUSED")
    if isinstance(exc, (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)):
        return CommandError(f"PostgreSQL at {server} cannot take a connection now: {exc}",
                            "wait until the server has started (or has free connections) and run the command again",
                            code="DATABASE_UNREACHABLE")
    return None


def plugin_problem(exc: PluginError, folder: Path | None = None) -> CommandError:
    """A plugin that would not load or install, with where to look."""
    where = f"{folder / exc.location}: " if folder is not None and exc.location and not Path(exc.location).is_absolute() else ""
    message = exc.message.replace(f" ({exc.location})", "", 1) if where else exc.message
    if exc.location and exc.location.endswith("plugin.json") and "is missing" in exc.message:
        fix = "give the folder that holds plugin.json and init.lua, or create a plugin with `modula plugins new NAME`"
    elif exc.location and exc.location.endswith("plugin.json"):
        fix = "correct plugin.json; `modula plugins check FOLDER` checks a plugin without installing it"
    elif exc.location:
        fix = "correct init.lua at that line; `modula plugins check FOLDER` checks a plugin without installing it"
    elif exc.code == "NOT_FOUND":
        fix = "`modula plugins list` shows the installed plugins and plugin folders"
    elif exc.code == "DESTRUCTIVE_CHANGE":
        fix = "declare the old tables and columns again in init.lua: a new version may only add"
    else:
        fix = "correct the plugin; `modula plugins check FOLDER` shows what it would add, --debug the traceback"
    return CommandError(f"{where}{message}", fix, code=exc.code)


def explain(exc: BaseException) -> CommandError:
    """Any exception that reached `main` as what to print; unexpected ones say how to learn more."""
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, PluginError):
        return plugin_problem(exc)
    if isinstance(exc, ModulaError):
        return CommandError(exc.message, "correct the value named above and run the command again", code=exc.code)
    text = str(exc) or type(exc).__name__
    return CommandError(text, "this was not expected: run the command again with --debug to see the traceback",
                        code="INTERNAL")
