"""The plugin author kit as an author uses it: `modula plugins new`, `modula plugins check`, and the
`modula_plugin` pytest fixture the package ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SHOP = Path(__file__).resolve().parents[1] / "plugins" / "shop"


def _modula(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "DATABASE_URL": "", "MODULA_DATABASE_URL": ""})


def _pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _plugin(folder: Path, name: str, init_lua: str) -> Path:
    plugin = folder / name
    plugin.mkdir(parents=True)
    (plugin / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0"}))
    (plugin / "init.lua").write_text(init_lua)
    return plugin


def test_a_new_plugin_passes_its_generated_test(tmp_path):
    result = _modula("plugins", "new", "notes", "--dir", "work", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "work" / "notes"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "init.lua", "plugin.json", "tests", "tests/test_notes.py"]
    assert 'name = "notes_items"' in (folder / "init.lua").read_text()

    run = _pytest(str(folder / "tests" / "test_notes.py"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_a_new_plugin_passes_its_check(tmp_path):
    assert _modula("plugins", "new", "notes", cwd=tmp_path).returncode == 0
    result = _modula("plugins", "check", "notes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "type NotesItem {" in result.stdout
    assert "notesSearch(text: String!): [NotesItem!]" in result.stdout


def test_new_refuses_invalid_names_with_the_rule_as_the_fix(tmp_path):
    for name in ("Notes", "1notes", "my-notes", "n" * 32):
        result = _modula("plugins", "new", name, cwd=tmp_path)
        assert result.returncode == 1
        error, fix = result.stderr.splitlines()
        assert error == f"modula: error: invalid plugin name {name!r}", result.stderr
        assert fix.startswith("  fix: use lower-case letters, digits and _, starting with a letter")
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_an_existing_folder_and_leaves_it_alone(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    result = _modula("plugins", "new", "notes", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"modula: error: {Path('notes')} already exists",
                                          "  fix: choose another name, or another folder with --dir"]
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["mine.txt"]


def test_check_prints_only_what_the_shop_plugin_adds(tmp_path):
    result = _modula("plugins", "check", str(SHOP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "type ShopProduct {" in result.stdout
    assert "insertShopProducts(" in result.stdout
    assert "extend type Query {" in result.stdout and "extend type Mutation {" in result.stdout
    assert "type Route {" not in result.stdout and "createDatatype" not in result.stdout  # the core is not repeated
    assert list(tmp_path.iterdir()) == []  # no database was created where it ran


def test_check_names_file_and_line_of_a_lua_syntax_error(tmp_path):
    plugin = _plugin(tmp_path, "broken", 'plugin.define_table({ name = "broken_items", fields = {\n'
                                         '    {name = "id", type = "integer", primary_key = true},\n}})\nlocal x = = 1\n')
    result = _modula("plugins", "check", plugin.name, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "broken/init.lua:4: unexpected symbol near '='\n"


def test_check_refuses_a_table_outside_the_plugins_prefix(tmp_path):
    plugin = _plugin(tmp_path, "broken", '\nplugin.define_table({ name = "other_items", fields = {\n'
                                         '    {name = "id", type = "integer", primary_key = true},\n}})\n')
    result = _modula("plugins", "check", str(plugin), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{plugin / 'init.lua'}:2: table name 'other_items' must start with 'broken_'")


def test_check_refuses_an_unknown_type_in_a_registration(tmp_path):
    plugin = _plugin(tmp_path, "broken", 'plugin.define_table({ name = "broken_items", fields = {\n'
                                         '    {name = "id", type = "integer", primary_key = true},\n}})\n'
                                         'plugin.query{ name = "brokenThing", returns = "Nope!", handler = function() end }\n')
    result = _modula("plugins", "check", str(plugin), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "brokenThing: unknown output type Nope" in result.stderr


def test_check_refuses_a_bad_manifest(tmp_path):
    plugin = _plugin(tmp_path, "broken", "")
    (plugin / "plugin.json").write_text('{"name": "broken", "version": ""}')
    result = _modula("plugins", "check", str(plugin), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{plugin / 'plugin.json'}: plugin broken: version must be a non-empty string")


async def test_the_fixture_serves_the_shop_plugin_to_an_administrator(modula_plugin):
    client = await modula_plugin(SHOP)
    await client.data('mutation { insertShopProducts(objects: [{name: "pen", price: 2.5, stockCount: 3}]) { affectedRows } }')
    data = await client.data("{ featuredProducts { name displayPrice } }")
    assert data == {"featuredProducts": [{"name": "pen", "displayPrice": "2.50 EUR"}]}
    assert await client.count("shop_products") == 1
    assert client.app.state.settings.plugins_dir != SHOP.parent  # served from a copy


def test_the_fixture_fails_the_test_with_the_reason_a_plugin_did_not_load(tmp_path):
    _plugin(tmp_path, "broken", 'plugin.query{ name = "brokenThing", returns = "Nope!", handler = function() end }\n')
    (tmp_path / "test_broken.py").write_text(
        "import pytest\n"
        "from pathlib import Path\n\n"
        "@pytest.mark.asyncio\n"
        "async def test_it(modula_plugin):\n"
        "    await modula_plugin(Path(__file__).parent / 'broken')\n")
    run = _pytest("test_broken.py", cwd=tmp_path)
    assert run.returncode == 1
    assert "plugin broken did not load: plugin broken (init.lua:1): plugin.query brokenThing: unknown output type Nope" in run.stdout


def test_check_names_the_line_and_the_nearest_type_of_an_unknown_type(tmp_path):
    plugin = _plugin(tmp_path, "forum", 'plugin.define_table({ name = "forum_threads", fields = {\n'
                                        '    {name = "thread_id", type = "integer", primary_key = true},\n}})\n\n'
                                        'plugin.query{ name = "forumLatest", returns = "[ForumThreads!]!",\n'
                                        '  handler = function() return {} end }\n')
    result = _modula("plugins", "check", plugin.name, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("forum/init.lua:5: plugin forum: plugin.query forumLatest: unknown output type "
                             "ForumThreads — did you mean ForumThread?\n")


def test_install_names_the_line_and_the_nearest_table_of_a_hook(tmp_path):
    _plugin(tmp_path / "src", "forum", 'plugin.define_table({ name = "forum_threads", fields = {\n'
                                       '    {name = "thread_id", type = "integer", primary_key = true},\n}})\n'
                                       'plugin.on("after_insert", "forum_thread", function(row) end)\n')
    result = _modula("plugins", "install", "src/forum", cwd=tmp_path)
    assert result.returncode == 1
    error, fix = result.stderr.splitlines()[-2:]
    assert error == ("modula: error: src/forum/init.lua:4: plugin forum: hook after_insert names table 'forum_thread', "
                     "which the plugin does not define — did you mean forum_threads?")
    assert fix.startswith("  fix: correct init.lua at that line")
    assert not (tmp_path / "plugins").exists()  # nothing installed, nothing copied


def test_a_new_plugins_source_installs_into_the_plugins_directory_without_its_tests(tmp_path):
    assert _modula("plugins", "new", "notes", "--dir", "src", cwd=tmp_path).returncode == 0
    (tmp_path / "src" / "notes" / "tests" / "fixtures.lua").write_text("-- a test helper\n")
    result = _modula("plugins", "install", "src/notes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    served = tmp_path / "plugins" / "notes"
    assert sorted(p.relative_to(served).as_posix() for p in served.rglob("*")) == ["init.lua", "plugin.json"]
    exported = _modula("plugins", "export", "notes", "as-stored", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in (tmp_path / "as-stored").iterdir()) == ["init.lua", "plugin.json"]


def test_install_warns_of_a_table_change_under_the_same_version(tmp_path):
    table = ('plugin.define_table({ name = "notes_items", fields = {\n'
             '    {name = "item_id", type = "integer", primary_key = true},\n{extra}}})\n')
    source = _plugin(tmp_path / "src", "notes", table.replace("{extra}", ""))
    assert _modula("plugins", "install", "src/notes", cwd=tmp_path).returncode == 0
    (source / "init.lua").write_text(table.replace("{extra}", '    {name = "body", type = "text"},\n'))
    result = _modula("plugins", "install", "src/notes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("warning: plugin notes: its schema changed (add column notes_items.body) but its version is still 1.0.0: "
            'bump "version" in plugin.json') in result.stderr
