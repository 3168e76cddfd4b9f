"""Column defaults of plugin tables: `default = "now"` for date and datetime columns fills what
an insert leaves out, on both dialects; a default that does not fit its column is refused by
`plugins check` and install, naming the column, before any table exists."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from modula.db.introspection import reflect_tables
from modula.lua.declarations import FieldDecl, TableDecl
from modula.plugins import tables
from modula.plugins.check import check_plugin
from modula.plugins.errors import PluginError
from modula_testing import running_app, token_client

NOTES = """
plugin.define_table{name = "diary_notes", fields = {
  {name = "id", type = "integer", primary_key = true},
  {name = "title", type = "text", not_null = true},
  {name = "written_at", type = "datetime", not_null = true, default = "now"},
  {name = "day", type = "date", not_null = true, default = "now"},
}}
plugin.mutation{name = "diaryAdd", args = {title = "String!"}, returns = "JSON", handler = function(args, ctx)
  return insert("diary_notes", {title = args.title})
end}
"""


def write_plugin(folder: Path, name: str, init_lua: str) -> Path:
    plugin = folder / name
    plugin.mkdir(parents=True)
    (plugin / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0", "api": 1}))
    (plugin / "init.lua").write_text(init_lua)
    return plugin


async def test_a_now_default_fills_date_and_datetime_columns_an_insert_leaves_out(database_url, tmp_path):
    write_plugin(tmp_path / "plugins", "diary", NOTES)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with token_client(app, "admin", roles=["admin"]) as client:
            inserted = await client.data('mutation { insertDiaryNotes(objects: [{title: "generated"}]) '
                                         "{ returning { title writtenAt day } } }")
            from_lua = await client.data('mutation { diaryAdd(title: "lua") }')
            listed = await client.data("{ diaryNotes(orderBy: {id: ASC}) { title writtenAt day } }")
        async with app.state.database.session() as session:
            stored = await session.fetch_all(sa.text("SELECT title, written_at, day FROM diary_notes ORDER BY id"))
    row = inserted["insertDiaryNotes"]["returning"][0]
    assert row["title"] == "generated"
    written = dt.datetime.fromisoformat(row["writtenAt"].replace("Z", "+00:00"))
    assert before <= written <= dt.datetime.now(dt.timezone.utc)
    assert row["day"] == written.date().isoformat()
    assert from_lua["diaryAdd"]["title"] == "lua" and from_lua["diaryAdd"]["written_at"]
    assert [(n["title"], n["day"]) for n in listed["diaryNotes"]] == [("generated", row["day"]), ("lua", row["day"])]
    assert [r["title"] for r in stored] == ["generated", "lua"]
    assert all(r["written_at"] is not None and r["day"] is not None for r in stored)
    if database_url.startswith("sqlite"):  # the generated API's own stored form: same-second rows order right
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", r["written_at"]) for r in stored)


BAD_DEFAULTS = [
    ("datetime", '"CURRENT_TIMESTAMP"', 'default \'CURRENT_TIMESTAMP\' for a datetime column: only "now" is supported'),
    ("date", '"yesterday"', "default 'yesterday' is not a date (YYYY-MM-DD) or \"now\""),
    ("integer", '"many"', "default 'many' is not an integer"),
    ("integer", "1.5", "default 1.5 is not an integer"),
    ("boolean", "1", "default 1 is not a boolean (true or false)"),
    ("text", '"now"', 'default "now" is only for date and datetime columns, not text'),
    ("json", '"{oops"', "default '{oops' is not JSON text"),
]


@pytest.mark.parametrize("column_type, default, message", BAD_DEFAULTS)
async def test_check_refuses_a_default_that_does_not_fit_its_column_naming_it(tmp_path, column_type, default, message):
    plugin = write_plugin(tmp_path, "diary", f"""
plugin.define_table{{name = "diary_notes", fields = {{
  {{name = "id", type = "integer", primary_key = true}},
  {{name = "odd", type = "{column_type}", default = {default}}},
}}}}
""")
    report = await check_plugin(plugin)
    assert not report.ok
    assert len(report.problems) == 1 and f"diary_notes.odd: {message}" in report.problems[0], report.problems


async def test_install_refuses_a_bad_default_and_creates_nothing(app, tmp_path):
    plugin = write_plugin(tmp_path, "diary", """
plugin.define_table{name = "diary_notes", fields = {
  {name = "id", type = "integer", primary_key = true},
  {name = "created_at", type = "datetime", not_null = true, default = "CURRENT_TIMESTAMP"},
}}
""")
    with pytest.raises(PluginError) as refused:
        await app.state.plugins.install(plugin)
    assert "diary_notes.created_at: default 'CURRENT_TIMESTAMP'" in refused.value.message
    assert await reflect_tables(app.state.database.url, prefix="diary_") == {}


async def test_a_now_column_added_to_an_existing_sqlite_table_is_refused_with_what_to_do(app):
    database = app.state.database
    first = [TableDecl("diary_notes", [FieldDecl("id", "integer", primary_key=True)])]
    live = await reflect_tables(database.url, prefix="diary_")
    async with database.session() as session, session.transaction():
        await tables.apply(session, tables.plan("diary", tables.declared_tables("diary", first, live), live, database.dialect))
    live = await reflect_tables(database.url, prefix="diary_")
    later = [TableDecl("diary_notes", [FieldDecl("id", "integer", primary_key=True),
                                       FieldDecl("seen_at", "datetime", default="now")])]
    metadata = tables.declared_tables("diary", later, live)
    if database.is_sqlite:
        with pytest.raises(PluginError, match='new column diary_notes.seen_at with default "now": SQLite cannot add'):
            tables.plan("diary", metadata, live, database.dialect)
        return
    async with database.session() as session, session.transaction():
        await tables.apply(session, tables.plan("diary", metadata, live, database.dialect))
        await session.execute(sa.text("INSERT INTO diary_notes (id) VALUES (1)"))
        assert await session.fetch_value(sa.text("SELECT seen_at IS NOT NULL FROM diary_notes")) is True
