"""Mistakes a plugin author makes explain themselves: the file and line of the declaration and the
nearest name; what an install stores and copies is the plugin's code, not its tests; a table
change under an unchanged version is warned about."""

from __future__ import annotations

import json
import logging

import pytest

from modula.db.introspection import reflect_tables
from modula.plugins import registry
from modula.plugins.errors import PluginError
from test_plugins import write_plugin

THREADS = """
plugin.define_table{name = "forum_threads", fields = {
  {name = "thread_id", type = "integer", primary_key = true},
  {name = "title", type = "text"}}}
"""


async def test_an_unknown_output_type_names_its_line_and_the_nearest_type(app, tmp_path):
    write_plugin(tmp_path / "plugins", "forum", THREADS + """
plugin.query{name = "forumLatest", returns = "[ForumThreads!]!",
  handler = function(args, ctx) return {} end}
""")
    report = await app.state.schemas.load_plugin("forum")
    assert report.failures["forum"] == ("plugin forum (init.lua:6): plugin.query forumLatest: unknown output type "
                                        "ForumThreads — did you mean ForumThread?")


async def test_an_unknown_input_type_and_field_target_name_their_lines(app, tmp_path):
    write_plugin(tmp_path / "plugins", "forum", THREADS + """
plugin.mutation{name = "forumPost", args = {thread = "ForumThreadInsertInpt!"}, returns = "Boolean",
  handler = function(args, ctx) return true end}
""")
    report = await app.state.schemas.load_plugin("forum")
    assert report.failures["forum"] == ("plugin forum (init.lua:6): plugin.mutation forumPost, argument thread: unknown "
                                        "input type ForumThreadInsertInpt — did you mean ForumThreadInsertInput?")
    write_plugin(tmp_path / "plugins", "forum", THREADS + """

plugin.field{type = "ForumThreads", name = "shout", returns = "String",
  handler = function(row, args, ctx) return "!" end}
""")
    report = await app.state.schemas.load_plugin("forum")
    assert report.failures["forum"].startswith("plugin forum (init.lua:7): plugin.field ForumThreads.shout: "
                                               "ForumThreads is not one of this plugin's generated types — did you "
                                               "mean ForumThread?")


async def test_a_hook_on_an_unknown_table_names_its_line_and_installs_nothing(app, tmp_path):
    folder = write_plugin(tmp_path / "src", "forum", THREADS + """
plugin.on("before_insert", "forum_thread", function(row, ctx) return row end)
""")
    with pytest.raises(PluginError) as caught:
        await app.state.plugins.install(folder)
    assert caught.value.location == "init.lua:6"
    assert caught.value.message.endswith("hook before_insert names table 'forum_thread', which the plugin does not "
                                         "define — did you mean forum_threads?")
    assert await reflect_tables(app.state.database.url, prefix="forum_") == {}
    async with app.state.database.session() as session:
        assert await registry.get_plugin(session, "forum") is None


async def test_a_foreign_key_to_an_unknown_table_names_the_declaring_line(app, tmp_path):
    folder = write_plugin(tmp_path / "src", "forum", THREADS + """
plugin.define_table{name = "forum_posts", fields = {
  {name = "post_id", type = "integer", primary_key = true},
  {name = "thread_id", type = "integer", foreign_key = "forum_thread"}}}
""")
    with pytest.raises(PluginError) as caught:
        await app.state.plugins.install(folder)
    assert caught.value.code == "INVALID_TABLE" and caught.value.location == "init.lua:6"
    assert "forum_posts.thread_id: foreign key names unknown table forum_thread — did you mean forum_threads?" in (
        caught.value.message)
    assert await reflect_tables(app.state.database.url, prefix="forum_") == {}


async def test_a_plugins_tests_are_neither_stored_nor_run(app, tmp_path):
    folder = write_plugin(tmp_path / "src", "forum", THREADS + 'local util = "lib/util.lua is code"\n')
    for relative in ("lib/util.lua", "tests/helpers.lua", "spec/forum_spec.lua", "test_forum.lua", "threads_test.lua",
                     "tests/test_forum.py"):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text("-- " + relative + "\n")
    plugin = await app.state.plugins.install(folder)
    assert sorted(plugin.manifest.files.files) == ["init.lua", "lib/util.lua", "plugin.json"]
    async with app.state.database.session() as session:
        row = await registry.get_plugin(session, "forum")
        stored = await registry.stored_files(session, row["id"])
    assert sorted(stored.files) == ["init.lua", "lib/util.lua", "plugin.json"]
    (folder / "tests" / "helpers.lua").write_text("-- changed: still not the plugin's code\n")
    assert registry.checksum(folder) == row["checksum"]  # editing a test is no new version


async def test_a_table_change_under_the_same_version_is_warned_about(app, tmp_path, caplog):
    folder = write_plugin(tmp_path / "src", "forum", THREADS)
    await app.state.plugins.install(folder)
    caplog.set_level(logging.WARNING, logger="modula.plugins")
    steps: list[str] = []
    (folder / "init.lua").write_text(THREADS.replace('{name = "title", type = "text"}',
                                                     '{name = "title", type = "text"}, {name = "body", type = "text"}'))
    plugin = await app.state.plugins.install(folder, progress=steps.append)
    warning = ("plugin forum: its schema changed (add column forum_threads.body) but its version is still 1.0.0: "
               'bump "version" in plugin.json, so that one version always means one schema')
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [warning]
    assert f"warning: {warning}" in steps
    assert "body" in {c.name for c in plugin.tables["forum_threads"].columns}  # warned, not refused

    caplog.clear()
    manifest = json.loads((folder / "plugin.json").read_text())
    (folder / "plugin.json").write_text(json.dumps({**manifest, "version": "1.1.0"}))
    (folder / "init.lua").write_text(THREADS.replace('{name = "title", type = "text"}',
                                                     '{name = "title", type = "text"}, {name = "body", type = "text"}, '
                                                     '{name = "pinned", type = "boolean"}'))
    await app.state.plugins.install(folder)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


async def test_a_graphql_change_under_the_same_version_is_warned_about_and_code_alone_is_not(app, tmp_path, caplog):
    query = 'plugin.query{name = "forumLatest", returns = "[ForumThread!]!", description = "%s",\n' \
            '  handler = function(args, ctx) return query("SELECT * FROM forum_threads %s") end}\n'
    folder = write_plugin(tmp_path / "src", "forum", THREADS + query % ("Newest first", "ORDER BY thread_id DESC"))
    await app.state.plugins.install(folder)
    caplog.set_level(logging.WARNING, logger="modula.plugins")

    # another handler and description: the same GraphQL API
    (folder / "init.lua").write_text(THREADS + query % ("Newest threads", "ORDER BY title"))
    await app.state.plugins.install(folder)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []

    (folder / "init.lua").write_text(THREADS + (query % ("Newest", "")).replace('"[ForumThread!]!"', '"[ForumThread]"')
                                     + 'plugin.type{name = "ForumStats", fields = {count = "Int"}}\n')
    steps: list[str] = []
    await app.state.plugins.install(folder, progress=steps.append)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("plugin forum: its schema changed (type ForumStats added, query forumLatest changed) "
                              "but its version is still 1.0.0")
    assert f"warning: {warning}" in steps
    async with app.state.database.session() as session:  # installed all the same
        stored = await registry.stored_files(session, (await registry.get_plugin(session, "forum"))["id"])
    assert "ForumStats" in stored.files["init.lua"]
