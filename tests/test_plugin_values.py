"""One meaning per value in plugin tables, on both dialects: every writer stores a datetime in one
form (SQL compares and orders them right; Lua sees ISO 8601 with Z), Lua's own insert runs the
table's hooks as the generated mutations do, and numeric values reach hooks as exact decimal text."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from modula.db import column_values, stored_datetimes
from modula.db.migrations import migrate
from modula_testing import running_app, token_client

DIARY = """
plugin.define_table{name = "diary_notes", fields = {
  {name = "id", type = "integer", primary_key = true},
  {name = "title", type = "text", not_null = true},
  {name = "at", type = "datetime"},
  {name = "amount", type = "numeric"},
  {name = "trail", type = "text"},
}}
plugin.define_table{name = "diary_log", fields = {
  {name = "id", type = "integer", primary_key = true},
  {name = "note_title", type = "text", not_null = true},
  {name = "event", type = "text", not_null = true},
}}

plugin.on("before_insert", "diary_notes", function(row)
  if row.title == "hooked" then row.at = "2026-12-02T03:56:19+01:00" end  -- 02:56:19 UTC
  if row.title == "doubled" then row.amount = "24691357802469135.78" end   -- exact text, no double
  row.trail = "before " .. type(row.amount) .. " " .. tostring(row.amount) .. " " .. tostring(row.at)
  return row
end)
plugin.on("after_insert", "diary_notes", function(row)
  exec("INSERT INTO diary_log (note_title, event) VALUES (?, ?)", {row.title, "after " .. tostring(row.at)})
end)

plugin.mutation{name = "viaInsert", args = {title = "String!", at = "String", amount = "String"}, returns = "JSON",
  handler = function(args) return insert("diary_notes", {title = args.title, at = args.at, amount = args.amount}) end}
plugin.mutation{name = "viaTx", args = {title = "String!", at = "String"}, returns = "JSON",
  handler = function(args)
    return transaction(function(tx) return tx:insert("diary_notes", {title = args.title, at = args.at}) end)
  end}
plugin.mutation{name = "viaExec", args = {title = "String!", at = "String"}, returns = "JSON",
  handler = function(args) return exec("INSERT INTO diary_notes (title, at) VALUES (?, ?)", {args.title, args.at or json.null}) end}
plugin.query{name = "since", args = {at = "String!"}, returns = "JSON",
  handler = function(args) return query("SELECT title, at FROM diary_notes WHERE at >= ? ORDER BY at", {args.at}) end}
plugin.query{name = "latest", returns = "JSON",
  handler = function() return query_one("SELECT title, at FROM diary_notes ORDER BY at DESC LIMIT 1") end}
"""

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def write_plugin(folder: Path, name: str, init_lua: str) -> Path:
    plugin = folder / name
    plugin.mkdir(parents=True)
    (plugin / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0", "api": 1}))
    (plugin / "init.lua").write_text(init_lua)
    return plugin


@pytest.fixture
async def diary(database_url, tmp_path):
    write_plugin(tmp_path / "plugins", "diary", DIARY)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with token_client(app, "admin", roles=["admin"]) as client:
            yield app, client


async def stored(app, sql: str) -> list[dict]:
    async with app.state.database.session() as session:
        return await session.fetch_all(sa.text(sql))


async def test_every_writer_stores_one_datetime_form_that_sql_compares_and_orders(diary):
    app, client = diary
    await client.data('mutation { insertDiaryNotes(objects: [{title: "generated", at: "2026-12-02T02:56:22Z"},'
                      ' {title: "hooked", at: "2026-12-01T00:00:00Z"}]) { affectedRows } }')
    from_insert = await client.data('mutation { viaInsert(title: "insert", at: "2026-12-02T02:56:17Z") }')
    await client.data('mutation { viaTx(title: "tx", at: "2026-12-02T04:56:20.5+02:00") }')
    await client.data('mutation { viaExec(title: "exec", at: "2026-12-02T02:56:18Z") }')
    order = ["insert", "exec", "hooked", "tx", "generated"]

    found = (await client.data('{ since(at: "2026-12-02T02:56:17Z") }'))["since"]
    later = (await client.data('{ since(at: "2026-12-02T02:56:19.000001Z") }'))["since"]
    listed = await client.data("{ diaryNotes(orderBy: {at: ASC}) { title } }")
    latest = (await client.data("{ latest }"))["latest"]

    assert [row["title"] for row in found] == order
    assert [row["title"] for row in later] == ["tx", "generated"]
    assert [row["title"] for row in listed["diaryNotes"]] == order
    assert all(ISO_Z.fullmatch(row["at"]) for row in found), found
    assert found[3]["at"] == "2026-12-02T02:56:20.500000Z" and latest == found[-1]
    assert from_insert["viaInsert"]["at"] == "2026-12-02T02:56:17.000000Z"
    in_sql = await stored(app, "SELECT title FROM diary_notes WHERE at >= '2026-12-02 02:56:19' ORDER BY at")
    assert [row["title"] for row in in_sql] == ["hooked", "tx", "generated"]
    if app.state.database.is_sqlite:  # the one stored form, the core's too
        texts = await stored(app, "SELECT at FROM diary_notes UNION ALL SELECT created_at FROM plugins")
        assert all(column_values.SQLITE_TEXT.fullmatch(row["at"]) for row in texts), texts


async def test_lua_insert_runs_the_tables_hooks_and_raw_sql_runs_none(diary):
    app, client = diary
    await client.data('mutation { insertDiaryNotes(objects: [{title: "generated"}]) { affectedRows } }')
    returned = (await client.data('mutation { viaInsert(title: "insert") }'))["viaInsert"]
    await client.data('mutation { viaTx(title: "tx") }')
    await client.data('mutation { viaExec(title: "exec") }')

    notes = await stored(app, "SELECT title, trail FROM diary_notes ORDER BY id")
    log = await stored(app, "SELECT note_title, event FROM diary_log ORDER BY id")
    assert [(row["title"], row["trail"]) for row in notes] == [
        ("generated", "before nil nil nil"), ("insert", "before nil nil nil"), ("tx", "before nil nil nil"), ("exec", None)]
    assert returned["trail"] == "before nil nil nil"  # the row as stored, the hook's change included
    assert [(row["note_title"], row["event"]) for row in log] == [
        ("generated", "after nil"), ("insert", "after nil"), ("tx", "after nil")]


async def test_a_value_lua_inserts_that_does_not_fit_its_column_is_refused_naming_it(diary):
    app, client = diary
    result = await client.execute('mutation { viaInsert(title: "bad", at: "yesterday") }')
    assert "diary_notes.at: not a valid datetime" in result["errors"][0]["message"]
    assert await stored(app, "SELECT count(*) AS n FROM diary_notes") == [{"n": 0}]
    assert await stored(app, "SELECT count(*) AS n FROM diary_log") == [{"n": 0}]


async def test_a_hook_that_inserts_into_its_own_table_stops_with_what_to_look_at(database_url, tmp_path):
    write_plugin(tmp_path / "plugins", "loop", """
plugin.define_table{name = "loop_items", fields = {{name = "id", type = "integer", primary_key = true}}}
plugin.on("before_insert", "loop_items", function(row) insert("loop_items", {}) end)
plugin.mutation{name = "loopAdd", returns = "JSON", handler = function() return insert("loop_items", {}) end}
""")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with token_client(app, "admin", roles=["admin"]) as client:
            result = await client.execute("mutation { loopAdd }")
        count = await stored(app, "SELECT count(*) AS n FROM loop_items")
    assert "hooks nested 8 deep: does the before_insert hook of loop_items insert into its own table?" in \
        result["errors"][0]["message"]
    assert count == [{"n": 0}]


@pytest.mark.parametrize("amount", ["12345678901234567.89", "12", "0.5"])
async def test_numeric_values_reach_hooks_as_their_exact_decimal_text(diary, amount):
    app, client = diary
    generated = await client.data(f'mutation {{ insertDiaryNotes(objects: [{{title: "generated", amount: "{amount}"}}]) '
                                  "{ returning { amount trail } } }")
    from_lua = (await client.data(f'mutation {{ viaInsert(title: "insert", amount: "{amount}") }}'))["viaInsert"]
    assert generated["insertDiaryNotes"]["returning"][0]["trail"] == f"before string {amount} nil"
    assert from_lua["trail"] == f"before string {amount} nil"
    assert isinstance(from_lua["amount"], str)  # a stored numeric reaches Lua as text too
    if not app.state.database.is_sqlite:  # SQLite's NUMERIC keeps what a double keeps (plugins/README.md)
        assert generated["insertDiaryNotes"]["returning"][0]["amount"] == amount
        assert from_lua["amount"] == amount


async def test_a_hook_sets_a_numeric_exactly_from_text(diary):
    app, client = diary
    result = await client.data('mutation { insertDiaryNotes(objects: [{title: "doubled", amount: "1"}]) '
                               "{ returning { amount } } }")
    [row] = await stored(app, "SELECT amount FROM diary_notes")
    if app.state.database.is_sqlite:
        assert row["amount"] == float("24691357802469135.78")
    else:
        assert row["amount"] == Decimal("24691357802469135.78")
        assert result["insertDiaryNotes"]["returning"][0]["amount"] == "24691357802469135.78"


async def test_the_migration_rewrites_plugin_datetimes_written_in_other_forms(diary):
    app, client = diary
    old_forms = [("lua insert", "2026-12-02 02:56:17+00:00"), ("exec", "2026-12-02T02:56:18Z"),
                 ("offset", "2026-12-02T03:56:19.25+01:00"), ("generated", "2026-12-02 02:56:22.000000")]
    database = app.state.database
    async with database.session() as session, session.transaction():
        for title, text in old_forms:
            value = text if database.is_sqlite else column_values.parse_datetime(text)
            await session.execute(sa.text("INSERT INTO diary_notes (title, at) VALUES (:title, :at)")
                                  .bindparams(title=title, at=value))
        await session.execute(sa.text("INSERT INTO diary_notes (title) VALUES ('none')"))
        await session.execute(sa.text("DELETE FROM schema_migrations WHERE version = '0014_canonical_datetimes'"))
    async with database.session() as session:
        assert await migrate(session) == (["0014_canonical_datetimes"] if database.is_sqlite else [])

    found = (await client.data('{ since(at: "2026-12-02T02:56:18Z") }'))["since"]
    assert [row["title"] for row in found] == ["exec", "offset", "generated"]
    assert found[1]["at"] == "2026-12-02T02:56:19.250000Z"
    if database.is_sqlite:
        texts = await stored(app, "SELECT at FROM diary_notes ORDER BY id")
        assert [row["at"] for row in texts] == ["2026-12-02 02:56:17.000000", "2026-12-02 02:56:18.000000",
                                                "2026-12-02 02:56:19.250000", "2026-12-02 02:56:22.000000", None]
        async with database.session() as session:
            assert await stored_datetimes.plugin_datetime_columns(session) == [("diary_notes", "at")]


async def test_an_iso_datetime_written_by_raw_sql_into_a_text_column(diary):
    app, client = diary
    await client.data('mutation { viaExec(title: "2026-12-02T03:56:18+01:00", at: "2026-12-02T02:56:18Z") }')
    [row] = await stored(app, "SELECT title FROM diary_notes")
    # PostgreSQL's statement says the column is text; SQLite's cannot, and binds it as a datetime.
    expected = "2026-12-02 02:56:18.000000" if app.state.database.is_sqlite else "2026-12-02T03:56:18+01:00"
    assert row["title"] == expected


def test_lua_and_sqlite_forms_of_one_instant():
    moment = dt.datetime(2026, 12, 2, 3, 56, 19, 250000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert column_values.sqlite_text(moment) == "2026-12-02 02:56:19.250000"
    assert column_values.iso_z(moment) == "2026-12-02T02:56:19.250000Z"
    assert column_values.parse_datetime("2026-12-02T02:56:19.250000123Z") == moment
    assert column_values.sql_parameter("2026-12-02T03:56:19.25+01:00", "sqlite") == "2026-12-02 02:56:19.250000"
    assert column_values.sql_parameter("2026-12-02", "sqlite") == "2026-12-02"  # a date stays a date
    assert column_values.sql_parameter("2026-13-02T00:00:00Z", "sqlite") == "2026-13-02T00:00:00Z"  # no date-time
    assert column_values.sql_parameter("2026-12-02T02:56:19Z", "postgresql") == "2026-12-02T02:56:19Z"
