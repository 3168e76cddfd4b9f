"""What a plugin's raw SQL may touch, and the database-side machinery that enforces it.

A plugin named `shop` owns the tables named `shop_*` and may read the core tables its grant
lists. The database itself enforces this, never a parser of the plugin's SQL:

- SQLite: an authorizer callback (`SQLitePolicy`) consulted while each plugin statement is
  prepared. Setting an authorizer expires every prepared statement of the connection
  (`sqlite3_set_authorizer` calls `sqlite3ExpirePreparedStatements`), so a statement text the
  host prepared earlier and Python's sqlite3 cached is re-prepared, and so re-authorized, before
  it runs for the plugin; `tests/test_confinement.py` proves it.
- PostgreSQL: a LOGIN role per plugin and database (`provision_plugin_role`), holding privileges
  on exactly its own tables and the readable core tables. SET ROLE is no boundary (RESET ROLE
  undoes it), so plugin statements run on connections that logged in as that role.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from dataclasses import dataclass, field

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import metadata as core_metadata
from modula.db.core_tables import plugin_roles
from modula.db.names import PLUGIN_NAME, TABLE_NAME, quote_ident

log = logging.getLogger("modula.db")

# Secrets no grant may ever include: credentials of users, sessions, tokens and plugin roles.
NEVER_READABLE = frozenset({"plugin_roles", "sessions", "tokens", "schema_migrations"})
# Columns withheld even when their table is readable.
SECRET_COLUMNS: dict[str, frozenset[str]] = {"users": frozenset({"password_hash"})}

# Functions a plugin may not call on SQLite (Python's sqlite3 leaves extension loading off; the
# rest only exist in some builds or shells, and fts3_tokenizer has been a memory-safety hazard).
# The second group runs for seconds to hours inside one call the progress handler cannot
# interrupt: printf('%.*c', 2147483647, 'x') alone takes ten seconds, and trimming by a set
# costs the string's length times the set's (the authorizer sees only names, so the one-argument
# trims go too). A plugin formats and trims in Lua.
SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_dbpage"}
    | {"printf", "format", "trim", "ltrim", "rtrim"}
)

# Table-valued functions (eponymous virtual tables) reading only their arguments.
SQLITE_TABLE_FUNCTIONS = frozenset({"json_each", "json_tree"})

# What sql/postgresql/0006_revoke_public_functions.sql and 0008_revoke_quadratic_functions.sql
# take from PUBLIC (keep them in step): provisioning checks the plugin's role cannot execute them.
PG_REVOKED_FUNCTIONS = (
    "pg_notify(text, text)", "lo_create(oid)", "lo_creat(integer)", "lo_open(oid, integer)", "lo_close(integer)",
    "loread(integer, integer)", "lowrite(integer, bytea)", "lo_lseek(integer, integer, integer)",
    "lo_lseek64(integer, bigint, integer)", "lo_tell(integer)", "lo_tell64(integer)", "lo_truncate(integer, integer)",
    "lo_truncate64(integer, bigint)", "lo_unlink(oid)", "lo_from_bytea(oid, bytea)", "lo_get(oid)",
    "lo_get(oid, bigint, integer)", "lo_put(oid, bigint, bytea)",
    "btrim(text, text)", "ltrim(text, text)", "rtrim(text, text)", "btrim(bytea, bytea)", "ltrim(bytea, bytea)",
    "rtrim(bytea, bytea)", "translate(text, text, text)",
)

# Advisory lock held while provisioning, so processes sharing the database never race on GRANT
# ("tuple concurrently updated") or CREATE ROLE.
_PG_PROVISION_LOCK = 74_211_002


@dataclass(frozen=True)
class PluginGrant:
    """What one plugin's SQL may touch: its own tables, SELECT on `readable` core tables."""

    plugin: str
    readable: frozenset[str] = frozenset()
    statement_timeout_ms: int = 5000
    # The most one statement may hand back to the host (SQLite; an estimate of the host's cost,
    # see plugin_sql) and the longest value it may build. The default is the default Lua memory
    # cap of a plugin: a larger result could never reach the plugin's code anyway.
    max_result_bytes: int = 64 * 1024 * 1024
    # The plugin's tables when the host knows them exactly; None means every `<plugin>_*` table.
    # Pass them when plugin names can nest (`shop` and `shop_x`), or `shop` would own `shop_x_*`.
    own_tables: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not PLUGIN_NAME.match(self.plugin):
            raise ValueError(f"invalid plugin name {self.plugin!r}: use ^[a-z][a-z0-9_]{{0,30}}$")
        readable = frozenset(name.lower() for name in self.readable)
        for name in readable:
            if name in NEVER_READABLE or name not in core_metadata.tables:
                raise ValueError(f"plugin {self.plugin} may not be granted reads of table {name!r}")
        object.__setattr__(self, "readable", readable)
        if self.own_tables is not None:
            own = frozenset(name.lower() for name in self.own_tables)
            for name in own:
                if not TABLE_NAME.match(name) or not name.startswith(self.plugin + "_"):
                    raise ValueError(f"table {name!r} is not named like a table of plugin {self.plugin}")
            object.__setattr__(self, "own_tables", own)
        if not isinstance(self.statement_timeout_ms, int) or self.statement_timeout_ms <= 0:
            raise ValueError("statement_timeout_ms must be a positive integer")
        if not isinstance(self.max_result_bytes, int) or not 0 < self.max_result_bytes < 2**31:
            raise ValueError("max_result_bytes must be a positive integer below 2 GiB")

    def owns(self, table: str) -> bool:
        table = table.lower()
        if self.own_tables is not None:
            return table in self.own_tables
        return table.startswith(self.plugin + "_") and bool(TABLE_NAME.match(table))

    def may_read(self, table: str, column: str | None) -> bool:
        table = table.lower()
        if self.owns(table):
            return True
        return table in self.readable and (column or "").lower() not in SECRET_COLUMNS.get(table, ())


# --- SQLite ---------------------------------------------------------------------------------

_DDL_ACTIONS = {
    sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_CREATE_TEMP_INDEX,
    sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_TRIGGER, sqlite3.SQLITE_CREATE_TEMP_VIEW,
    sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_DROP_INDEX,
    sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_TEMP_INDEX, sqlite3.SQLITE_DROP_TEMP_TABLE,
    sqlite3.SQLITE_DROP_TEMP_TRIGGER, sqlite3.SQLITE_DROP_TEMP_VIEW, sqlite3.SQLITE_DROP_TRIGGER,
    sqlite3.SQLITE_DROP_VIEW, sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_REINDEX, sqlite3.SQLITE_ANALYZE,
    sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE,
}
_FIXED_DENIALS = {
    sqlite3.SQLITE_PRAGMA: "PRAGMA is not allowed in plugin SQL",
    sqlite3.SQLITE_ATTACH: "ATTACH is not allowed in plugin SQL",
    sqlite3.SQLITE_DETACH: "DETACH is not allowed in plugin SQL",
    sqlite3.SQLITE_TRANSACTION: "transaction statements are not allowed in plugin SQL: use the transaction API",
    sqlite3.SQLITE_SAVEPOINT: "transaction statements are not allowed in plugin SQL: use the transaction API",
}
_WRITES = {sqlite3.SQLITE_INSERT: "insert into", sqlite3.SQLITE_UPDATE: "update", sqlite3.SQLITE_DELETE: "delete from"}


@dataclass
class SQLitePolicy:
    """The authorizer callback for one plugin; remembers why it last refused and whether the
    statement inserts (so `lastrowid` is only reported for INSERTs)."""

    grant: PluginGrant
    # (table, column) pairs of other tables that the plugin's own foreign keys reference: SQLite
    # asks to read them when it checks those keys, and the plugin learns no more by reading the
    # key itself than a failed insert would tell it.
    referenced_keys: frozenset[tuple[str, str]] = frozenset()
    # Lower-cased names of the schema's tables and views, refreshed by the runner whenever the
    # schema version moves: SQLite asks to read a CTE too (with an empty column, for count(*)),
    # and a name that is no table in the schema can only be one.
    schema_names: frozenset[str] = frozenset()
    schema_version: int | None = None
    denial: str | None = field(default=None, init=False)
    inserts: bool = field(default=False, init=False)

    def reset(self) -> None:
        self.denial = None
        self.inserts = False

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        reason = self._refusal(action, arg1, arg2, db)
        if reason is None:
            return sqlite3.SQLITE_OK
        if self.denial is None:
            self.denial = reason
        return sqlite3.SQLITE_DENY

    def _refusal(self, action: int, arg1: str | None, arg2: str | None, db: str | None) -> str | None:
        plugin = self.grant.plugin
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return None
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            return f"function {name} is not allowed in plugin SQL" if name in SQLITE_DENIED_FUNCTIONS else None
        if action == sqlite3.SQLITE_READ:
            table = (arg1 or "").lower()
            if db is None and not arg2 and table not in self.schema_names:
                return None
            if db in (None, "main") and not table.startswith("sqlite_"):
                if (
                    self.grant.may_read(table, arg2)
                    or table in SQLITE_TABLE_FUNCTIONS
                    or (table, (arg2 or "").lower()) in self.referenced_keys
                ):
                    return None
            if arg2 and table in self.grant.readable:
                return f"column {table}.{arg2} is not readable by plugin {plugin}"
            return f"table {table} is not readable by plugin {plugin}"
        if action in _WRITES:
            table = (arg1 or "").lower()
            if db in (None, "main") and not table.startswith("sqlite_") and self.grant.owns(table):
                if action == sqlite3.SQLITE_INSERT:
                    self.inserts = True
                return None
            return f"plugin {plugin} may not {_WRITES[action]} table {table}"
        if action in _DDL_ACTIONS:
            return "schema changes are not allowed in plugin SQL: the host creates plugin tables"
        return _FIXED_DENIALS.get(action, "this operation is not allowed in plugin SQL")


    def refresh_schema(self, connection: sqlite3.Connection) -> bool:
        """Called without the authorizer set, before each statement; True when the schema (or
        the connection's view of it) changed since the last call."""
        version = connection.execute("PRAGMA schema_version").fetchone()[0]
        if version == self.schema_version:
            return False
        names = connection.execute("SELECT lower(name) FROM sqlite_master WHERE type IN ('table', 'view')")
        self.schema_names = frozenset(row[0] for row in names) | {"sqlite_master", "sqlite_schema", "sqlite_temp_master"}
        self.schema_version = version
        return True


def sqlite_referenced_keys(connection: sqlite3.Connection, grant: PluginGrant) -> frozenset[tuple[str, str]]:
    """The (table, column) keys the plugin's own tables reference by foreign key (trusted, host side)."""
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    keys: set[tuple[str, str]] = set()
    for table in filter(grant.owns, tables):
        for row in connection.execute(
            'SELECT f."table", COALESCE(f."to", p.name) FROM pragma_foreign_key_list(?) AS f '
            'LEFT JOIN pragma_table_info(f."table") AS p ON f."to" IS NULL AND p.pk > 0',
            (table,),
        ):
            if row[1] is not None:
                keys.add((row[0].lower(), row[1].lower()))
    return frozenset(keys)


# --- PostgreSQL -----------------------------------------------------------------------------


def role_prefix(database_name: str) -> str:
    """What every plugin role of one database starts with (to find them when the database goes)."""
    return f"modula_{hashlib.sha256(database_name.encode()).hexdigest()[:8]}_"


def role_name(database_name: str, plugin: str) -> str:
    """The plugin's role: role names are cluster-wide, so the database's name is folded in."""
    return role_prefix(database_name) + plugin


async def provision_plugin_role(session: Session, grant: PluginGrant, own_tables: list[str]) -> str | None:
    """Create or update the plugin's login role and set its privileges to exactly: SELECT, INSERT,
    UPDATE, DELETE on `own_tables` (and USAGE on their sequences), SELECT on `grant.readable`
    (secret columns withheld), nothing else; no CREATE anywhere, no temporary tables.

    Call it after creating the plugin's tables, on the host's (owner's) session. Idempotent and
    safe when several processes provision at once. Returns the role name; a no-op returning None
    on SQLite, where the authorizer needs nothing stored.
    """
    if session.dialect != "postgresql":
        return None
    tables = sorted({name.lower() for name in own_tables})
    for name in tables:
        if not TABLE_NAME.match(name) or not grant.owns(name):
            raise ValueError(f"table {name!r} is not a table of plugin {grant.plugin}")
    async with session.transaction():
        await session.fetch_all(sa.select(sa.func.pg_advisory_xact_lock(_PG_PROVISION_LOCK)))
        database = await session.fetch_value(sa.select(sa.func.current_database()))
        schema = await session.fetch_value(sa.select(sa.func.current_schema()))
        role, password = await _stored_credentials(session, grant.plugin, role_name(database, grant.plugin))
        await _ensure_role(session, role, password)
        q_role, q_schema, q_db = quote_ident(role), quote_ident(schema), quote_ident(database)
        statements = [
            f"ALTER ROLE {q_role} SET statement_timeout = {int(grant.statement_timeout_ms)}",
            f"ALTER ROLE {q_role} SET idle_in_transaction_session_timeout = 60000",
            # Start from nothing, so a grant that shrank (or a table renamed away) loses access.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {q_schema} FROM {q_role}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q_schema} FROM {q_role}",
            f"REVOKE ALL ON SCHEMA {q_schema} FROM {q_role}",
            # PostgreSQL 15 already withholds CREATE on public from PUBLIC; older servers do not.
            f"REVOKE CREATE ON SCHEMA {q_schema} FROM PUBLIC",
            # Temporary tables and functions in pg_temp would be DDL outside the host's control.
            # The owner (the host) keeps TEMPORARY: owners hold every privilege explicitly.
            f"REVOKE TEMPORARY ON DATABASE {q_db} FROM PUBLIC",
            f"REVOKE ALL ON DATABASE {q_db} FROM {q_role}",
            f"GRANT CONNECT ON DATABASE {q_db} TO {q_role}",
            f"GRANT USAGE ON SCHEMA {q_schema} TO {q_role}",
        ]
        for table in tables:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q_schema}.{quote_ident(table)} TO {q_role}")
        for sequence in await _owned_sequences(session, schema, tables):
            statements.append(f"GRANT USAGE, SELECT ON SEQUENCE {q_schema}.{quote_ident(sequence)} TO {q_role}")
        for table in sorted(grant.readable):
            secret = SECRET_COLUMNS.get(table)
            if secret:
                columns = ", ".join(quote_ident(c.name) for c in core_metadata.tables[table].c if c.name not in secret)
                statements.append(f"GRANT SELECT ({columns}) ON {q_schema}.{quote_ident(table)} TO {q_role}")
            else:
                statements.append(f"GRANT SELECT ON {q_schema}.{quote_ident(table)} TO {q_role}")
        for statement in statements:
            await session.execute(sa.text(statement))
        await _warn_about_public_functions(session, role)
    return role


async def _warn_about_public_functions(session: Session, role: str) -> None:
    # Only the functions' owner (a superuser) can revoke them from PUBLIC; a server migrating as
    # another role leaves them executable, and the operator should know.
    functions = ", ".join(f"('pg_catalog.{signature}')" for signature in PG_REVOKED_FUNCTIONS)
    rows = await session.fetch_all(sa.text(
        f"SELECT f FROM (VALUES {functions}) AS v(f) WHERE has_function_privilege(:r, f, 'EXECUTE')"
    ).bindparams(r=role))
    if rows:
        log.warning("plugin role %s can still execute %s: run migrations 0006 and 0008 (revoke_*_functions) as a "
                    "superuser, or REVOKE EXECUTE on them FROM PUBLIC", role, ", ".join(row["f"] for row in rows))


async def plugin_credentials(session: Session, plugin: str) -> tuple[str, str] | None:
    """(role, password) stored for the plugin, or None if it was never provisioned."""
    row = await session.fetch_one(
        sa.select(plugin_roles.c.role, plugin_roles.c.password).where(plugin_roles.c.plugin == plugin)
    )
    return None if row is None else (row["role"], row["password"])


async def drop_plugin_role(session: Session, plugin: str) -> None:
    """Remove the plugin's role and stored password (when the plugin is removed). Close the
    plugin's pool first (`Database.close_login_pool`)."""
    if session.dialect != "postgresql":
        return
    if not PLUGIN_NAME.match(plugin):
        raise ValueError(f"invalid plugin name {plugin!r}")
    async with session.transaction():
        await session.fetch_all(sa.select(sa.func.pg_advisory_xact_lock(_PG_PROVISION_LOCK)))
        credentials = await plugin_credentials(session, plugin)
        if credentials is None:
            return
        role = quote_ident(credentials[0])
        exists = await session.fetch_value(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r").bindparams(r=credentials[0]))
        if exists:
            await session.execute(sa.text(f"DROP OWNED BY {role}"))
            await session.execute(sa.text(f"DROP ROLE {role}"))
        await session.execute(plugin_roles.delete().where(plugin_roles.c.plugin == plugin))


async def _stored_credentials(session: Session, plugin: str, role: str) -> tuple[str, str]:
    stored = await plugin_credentials(session, plugin)
    if stored is not None and stored[0] == role:
        return stored
    password = secrets.token_hex(24)
    await session.execute(plugin_roles.delete().where(plugin_roles.c.plugin == plugin))
    await session.execute(plugin_roles.insert().values(plugin=plugin, role=role, password=password))
    return role, password


async def _ensure_role(session: Session, role: str, password: str) -> None:
    # The password is hex from `secrets`, so inlining it in the DDL (which takes no bind
    # parameters) is safe.
    attributes = f"LOGIN PASSWORD '{password}'"
    exists = await session.fetch_value(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r").bindparams(r=role))
    if not exists:
        try:
            async with session.transaction():
                await session.execute(sa.text(
                    f"CREATE ROLE {quote_ident(role)} {attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "NOINHERIT NOREPLICATION NOBYPASSRLS"
                ))
            return
        except Exception as exc:  # noqa: BLE001 - only duplicate_object is expected here
            if getattr(exc, "sqlstate", None) != "42710" and "already exists" not in str(exc):
                raise
    await session.execute(sa.text(f"ALTER ROLE {quote_ident(role)} {attributes}"))
    # A role that already existed must not carry powers we would never have given it.
    suspicious = await session.fetch_value(sa.text(
        "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls "
        "OR EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) FROM pg_roles r WHERE r.rolname = :r"
    ).bindparams(r=role))
    if suspicious:
        raise RuntimeError(f"role {role} has attributes or memberships Modula never grants; refusing to use it")


async def _owned_sequences(session: Session, schema: str, tables: list[str]) -> list[str]:
    if not tables:
        return []
    rows = await session.fetch_all(sa.text(
        "SELECT s.relname AS name, t.relname AS owner FROM pg_class s "
        "JOIN pg_depend d ON d.objid = s.oid AND d.classid = CAST('pg_class' AS regclass) AND d.deptype IN ('a', 'i') "
        "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE s.relkind = 'S' AND n.nspname = :schema"
    ).bindparams(schema=schema))
    return sorted({row["name"] for row in rows if row["owner"] in tables})
