"""Hostile plugins driven through the real plugin host on SQLite and PostgreSQL: every attack
ends with a coded error within its time budget plus a second, and the same plugin's next call
works (its own table included), so one bad call never poisons the plugin, the host or the
database.

All tests of a dialect share one migrated database (creating one per test would triple the
run time) and each installs freshly named plugins, so an attack that did harm the database
would show in the tests after it.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa

from modula.db.confinement import PluginGrant
from modula.db.connection import Database
from modula.db.migrations import migrate
from modula.db.plugin_sql import plugin_sql
from modula.lua.limits import Limits
from modula.plugins.errors import PluginError
from modula.plugins.host import LoadedPlugin, PluginHost
from modula_testing import create_test_database, drop_test_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

GRACE = 1.0
# Small budgets keep the suite fast; each attack must end within `seconds` + GRACE.
LIMITS = Limits(instructions=10_000_000, memory_bytes=16 * 1024 * 1024, seconds=0.5,
                max_string_op_input=1_000_000, pattern_steps=20_000_000)
# For attacks that must be stopped by the wall clock, not by the instruction budget.
WALL_CLOCK = Limits(instructions=10**15, memory_bytes=16 * 1024 * 1024, seconds=0.5)
# For attacks that must be stopped by the instruction budget or the memory cap: on a starved CPU
# 10M instructions of `pcall(error, {})` can take longer than 0.5 s, and then the wall clock
# would answer first.
ROOMY_CLOCK = Limits(instructions=10_000_000, memory_bytes=16 * 1024 * 1024, seconds=3.0)


@pytest.fixture(scope="module", autouse=True)
def young_heap():
    """Hide the objects earlier test modules left from the garbage collector while these attacks
    run. The attacks that build many Python objects are the likeliest to trigger a full
    collection, which in a process that has run hundreds of tests walks their whole heap: a
    pause charged to whichever attack is running (seen as 1.5 s for a 0.5 s budget under CI
    load). Once per module: unfreezing sends everything back to the oldest generation, and doing
    that per test made each test pay for a full collection."""
    gc.freeze()
    yield
    gc.unfreeze()

RUNAWAY_SQL = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) AS n FROM r"

PLUGIN = """
plugin.define_table({name = "@_notes", fields = {
  {name = "note_id", type = "integer", primary_key = true},
  {name = "body", type = "text"},
}})

plugin.mutation{name = "healthy", returns = "JSON", handler = function(args, ctx)
  local note = insert("@_notes", {body = "ok"})
  local count = query_one("SELECT count(*) AS n FROM @_notes").n
  return {body = note.body, count = count}
end}

plugin.mutation{name = "attack", returns = "JSON", handler = function(args, ctx)
ATTACK
end}
"""


# --- fixtures and helpers ---------------------------------------------------------------------


POSTGRES_URL = os.environ.get("MODULA_TEST_POSTGRES_URL")
_SERIAL = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def database(request, tmp_path_factory):
    """One migrated database per dialect for the module, with a user, a session and a token."""
    if request.param == "postgresql" and not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("MODULA_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("set MODULA_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test to run PostgreSQL tests")
    name = f"modula_test_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'modula.db'}"
    else:
        url = await create_test_database(POSTGRES_URL, name)
    database = Database(url)
    await database.connect()
    try:
        async with database.session() as session:
            await migrate(session)
            async with session.transaction():
                now = "CURRENT_TIMESTAMP"
                for sql in (
                    f"INSERT INTO users (username, email, password_hash, created_at, updated_at) VALUES ('ann', 'ann@x', 'secret-hash', {now}, {now})",
                    f"INSERT INTO sessions (user_id, token_hash, expires_at, last_access_at, created_at) VALUES (1, 'session-hash', {now}, {now}, {now})",
                    f"INSERT INTO tokens (user_id, name, token_hash, created_at) VALUES (1, 't', 'token-hash', {now})",
                ):
                    await session.execute(sa.text(sql))
        yield database
    finally:
        await database.disconnect()
        if request.param == "postgresql":
            await drop_test_database(POSTGRES_URL, name)


@pytest_asyncio.fixture(loop_scope="module")
async def host(database: Database):
    host = PluginHost(database, limits=LIMITS)
    try:
        yield host
    finally:
        names = list(host.loaded)
        await host.close()
        for name in names:  # each plugin's PostgreSQL pool would otherwise hold its connections
            await database.close_login_pool(f"plugin:{name}")


async def install(host: PluginHost, root: Path, base: str, attack: str, *, limits: Limits = LIMITS,
                  read: list[str] | None = None) -> LoadedPlugin:
    """Install a new plugin named `base` plus a serial number; "@" in `attack` is its name."""
    name = f"{base}{next(_SERIAL)}"
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0", "api": 1,
                                                    "permissions": {"read": read or []}}))
    (folder / "init.lua").write_text(PLUGIN.replace("ATTACK", attack).replace("@", name))
    host.limits = limits
    return await host.install(folder)


def handler(plugin: LoadedPlugin, name: str):
    return next(op.handler for op in plugin.declarations.operations if op.name == name)


async def assert_healthy(host: PluginHost, plugin: LoadedPlugin, count: int = 1) -> None:
    """The plugin's ordinary handler works: it inserts a note and counts its table."""
    result = await host.call(plugin.name, handler(plugin, "healthy"), {}, {})
    assert result == {"body": "ok", "count": count}


async def assert_attack_fails(host: PluginHost, plugin: LoadedPlugin, codes: str | set[str], *fragments: str,
                              record_property=None, args: dict | None = None, limits: Limits = LIMITS) -> PluginError:
    """The attack ends with one of `codes` (and every message fragment) in time, then the
    plugin's healthy handler succeeds and finds only its own note."""
    codes = {codes} if isinstance(codes, str) else codes
    started = time.monotonic()
    with pytest.raises(PluginError) as caught:
        await host.call(plugin.name, handler(plugin, "attack"), args or {}, {})
    elapsed = time.monotonic() - started
    if record_property is not None:
        record_property("elapsed_seconds", round(elapsed, 3))
        record_property("error", f"{caught.value.code}: {caught.value.message}")
    error = caught.value
    assert error.code in codes, error.message
    assert error.plugin == plugin.name
    for fragment in fragments:
        assert fragment in error.message, error.message
    assert elapsed < limits.seconds + GRACE, f"took {elapsed:.2f} s"
    await assert_healthy(host, plugin)
    return error


def only_on(host: PluginHost, wanted: str) -> None:
    if host.database.dialect != wanted:
        pytest.skip(f"{wanted}-specific attack")


# --- Lua: time ------------------------------------------------------------------------------


RUNAWAY_LUA = {
    "infinite-loop": "while true do end",
    "loop-with-locals": "local n = 0 while true do n = n + 1 end",
    "recursion-free-goto": "::top:: goto top",
}


@pytest.mark.parametrize("body", RUNAWAY_LUA.values(), ids=RUNAWAY_LUA.keys())
async def test_infinite_loop_hits_the_instruction_budget(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "looper", body)
    await assert_attack_fails(host, plugin, "BUDGET_EXCEEDED", "instruction budget exceeded",
                              record_property=record_property)


async def test_infinite_loop_hits_the_wall_clock_when_instructions_are_plenty(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "looper", "while true do end", limits=WALL_CLOCK)
    await assert_attack_fails(host, plugin, "TIMEOUT", "time budget exceeded",
                              record_property=record_property, limits=WALL_CLOCK)


SWALLOWING = {
    "pcall-returns": "local ok, err = pcall(function() while true do end end) return {swallowed = err}",
    "pcall-in-a-loop": "while true do pcall(function() while true do end end) end",
    "xpcall-handler-loops": "xpcall(function() while true do end end, function() while true do end end) return 'swallowed'",
    "nested-pcall": "local ok = pcall(pcall, pcall, function() while true do end end) return {swallowed = ok}",
    "error-object-pcall": "for i = 1, math.maxinteger do pcall(error, {}) end",
}


@pytest.mark.parametrize("limits, code", [(ROOMY_CLOCK, "BUDGET_EXCEEDED"), (WALL_CLOCK, "TIMEOUT")],
                         ids=["instructions", "wall-clock"])
@pytest.mark.parametrize("body", SWALLOWING.values(), ids=SWALLOWING.keys())
async def test_loop_inside_pcall_cannot_swallow_the_budget(host, tmp_path, record_property, body, limits, code):
    plugin = await install(host, tmp_path, "swallower", body, limits=limits)
    await assert_attack_fails(host, plugin, code, record_property=record_property, limits=limits)


COROUTINES = {
    "wrap": "coroutine.wrap(function() while true do end end)()",
    "resume-returns": "local co = coroutine.create(function() while true do end end)\n"
                      "local ok, err = coroutine.resume(co) return {swallowed = err}",
    "generator": "local gen = coroutine.wrap(function() while true do coroutine.yield(1) end end)\n"
                 "while true do gen() end",
    "close-handler": "while true do\n"
                     "  local co = coroutine.create(function()\n"
                     "    local guard <close> = setmetatable({}, {__close = function() while true do end end})\n"
                     "    coroutine.yield()\n"
                     "  end)\n"
                     "  coroutine.resume(co) coroutine.close(co)\n"
                     "end",
}


@pytest.mark.parametrize("body", COROUTINES.values(), ids=COROUTINES.keys())
async def test_loop_in_a_coroutine_hits_the_budget(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "spinner", body)
    await assert_attack_fails(host, plugin, "BUDGET_EXCEEDED", record_property=record_property)


async def test_endless_queries_from_a_coroutine_hit_the_wall_clock(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "spinner", """
        coroutine.wrap(function() while true do query("SELECT 1 AS one") end end)()""")
    await assert_attack_fails(host, plugin, "TIMEOUT", "time budget exceeded", record_property=record_property)


# --- Lua: memory, recursion, patterns -------------------------------------------------------------


MEMORY_BOMBS = {
    "table-of-tables": "local t = {} for i = 1, math.maxinteger do t[i] = {i} end",
    "string-doubling": "local s = 'x' while true do s = s .. s end",
    "rep-near-the-cap": "return string.rep('x', 15 * 1024 * 1024)",
    "bomb-inside-pcall": "local t = {} while true do pcall(function() t[#t + 1] = string.rep('x', 1e5) .. #t end) end",
    "json-decode": "local s = string.rep('x', 7e6) return #json.decode('[\"' .. s .. '\"]')[1]",
}


@pytest.mark.parametrize("body", MEMORY_BOMBS.values(), ids=MEMORY_BOMBS.keys())
async def test_memory_bomb_hits_the_memory_cap(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "bomber", body)
    await assert_attack_fails(host, plugin, "MEMORY_EXCEEDED", "memory limit exceeded",
                              record_property=record_property)
    assert plugin.runtime.memory_used() < LIMITS.memory_bytes // 2


async def test_huge_argument_from_a_client_is_refused_not_fatal(host, tmp_path, record_property):
    # Lupa builds argument tables outside Lua's protected mode: over the cap it used to abort
    # the whole process ("PANIC: unprotected error in call to Lua API").
    plugin = await install(host, tmp_path, "bomber", "return #args.text")
    await assert_attack_fails(host, plugin, "MEMORY_EXCEEDED", record_property=record_property,
                              args={"text": "x" * (20 * 1024 * 1024)})


async def test_huge_json_encode_result_is_refused_not_fatal(host, tmp_path, record_property):
    # A Python callback's result pushed over the cap used to deadlock the process.
    plugin = await install(host, tmp_path, "bomber", """
        local t = {} for i = 1, 4e5 do t[i] = 'abcdefghijklmnopqrstuvwxyz0123456789' end
        return #json.encode(t)""", limits=ROOMY_CLOCK)
    await assert_attack_fails(host, plugin, {"LUA_ERROR", "MEMORY_EXCEEDED"}, record_property=record_property,
                              limits=ROOMY_CLOCK)


AMPLIFIERS = {
    "result-names-one-string-many-times": "local s = string.rep('x', 1e6) local t = {} for i = 1, 1e4 do t[i] = s end return t",
    "result-is-a-shared-dag": "local t = {} for i = 1, 99 do t = {t, t} end return t",
    "json-encode-of-a-dag": "local t = {1} for i = 1, 99 do t = {t, t} end return json.encode(t)",
    "query-params-name-one-string-many-times": "local s = string.rep('x', 1e6) local p = {} for i = 1, 1e4 do p[i] = s end\n"
                                               "return query('SELECT 1 AS one', p)",
}


@pytest.mark.parametrize("body", AMPLIFIERS.values(), ids=AMPLIFIERS.keys())
async def test_values_that_grow_when_copied_to_python_are_refused(host, tmp_path, record_property, body):
    # One Lua string named 10,000 times is 10 GB once every mention is its own Python copy,
    # and a DAG of 99 levels names its leaf 2**99 times: the conversion's byte budget or the
    # call's deadline stops it.
    plugin = await install(host, tmp_path, "amplifier", body)
    error = await assert_attack_fails(host, plugin, {"LUA_ERROR", "HOST_ERROR", "TIMEOUT"},
                                      record_property=record_property)
    assert error.code == "TIMEOUT" or "bytes once converted" in error.message, error.message


RECURSION = {
    "lua-recursion": "local function f(n) return 1 + f(n + 1) end return f(1)",
    "index-metamethod": "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
    "recursion-through-pcall": "local function f() local ok, e = pcall(f) error(e, 0) end f()",
    "recursion-through-gsub": "local function f(s) return (string.gsub(s, '.', f)) end return f('ab')",
    "recursion-through-coroutines": "local function f() return coroutine.wrap(f)() end return f()",
    "deep-result": "local t = {} local cur = t for i = 1, 1e4 do cur.x = {} cur = cur.x end return t",
    "cyclic-result": "local t = {} t.t = t return t",
    "deep-json-decode": "return json.decode(string.rep('[', 1e5) .. string.rep(']', 1e5))",
}


@pytest.mark.parametrize("body", RECURSION.values(), ids=RECURSION.keys())
async def test_deep_recursion_ends_the_call_cleanly(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "recurser", body)
    error = await assert_attack_fails(host, plugin, {"LUA_ERROR", "MEMORY_EXCEEDED"},
                                      record_property=record_property)
    assert error.code == "MEMORY_EXCEEDED" or any(
        word in error.message for word in ("stack overflow", "nested deeper", "json.decode")), error.message


PATTERNS = {
    "backtracking-find": ("local s = string.rep('a', 1e5) return string.find(s, 'a*a*a*a*b')", "too complex"),
    "lazy-captures": ("return string.rep('a', 1e5):match('(.-)(.-)(.-)(.-)b')", "too complex"),
    "gmatch": ("local s = string.rep('a', 5e4) for m in s:gmatch('a*b') do end", "too complex"),
    "balanced": ("return string.rep('(', 5e4):find('%b()%b()%b()x')", "too complex"),
    "huge-subject": ("return string.rep('a', 2e6):find('a')", "exceeds the limit"),
    "huge-rep": ("return #string.rep('ab', 1e12, ',')", "too large"),
    "refused-in-pcall-then-loop": ("local ok = pcall(string.find, string.rep('a', 1e5), 'a*a*a*b') while true do end",
                                   "instruction budget exceeded"),
}


@pytest.mark.parametrize("body, fragment", PATTERNS.values(), ids=PATTERNS.keys())
async def test_catastrophic_pattern_matching_is_refused_in_time(host, tmp_path, record_property, body, fragment):
    plugin = await install(host, tmp_path, "matcher", body)
    await assert_attack_fails(host, plugin, {"LUA_ERROR", "BUDGET_EXCEEDED"}, fragment,
                              record_property=record_property)


# --- Lua: escaping the sandbox --------------------------------------------------------------------


BYTECODE = {
    "string-dump": ("return load(string.dump(function() end))()", "dump"),
    "method-dump": ("return load(('').dump(function() end))()", "dump"),
    "binary-chunk": ("return assert(load('\\27Lua\\84\\0\\25\\147\\r\\n\\26\\n'))()", "binary chunks are not allowed"),
    "binary-mode": ("return assert(load('\\27Lua', 'x', 'b'))()", "binary chunks are not allowed"),
    "reader-function": ("return load(function() return nil end)", "load expects a string chunk"),
}


@pytest.mark.parametrize("body, fragment", BYTECODE.values(), ids=BYTECODE.keys())
async def test_bytecode_cannot_be_loaded(host, tmp_path, record_property, body, fragment):
    plugin = await install(host, tmp_path, "loader", body)
    await assert_attack_fails(host, plugin, "LUA_ERROR", fragment, record_property=record_property)


PYTHON_REACH = {
    "python-global": "return python.eval('1')",
    "python-through-G": "return _G.python.builtins",
    "package-loaded": "return package.loaded.python",
    "function-metatable": "return getmetatable(query).__index",
    "string-metatable": "return getmetatable('').__index.dump",
    "args-dunder": "return args.__class__.__mro__",
    "host-error-attributes": "local ok, err = pcall(query, 'SELEKT') return err.__class__.__init__",
    "debug-registry": "return debug.getregistry()",
    "walk-everything": """
        local seen, found = {}, {}
        local function walk(value, path)
          if type(value) == 'userdata' then found[#found + 1] = path end
          if type(value) ~= 'table' or seen[value] then return end
          seen[value] = true
          for k, v in pairs(value) do walk(v, path .. '.' .. tostring(k)) end
          local mt = getmetatable(value)
          if type(mt) == 'table' then walk(mt, path .. '<mt>') end
        end
        walk(_G, '_G') walk(args, 'args') walk(ctx, 'ctx') walk(json.null, 'null')
        local tx = begin_transaction() walk(tx, 'tx') tx:rollback()
        error('python objects reachable: ' .. #found .. ' ' .. table.concat(found, ','))""",
}


@pytest.mark.parametrize("body", PYTHON_REACH.values(), ids=PYTHON_REACH.keys())
async def test_python_objects_are_unreachable(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "reacher", body)
    error = await assert_attack_fails(host, plugin, "LUA_ERROR", record_property=record_property)
    assert "python objects reachable: 0 " in error.message or "nil value" in error.message \
        or "boolean value" in error.message, error.message


FILES_AND_ENVIRONMENT = {
    "io-open": "return io.open('/etc/passwd'):read('a')",
    "os-getenv": "return os.getenv('HOME')",
    "os-execute": "return os.execute('id')",
    "os-remove": "return os.remove('/tmp/x')",
    "dofile": "return dofile('/etc/passwd')",
    "loadfile": "return loadfile('/etc/passwd')",
    "require": "return require('os').getenv('HOME')",
    "package-loadlib": "return package.loadlib('libc.so.6', 'system')",
    "collectgarbage": "return collectgarbage('count')",
}


@pytest.mark.parametrize("body", FILES_AND_ENVIRONMENT.values(), ids=FILES_AND_ENVIRONMENT.keys())
async def test_files_environment_and_processes_are_unreachable(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "reader", body)
    await assert_attack_fails(host, plugin, "LUA_ERROR", "nil value", record_property=record_property)


async def test_changing_shared_library_tables_stays_inside_one_plugin(host, tmp_path, record_property):
    vandal = await install(host, tmp_path, "vandal", """
        string.upper = function() return 'pwned' end
        string.find = function() return 1 end
        table.concat = nil; math.floor = nil; json.encode = nil
        getmetatable('').__index = {upper = function() return 'pwned' end}""")
    await assert_attack_fails(host, vandal, "LUA_ERROR", "boolean value", record_property=record_property)
    neighbour = await install(host, tmp_path, "neighbour", """
        return {('abc'):upper(), string.upper('x'), string.find('abc', 'b'), math.floor(1.5),
                table.concat({'a', 'b'}), json.encode({1})}""")
    assert await host.call(neighbour.name, handler(neighbour, "attack"), {}, {}) == ["ABC", "X", 2, 1, "ab", "[1]"]


async def test_string_metatable_cannot_be_replaced(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "vandal", "setmetatable('', {__index = {}})")
    await assert_attack_fails(host, plugin, "LUA_ERROR", "table expected", record_property=record_property)


# --- SQL: what a plugin may touch ----------------------------------------------------------------


CORE_SECRETS = ["SELECT * FROM users", "SELECT password_hash FROM users", "SELECT token_hash FROM sessions",
                "SELECT * FROM tokens", "SELECT * FROM plugin_roles", "SELECT * FROM schema_migrations",
                "SELECT count(*) AS n FROM sessions", "UPDATE users SET password_hash = 'x'",
                "DELETE FROM sessions"]


@pytest.mark.parametrize("sql", CORE_SECRETS)
async def test_core_credentials_are_unreadable(host, tmp_path, record_property, sql):
    plugin = await install(host, tmp_path, "snoop", f"return query({sql!r})")
    await assert_attack_fails(host, plugin, "HOST_ERROR", "not authorized", record_property=record_property)
    async with host.database.session() as session:
        assert await session.fetch_value(sa.text("SELECT password_hash FROM users")) == "secret-hash"
        assert await session.fetch_value(sa.text("SELECT count(*) FROM sessions")) == 1


async def test_readable_core_table_still_hides_the_password_hash(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "snoop", "return query('SELECT * FROM routes, users')", read=["routes"])
    await assert_attack_fails(host, plugin, "HOST_ERROR", "not authorized", record_property=record_property)


OTHER_PLUGIN = ["SELECT * FROM VICTIM_notes", "INSERT INTO VICTIM_notes (body) VALUES ('x')",
                "UPDATE VICTIM_notes SET body = 'pwned'", "DELETE FROM VICTIM_notes", "DROP TABLE VICTIM_notes",
                "ALTER TABLE VICTIM_notes ADD COLUMN x INTEGER"]


@pytest.mark.parametrize("sql", OTHER_PLUGIN)
async def test_another_plugins_tables_are_out_of_reach(host, tmp_path, record_property, sql):
    victim = await install(host, tmp_path, "victim", "error('unused')")
    await assert_healthy(host, victim)
    attacker = await install(host, tmp_path, "attacker", f"return exec({sql.replace('VICTIM', victim.name)!r})")
    await assert_attack_fails(host, attacker, "HOST_ERROR", "not authorized", record_property=record_property)
    await assert_healthy(host, victim, count=2)  # its first note is intact, untouched


async def test_insert_api_refuses_another_plugins_table(host, tmp_path, record_property):
    victim = await install(host, tmp_path, "victim", "error('unused')")
    attacker = await install(host, tmp_path, "attacker", f"return insert('{victim.name}_notes', {{body = 'x'}})")
    await assert_attack_fails(host, attacker, "HOST_ERROR", "not one of this plugin's tables",
                              record_property=record_property)


SQLITE_ESCAPES = {
    "attach": ("ATTACH DATABASE '/tmp/modula-stolen.db' AS stolen", "ATTACH"),
    "vacuum-into": ("VACUUM INTO '/tmp/modula-stolen.db'", "not authorized"),
    "pragma-write": ("PRAGMA foreign_keys = OFF", "PRAGMA"),
    "pragma-writable-schema": ("PRAGMA writable_schema = ON", "PRAGMA"),
    "pragma-function": ("SELECT * FROM pragma_table_info('users')", "not authorized"),
    "load-extension": ("SELECT load_extension('/usr/lib/x.so')", "load_extension"),
    "readfile": ("SELECT readfile('/etc/passwd')", "readfile"),
    "sqlite-master": ("SELECT sql FROM sqlite_master", "not authorized"),
    "dbstat": ("SELECT name FROM dbstat", "not authorized"),
    "create-table": ("CREATE TABLE @_extra (id INTEGER)", "not authorized"),
    "create-temp-trigger": ("CREATE TEMP TRIGGER t AFTER INSERT ON @_notes BEGIN DELETE FROM users; END", "not authorized"),
    "transaction-statement": ("COMMIT", "transaction API"),
}


@pytest.mark.parametrize("sql, fragment", SQLITE_ESCAPES.values(), ids=SQLITE_ESCAPES.keys())
async def test_sqlite_escapes_are_refused(host, tmp_path, record_property, sql, fragment):
    only_on(host, "sqlite")
    plugin = await install(host, tmp_path, "attacker", f"return exec({sql!r})")
    await assert_attack_fails(host, plugin, "HOST_ERROR", fragment, record_property=record_property)
    assert not Path("/tmp/modula-stolen.db").exists()


POSTGRES_ESCAPES = {
    "copy-to-program": "COPY (SELECT 1) TO PROGRAM 'id'",
    "copy-to-file": "COPY (SELECT 1) TO '/tmp/modula-stolen.csv'",
    "copy-from-file": "COPY @_notes (body) FROM '/etc/passwd'",
    "pg-read-file": "SELECT pg_read_file('/etc/passwd')",
    "pg-ls-dir": "SELECT pg_ls_dir('.')",
    "dblink": "SELECT dblink_connect('dbname=postgres')",
    "create-extension": "CREATE EXTENSION dblink",
    "create-trusted-extension": "CREATE EXTENSION pgcrypto",
    "set-role": "SET ROLE postgres",
    "set-session-authorization": "SET SESSION AUTHORIZATION postgres",
    "pg-notify": "SELECT pg_notify('modula', 'spoofed')",
    "notify": "NOTIFY modula, 'spoofed'",
    "listen": "LISTEN modula",
    "do-block": "DO $$ BEGIN PERFORM 1; END $$",
    "alter-own-role": "ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-the-plugin'",
    "lo-create": "SELECT lo_create(0)",
    "lo-from-bytea": "SELECT lo_from_bytea(0, 'x')",
    "lo-import": "SELECT lo_import('/etc/passwd')",
    "lo-export": "SELECT lo_export(1, '/tmp/modula-stolen')",
    "create-table": "CREATE TABLE @_extra (id INTEGER)",
    "create-temp-table": "CREATE TEMP TABLE @_tmp (id INTEGER)",
    "create-function": "CREATE FUNCTION @_f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "create-schema": "CREATE SCHEMA @",
    "pg-authid": "SELECT rolpassword FROM pg_authid",
    "terminate-backends": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
    "transaction-statement": "COMMIT",
}


@pytest.mark.parametrize("sql", POSTGRES_ESCAPES.values(), ids=POSTGRES_ESCAPES.keys())
async def test_postgres_escapes_are_refused(host, tmp_path, record_property, sql):
    only_on(host, "postgresql")
    plugin = await install(host, tmp_path, "attacker", f"return exec({sql!r})")
    await assert_attack_fails(host, plugin, "HOST_ERROR", record_property=record_property)
    assert not Path("/tmp/modula-stolen.csv").exists()


async def test_postgres_reset_role_gains_nothing(host, tmp_path, record_property):
    only_on(host, "postgresql")
    plugin = await install(host, tmp_path, "attacker", """
        exec('RESET ROLE')
        exec('SET statement_timeout = 0')
        return query('SELECT * FROM users')""")
    await assert_attack_fails(host, plugin, "HOST_ERROR", "not authorized", record_property=record_property)


async def test_postgres_session_state_does_not_outlive_the_call(host, tmp_path):
    only_on(host, "postgresql")
    # The provisioning lock and a settings change, taken by a call that then returns normally.
    plugin = await install(host, tmp_path, "holder", """
        exec("SELECT pg_advisory_lock(74211002)")
        exec("SET search_path = pg_catalog")
        return 'held'""")
    assert await host.call(plugin.name, handler(plugin, "attack"), {}, {}) == "held"
    other = await asyncio.wait_for(install(host, tmp_path, "other", "error('unused')"), 10)  # takes the lock
    await assert_healthy(host, other)
    await assert_healthy(host, plugin)  # its table resolves: search_path is back


async def test_postgres_plugin_holds_no_more_connections_than_its_pool(host, tmp_path):
    only_on(host, "postgresql")
    plugin = await install(host, tmp_path, "crowd", "error('unused')")
    grant = PluginGrant(plugin.name, own_tables=frozenset(plugin.tables))

    async def connections_seen() -> int:
        async with plugin_sql(host.database, grant, pool_size=2) as sql:
            rows = await sql.query("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = current_user")
            await asyncio.sleep(0.1)  # hold the connection while the others ask for theirs
            return rows[0]["n"]

    assert max(await asyncio.gather(*(connections_seen() for _ in range(6)))) == 2


# --- SQL: time and transactions -----------------------------------------------------------------


RUNAWAY_STATEMENTS = {
    "recursive-cte": f"return query({RUNAWAY_SQL!r})",
    "recursive-cte-in-pcall-then-again": f"pcall(query, {RUNAWAY_SQL!r}) return query({RUNAWAY_SQL!r})",
    "recursive-cte-in-a-transaction": f"local tx = begin_transaction() tx:insert('@_notes', {{body = 'lost'}}) return tx:query({RUNAWAY_SQL!r})",
    "recursive-cte-write-in-a-transaction": "return transaction(function(tx) tx:insert('@_notes', {body = 'lost'}) "
                                            f"return tx:exec('UPDATE @_notes SET body = ({RUNAWAY_SQL})') end)",
}


@pytest.mark.parametrize("body", RUNAWAY_STATEMENTS.values(), ids=RUNAWAY_STATEMENTS.keys())
async def test_runaway_recursive_query_ends_with_the_call(host, tmp_path, record_property, body):
    plugin = await install(host, tmp_path, "sql", body)
    await assert_attack_fails(host, plugin, "TIMEOUT", "time budget exceeded", record_property=record_property)


async def test_postgres_sleep_ends_with_the_call(host, tmp_path, record_property):
    only_on(host, "postgresql")
    plugin = await install(host, tmp_path, "sql", "return query('SELECT pg_sleep(30)')")
    await assert_attack_fails(host, plugin, "TIMEOUT", record_property=record_property)


UNINTERRUPTIBLE = {
    # One C call that neither SQLite's progress handler nor PostgreSQL's cancel (or even
    # pg_terminate_backend) can stop: seconds for these sizes, hours for longer strings.
    "sqlite-printf-precision": ("sqlite", "SELECT length(printf('%.*c', 2147483647, 'x')) AS n", "printf"),
    "sqlite-trim-by-a-set": ("sqlite", "SELECT ltrim(hex(zeroblob(30000)), replace(hex(zeroblob(30000)), '0', '1') || '0') AS n", "ltrim"),
    "postgresql-btrim-by-a-set": ("postgresql", "SELECT btrim(repeat('0', 30000), repeat('1', 30000) || '0') AS n", "btrim"),
    "postgresql-trim-syntax": ("postgresql", "SELECT trim(leading repeat('1', 30000) || '0' from repeat('0', 30000)) AS n", "ltrim"),
    "postgresql-translate": ("postgresql", "SELECT translate(repeat('0', 30000), repeat('1', 30000) || '0', 'x') AS n", "translate"),
}


@pytest.mark.parametrize("wanted, sql, function", UNINTERRUPTIBLE.values(), ids=UNINTERRUPTIBLE.keys())
async def test_uninterruptible_string_functions_are_withheld(host, tmp_path, record_property, wanted, sql, function):
    only_on(host, wanted)
    plugin = await install(host, tmp_path, "stringer", f"return query({sql!r})")
    await assert_attack_fails(host, plugin, "HOST_ERROR", "not authorized", function, record_property=record_property)


async def test_huge_result_ends_within_the_budget(host, tmp_path, record_property):
    # SQLite refuses it once the fetched rows pass grant.max_result_bytes; on PostgreSQL the
    # driver fetches the whole result, so only the call's deadline (or the Lua memory cap, once
    # the rows reach Lua) bounds what the host holds meanwhile.
    rows = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5000000) SELECT x, 'padding' AS p FROM r"
    plugin = await install(host, tmp_path, "hoarder", f"return #query({rows!r})")
    await assert_attack_fails(host, plugin, {"HOST_ERROR", "MEMORY_EXCEEDED", "TIMEOUT"},
                              record_property=record_property)


async def test_huge_value_is_refused(host, tmp_path, record_property):
    only_on(host, "sqlite")
    plugin = await install(host, tmp_path, "hoarder", "return #query('SELECT zeroblob(200000000) AS b')[1].b")
    await assert_attack_fails(host, plugin, "HOST_ERROR", "too big", record_property=record_property)


async def test_transaction_left_open_is_rolled_back(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "idler", """
        local tx = begin_transaction()
        tx:insert('@_notes', {body = 'never committed'})
        return 'bye'""")
    await assert_attack_fails(host, plugin, "LUA_ERROR", "transaction left open", record_property=record_property)


async def test_transaction_left_open_by_a_runaway_loop_is_rolled_back(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "idler", """
        local tx = begin_transaction()
        tx:insert('@_notes', {body = 'never committed'})
        while true do end""")
    await assert_attack_fails(host, plugin, "BUDGET_EXCEEDED", record_property=record_property)


async def test_transaction_kept_in_a_global_is_dead_in_the_next_call(host, tmp_path, record_property):
    plugin = await install(host, tmp_path, "idler", """
        if saved == nil then
          saved = begin_transaction()
          saved:rollback()
          error('first call keeps the handle')
        end
        return saved:insert('@_notes', {body = 'replayed'})""")
    with pytest.raises(PluginError):
        await host.call(plugin.name, handler(plugin, "attack"), {}, {})
    await assert_attack_fails(host, plugin, "LUA_ERROR", "already finished or not from this call",
                              record_property=record_property)


async def test_transaction_held_open_does_not_block_other_plugins_past_its_budget(host, tmp_path, record_property):
    holder = await install(host, tmp_path, "holder", """
        local tx = begin_transaction()
        tx:insert('@_notes', {body = 'held'})
        while true do tx:query('SELECT 1 AS one') end""")
    await assert_attack_fails(host, holder, "TIMEOUT", record_property=record_property)
    other = await install(host, tmp_path, "other", "error('unused')")
    await assert_healthy(host, other)
