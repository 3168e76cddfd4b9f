"""Runs one plugin's raw SQL, confined by the database to what its `PluginGrant` allows.

Plugin SQL is text plus parameters: a list for `?` placeholders or a dict for `:name` ones,
always bound, never formatted in. On SQLite the text goes to the driver unchanged (both styles
are native) inside one call on aiosqlite's worker thread that sets the authorizer and a
progress-handler time budget, runs, fetches and removes both, so no host statement ever runs
under them and no plugin statement runs without them. On PostgreSQL the placeholders become
`$1..$n` and the statement runs on a connection logged in as the plugin's role.

Obtain one with `plugin_sql(database, grant)`; on SQLite pass `session=` to share the caller's
transaction. Inside a transaction a failing statement undoes only itself (a savepoint per
statement on PostgreSQL; SQLite's statement journal), with one SQLite exception: a *write*
stopped by the time budget makes SQLite roll back the whole transaction, which `PluginSQL`
reports and then refuses further statements until `rollback()`.

A statement also stops when the plugin call awaiting it is cancelled (its time budget ran out):
PostgreSQL through the driver's cancel request, SQLite through the progress handler; both act
only between steps of work, so the C functions that could run long without one are withheld
from plugins (`confinement.SQLITE_DENIED_FUNCTIONS`, the revoke_* PostgreSQL migrations). SQLite
results are bounded by `grant.max_result_bytes` while they are fetched, and no single value may
grow past it (SQLITE_LIMIT_LENGTH); PostgreSQL results are bounded only by the time budget.

The aiosqlite worker-thread call uses aiosqlite's `_execute(fn, ...)` and `_conn`: its public
`set_authorizer` / `execute` are separate queued calls, between which another coroutine's host
statement could run under the plugin's authorizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modula.db import column_values, confinement, storable
from modula.db.confinement import PluginGrant, SQLitePolicy
from modula.db.connection import Database, Session
from modula.db.errors import PluginSQLDenied, PluginSQLError, PluginSQLTimeout, translate

Params = Sequence[Any] | Mapping[str, Any] | None

# SQLite calls the progress handler every this many virtual-machine instructions.
_PROGRESS_INTERVAL = 1000
# Rows fetched at a time from SQLite, and what each value costs in the result budget besides its
# bytes: about what the host then spends on it (a Python object, later a Lua value).
_FETCH_BATCH = 256
_PG_FETCH_BATCH = 4096  # each batch is a round trip to the server
_VALUE_COST = 64
# Warmed before the authorizer is set: the first use of an eponymous virtual table on a
# connection reads and writes sqlite_master internally, which the authorizer would refuse.
_SQLITE_WARMUP = "SELECT 1 FROM json_each('[]'), json_tree('[]')"
_PG_SAVEPOINT = "modula_plugin_statement"
_PG_TRANSACTION_WORDS = frozenset({"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare"})
# Statements PostgreSQL lets every role run and a plugin has no use for: NOTIFY reaches
# listeners outside Modula (pg_notify is revoked from PUBLIC by a migration), DO runs PL/pgSQL
# that could issue any of these, and ALTER, the only form the plugin's role could use being
# ALTER ROLE on itself, would change its own password or session defaults.
_PG_DENIED_WORDS = frozenset({"notify", "listen", "unlisten", "do", "alter"})


# --- placeholders ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    start: int
    end: int
    name: str | None  # None for `?`


@dataclass(frozen=True)
class ScannedSQL:
    placeholders: tuple[Placeholder, ...]
    first_word: str


_WORD = re.compile(r"[A-Za-z_]+")
_COMMON_TOKENS = r"""
    (?P<line>--[^\n]*)
  | (?P<block>/\*)
  | (?P<cast>::)
  | (?P<named>(?<![\w$:]):[A-Za-z_][\w$]*)
  | (?P<numbered>\?\d+)
  | (?P<q>\?)
"""
_TOKENS = {
    "postgresql": re.compile(
        r"""(?P<skip>(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'? | '(?:[^']|'')*'? | "(?:[^"]|"")*"?)
          | (?P<dollar>(?<![\w$])\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
          | (?P<param>\$\d)
          | """ + _COMMON_TOKENS,
        re.X | re.S,
    ),
    "sqlite": re.compile(
        r"""(?P<skip>'(?:[^']|'')*'? | "(?:[^"]|"")*"? | `(?:[^`]|``)*`? | \[[^\]]*\]?)
          | (?P<param>[$@][A-Za-z_0-9])
          | """ + _COMMON_TOKENS,
        re.X | re.S,
    ),
}


def scan_sql(sql: str, dialect: str) -> ScannedSQL:
    """Find the `?` and `:name` placeholders outside string literals, quoted identifiers,
    comments, dollar-quoted strings (PostgreSQL) and `::` casts; also the statement's first word."""
    pattern = _TOKENS["postgresql" if dialect == "postgresql" else "sqlite"]
    found: list[Placeholder] = []
    i = 0
    while (match := pattern.search(sql, i)) is not None:
        kind, i = match.lastgroup, match.end()
        if kind == "q":
            found.append(Placeholder(match.start(), i, None))
        elif kind == "named":
            found.append(Placeholder(match.start(), i, match.group()[1:]))
        elif kind == "block":
            i = _skip_block_comment(sql, match.start(), nested=dialect == "postgresql")
        elif kind == "dollar":
            close = sql.find(match.group(), i)
            i = len(sql) if close < 0 else close + len(match.group())
        elif kind == "numbered":
            raise PluginSQLError("numbered ? placeholders are not supported: use ? or :name")
        elif kind == "param":
            raise PluginSQLError("use ? or :name placeholders in plugin SQL, not $ or @ parameters")
    return ScannedSQL(tuple(found), _leading_word(sql, nested=dialect == "postgresql"))


def _leading_word(sql: str, *, nested: bool) -> str:
    """The statement's first word, past whitespace, `(` and comments (PostgreSQL nests them)."""
    i = 0
    while i < len(sql):
        if sql[i].isspace() or sql[i] == "(":
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i, nested=nested)
        else:
            break
    word = _WORD.match(sql, i)
    return word.group().lower() if word else ""


def bind(sql: str, params: Params, dialect: str) -> tuple[str, Sequence[Any] | Mapping[str, Any], ScannedSQL]:
    """Check the placeholders against the parameters; on PostgreSQL rewrite them to `$n`.

    Returns (text, parameters for the driver, scan). A list binds `?`, a dict binds `:name`."""
    scanned = scan_sql(sql, dialect)
    holders = scanned.placeholders
    if params is None:
        params = []
    _check_storable(params)
    if isinstance(params, Mapping):
        params = {name: column_values.sql_parameter(value, dialect) for name, value in params.items()}
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        params = [column_values.sql_parameter(value, dialect) for value in params]
    if isinstance(params, Mapping):
        if any(h.name is None for h in holders):
            raise PluginSQLError("parameters were given by name but the statement uses ? placeholders")
        missing = sorted({h.name for h in holders if h.name not in params})
        if missing:
            raise PluginSQLError(f"no value given for parameter :{missing[0]}")
        if dialect != "postgresql":
            return sql, dict(params), scanned
        order: dict[str, int] = {}
        for h in holders:
            order.setdefault(h.name, len(order) + 1)
        text = _replace(sql, holders, lambda h: f"${order[h.name]}")
        return text, [params[name] for name in order], scanned
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise PluginSQLError("parameters must be a list (for ?) or a table of names (for :name)")
    if any(h.name is not None for h in holders):
        raise PluginSQLError("the statement uses :name placeholders but the parameters are a list")
    if len(holders) != len(params):
        raise PluginSQLError(f"the statement has {len(holders)} ? placeholders but {len(params)} parameters were given")
    if dialect != "postgresql":
        return sql, list(params), scanned
    numbers = iter(range(1, len(holders) + 1))
    return _replace(sql, holders, lambda h: f"${next(numbers)}"), list(params), scanned


def _check_storable(params: Params) -> None:
    """A value neither database stores alike (Infinity, a NUL, a lone surrogate) is refused on
    both, naming the parameter, before the statement runs."""
    if isinstance(params, Mapping):
        named = [(f":{name}", value) for name, value in params.items()]
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        named = [(f"parameter {i}", value) for i, value in enumerate(params, start=1)]
    else:
        return
    for name, value in named:
        found = storable.problem(value)
        if found is not None:
            raise PluginSQLError(f"{name} {found}")


def _replace(sql: str, holders: Sequence[Placeholder], render) -> str:
    parts, last = [], 0
    for h in holders:
        parts += [sql[last:h.start], render(h)]
        last = h.end
    parts.append(sql[last:])
    return "".join(parts)


def _skip_block_comment(sql: str, i: int, *, nested: bool) -> int:
    depth, j = 1, i + 2
    while j < len(sql) and depth:
        if nested and sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    return j


# --- running plugin statements --------------------------------------------------------------


class PluginSQL:
    """One plugin's confined SQL on one held connection, for one plugin call or transaction."""

    def __init__(self, session: Session, grant: PluginGrant) -> None:
        if session.dialect == "postgresql" and not re.fullmatch(rf"modula_[0-9a-f]{{8}}_{grant.plugin}", session.login_role or ""):
            # A host connection would run the plugin's SQL with the host's privileges.
            raise ValueError("on PostgreSQL plugin SQL must run on the plugin's own login session")
        self.session = session
        self.grant = grant
        self._policy: SQLitePolicy | None = None
        self._transaction: contextlib.AbstractAsyncContextManager | None = None
        self._lost = False

    @property
    def in_transaction(self) -> bool:
        return self._transaction is not None

    async def query(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Rows of a statement as dicts of plain Python values."""
        rows, _, _ = await self._run(sql, params, exec_=False)
        return rows

    async def exec(self, sql: str, params: Params = None) -> dict[str, int | None]:
        """Run a statement for its effect: {"rows_affected", "last_insert_id"} (the id only after
        an INSERT whose table generates one)."""
        _, affected, last_id = await self._run(sql, params, exec_=True)
        return {"rows_affected": affected, "last_insert_id": last_id}

    async def begin(self) -> None:
        """Open a real transaction (a savepoint if the caller's session already holds one)."""
        if self._transaction is not None:
            raise PluginSQLError("a transaction is already open")
        transaction = self.session.transaction()
        await transaction.__aenter__()
        self._transaction = transaction

    async def commit(self) -> None:
        transaction = self._take_transaction()
        if self._lost:
            await self._unwind(transaction)
            raise PluginSQLError("the transaction was rolled back after a statement was stopped; nothing was committed")
        await transaction.__aexit__(None, None, None)

    async def rollback(self) -> None:
        transaction = self._take_transaction()
        if self._lost:
            await self._unwind(transaction)
            return
        await transaction.__aexit__(_Rollback, _Rollback(), None)

    def _take_transaction(self):
        if self._transaction is None:
            raise PluginSQLError("no transaction is open")
        transaction, self._transaction = self._transaction, None
        return transaction

    async def _unwind(self, transaction) -> None:
        # SQLite already rolled the whole transaction back; only the session's bookkeeping is left.
        self._lost = False
        with contextlib.suppress(Exception):
            await transaction.__aexit__(_Rollback, _Rollback(), None)

    async def close(self) -> None:
        """Roll back a transaction the plugin left open (the call ended or failed)."""
        if self._transaction is not None:
            await self.rollback()

    async def _run(self, sql: str, params: Params, *, exec_: bool):
        if self._lost:
            raise PluginSQLError("the transaction was rolled back after a statement was stopped; roll back and start again")
        text, args, scanned = bind(sql, params, self.session.dialect)
        self.session.database._notify(text)
        if self.session.dialect == "postgresql":
            return await self._run_postgres(text, args, scanned, exec_=exec_)
        return await self._run_sqlite(text, args)

    # SQLite

    async def _run_sqlite(self, sql: str, args):
        raw = await self.session.connection()
        expected_transaction = self.session.in_transaction
        if self._policy is None:
            keys = await raw._execute(confinement.sqlite_referenced_keys, raw._conn, self.grant)
            self._policy = SQLitePolicy(self.grant, keys)
        stop = threading.Event()
        try:
            return await raw._execute(_run_confined_sqlite, raw._conn, self._policy, sql, args, self.grant, stop)
        except asyncio.CancelledError:
            # Cancelling the await does not stop aiosqlite's worker thread; the progress
            # handler sees `stop` and interrupts the statement, so the host's next statement on
            # this connection (the rollback, the session's close) does not wait for it.
            stop.set()
            raise
        except Exception as exc:
            lost = expected_transaction and not raw._conn.in_transaction
            self._lost = self._lost or lost
            raise self._sqlite_error(exc, lost) from None

    def _sqlite_error(self, exc: Exception, lost: bool) -> PluginSQLError:
        if self._policy.denial is not None:
            return PluginSQLDenied(f"not authorized: {self._policy.denial}")
        text = str(exc)
        if text == "interrupted":
            message = f"statement stopped after its time budget of {self.grant.statement_timeout_ms} ms"
            if lost:
                message += "; SQLite rolled back the whole transaction"
            return PluginSQLTimeout(message)
        translated = translate(exc)
        return PluginSQLError(translated.message if translated else text)

    # PostgreSQL

    async def _run_postgres(self, sql: str, args, scanned: ScannedSQL, *, exec_: bool):
        if scanned.first_word in _PG_TRANSACTION_WORDS:
            raise PluginSQLDenied("not authorized: transaction statements are not allowed in plugin SQL: use the transaction API")
        if scanned.first_word in _PG_DENIED_WORDS:
            raise PluginSQLDenied(f"not authorized: {scanned.first_word.upper()} is not allowed in plugin SQL")
        connection = await self.session.connection()
        in_transaction = self.session.in_transaction
        self.session.state_changed = True  # SET below, and whatever the plugin's SQL does
        # The role's own statement_timeout can be changed by the plugin with SET, so the budget
        # is set again right before every statement; DISCARD SEQUENCES makes lastval() name only
        # what this statement generated.
        prelude = f"SET statement_timeout = {int(self.grant.statement_timeout_ms)}"
        if exec_:
            prelude += "; DISCARD SEQUENCES"
        if in_transaction:
            prelude = f"SAVEPOINT {_PG_SAVEPOINT}; {prelude}"
        await connection.execute(prelude)
        try:
            if any(column_values.may_need_type(arg) for arg in args):
                # Only the statement knows which strings are timestamps or dates (asyncpg binds
                # those from Python datetimes only): ask it before binding.
                types = [t.name for t in (await connection.prepare(sql)).get_parameters()]
                args = [column_values.typed_parameter(arg, kind) for arg, kind in zip(args, types)]
            # Both paths use the extended protocol: one statement, no `;`-chained extras.
            if exec_ and args:
                records, status = [], await connection.execute(sql, *args)  # cached statement
            elif exec_:
                statement = await connection.prepare(sql)  # `execute` without args would allow `;`
                records = await statement.fetch()
                status = statement.get_statusmsg() or ""
            else:
                records, status = await self._pg_fetch_within(connection, sql, args, in_transaction), ""
        except Exception as exc:
            if in_transaction and connection.is_in_transaction():
                await connection.execute(f"ROLLBACK TO SAVEPOINT {_PG_SAVEPOINT}; RELEASE SAVEPOINT {_PG_SAVEPOINT}")
            raise _postgres_error(exc, self.grant) from None
        if in_transaction != connection.is_in_transaction():
            if not in_transaction:
                await connection.execute("ROLLBACK")
            self._lost = in_transaction
            raise PluginSQLDenied("not authorized: the statement ended or started a transaction: use the transaction API")
        last_id = None
        affected = _status_count(status)
        if exec_ and status.startswith("INSERT") and affected:
            last_id = await self._pg_lastval(connection, in_transaction)
        if in_transaction:
            await connection.execute(f"RELEASE SAVEPOINT {_PG_SAVEPOINT}")
        return [dict(record) for record in records], affected, last_id

    async def _pg_fetch_within(self, connection, sql: str, args, in_transaction: bool) -> list:
        """The rows, read through a cursor in batches, refused once they would take more than
        `grant.max_result_bytes` in the host (a plain fetch would hold all of them first). A
        cursor needs a transaction: outside one, the statement gets its own."""
        limit = self.grant.max_result_bytes
        statement = await connection.prepare(sql)

        # The statement's time budget covers reading its rows too, not only each round trip.
        deadline = time.monotonic() + self.grant.statement_timeout_ms / 1000

        async def read() -> list:
            rows, left = [], limit
            cursor = await statement.cursor(*args)
            while batch := await cursor.fetch(_PG_FETCH_BATCH):
                if time.monotonic() > deadline:
                    raise PluginSQLTimeout(f"statement stopped after its time budget of {self.grant.statement_timeout_ms} ms")
                left -= sum(_VALUE_COST + (len(v) if isinstance(v, (str, bytes)) else 0) for row in batch for v in row)
                if left < 0:
                    raise PluginSQLError(f"the result is larger than the {limit} bytes a plugin statement may return: "
                                         "select fewer rows or columns")
                rows += batch
            return rows

        if in_transaction:
            return await read()
        async with connection.transaction():
            return await read()

    async def _pg_lastval(self, connection, in_transaction: bool) -> int | None:
        # lastval() fails when the statement used no sequence; inside a transaction that failure
        # must not undo the insert, hence its own savepoint.
        if in_transaction:
            await connection.execute("SAVEPOINT modula_lastval")
        try:
            value = await connection.fetchval("SELECT pg_catalog.lastval()")
        except Exception:  # noqa: BLE001 - "lastval is not yet defined in this session"
            if in_transaction:
                await connection.execute("ROLLBACK TO SAVEPOINT modula_lastval")
            return None
        return value


def _run_confined_sqlite(connection, policy: SQLitePolicy, sql: str, args, grant: PluginGrant, stop: threading.Event):
    """Runs on aiosqlite's worker thread: authorizer, time budget and value length limit set,
    statement run and fetched within the result budget, all removed, with nothing else able to
    use the connection in between."""
    if policy.refresh_schema(connection):
        connection.execute(_SQLITE_WARMUP).fetchall()
    policy.reset()
    deadline = time.monotonic() + grant.statement_timeout_ms / 1000
    connection.set_authorizer(policy)
    connection.set_progress_handler(lambda: stop.is_set() or time.monotonic() > deadline, _PROGRESS_INTERVAL)
    max_length = connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, grant.max_result_bytes)
    try:
        cursor = connection.execute(sql, args)
        rows = _fetch_within(cursor, grant.max_result_bytes)
        columns = [d[0] for d in cursor.description or ()]
        affected = max(cursor.rowcount, 0)
        last_id = cursor.lastrowid if policy.inserts and affected else None
    finally:
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)
        connection.set_progress_handler(None, 0)
        connection.set_authorizer(None)
    return [dict(zip(columns, row)) for row in rows], affected, last_id


def _fetch_within(cursor: sqlite3.Cursor, limit: int) -> list[tuple]:
    """All rows, unless they would take more than `limit` bytes (estimated) in the host."""
    rows: list[tuple] = []
    left = limit
    while batch := cursor.fetchmany(_FETCH_BATCH):
        left -= sum(_VALUE_COST + (len(v) if isinstance(v, (str, bytes)) else 0) for row in batch for v in row)
        if left < 0:
            cursor.close()
            raise PluginSQLError(f"the result is larger than the {limit} bytes a plugin statement may return: select fewer rows or columns")
        rows += batch
    return rows


def _postgres_error(exc: Exception, grant: PluginGrant) -> PluginSQLError:
    if isinstance(exc, PluginSQLError):  # ours already (result too large, read past the budget)
        return exc
    state = getattr(exc, "sqlstate", None)
    message = str(exc)
    if state == "42501":
        return PluginSQLDenied(f"not authorized: {message}")
    if state == "57014":
        return PluginSQLTimeout(f"statement stopped after its time budget of {grant.statement_timeout_ms} ms")
    translated = translate(exc)
    return PluginSQLError(translated.message if translated else message)


def _status_count(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Rollback(Exception):
    """Thrown into a session transaction to make it roll back."""


@contextlib.asynccontextmanager
async def _closing(db: PluginSQL) -> AsyncIterator[PluginSQL]:
    try:
        yield db
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def plugin_sql(database: Database, grant: PluginGrant, *, session: Session | None = None,
                     pool_size: int | None = None) -> AsyncIterator[PluginSQL]:
    """A `PluginSQL` for one plugin call.

    SQLite: on `session` when given (plugin statements then share the caller's transaction), else
    on a new session. PostgreSQL: on a connection from the plugin's own pool (logged in as its
    role, provisioned beforehand by `provision_plugin_role`; `pool_size` connections at most,
    by default the Database's `plugin_pool_size`, fixed when the pool opens on first use); a
    host `session` cannot be shared because the host's connection carries the host's privileges.
    """
    if database.is_sqlite:
        if session is not None:
            async with _closing(PluginSQL(session, grant)) as db:
                yield db
            return
        async with database.session() as own, _closing(PluginSQL(own, grant)) as db:
            yield db
        return
    if session is not None and session.login_role is not None:
        async with _closing(PluginSQL(session, grant)) as db:
            yield db
        return
    if session is not None:
        raise ValueError("on PostgreSQL plugin SQL runs on the plugin's own connection, not a host session")
    async with plugin_session(database, grant.plugin, pool_size=pool_size) as own, _closing(PluginSQL(own, grant)) as db:
        yield db


@contextlib.asynccontextmanager
async def plugin_session(database: Database, plugin: str, *, pool_size: int | None = None) -> AsyncIterator[Session]:
    """PostgreSQL: a session logged in as the plugin's own role, from its pool of at most
    `pool_size` connections (default: the Database's `plugin_pool_size`; the size is fixed when
    the pool opens, on first use)."""

    async def credentials() -> tuple[str, str]:
        async with database.session() as host:
            found = await confinement.plugin_credentials(host, plugin)
        if found is None:
            raise PluginSQLError(f"plugin {plugin} has no database role yet")
        return found

    async with database.login_session(f"plugin:{plugin}", credentials, max_size=pool_size) as session:
        yield session
