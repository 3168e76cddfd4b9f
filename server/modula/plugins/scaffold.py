"""`modula plugins new NAME`: a new plugin's source folder that loads, and passes its own test
(in tests/, which `install` neither stores nor copies), as written."""

from __future__ import annotations

from pathlib import Path

from modula.db.names import PLUGIN_NAME
from modula.errors import CommandError
from modula.schema.naming import camel, table_names

MANIFEST = """{{
  "name": "{name}",
  "version": "0.1.0",
  "description": "TODO: what {name} does, in one sentence.",
  "api": 1,
  "permissions": {{}}
}}
"""

INIT_LUA = """-- The {name} plugin. Reference: the plugin guide (plugins/README.md in the Modula repository).

plugin.define_table({{ name = "{table}", fields = {{
    {{name = "item_id", type = "integer", primary_key = true}},
    {{name = "name", type = "text", not_null = true}},
    {{name = "quantity", type = "integer", not_null = true, default = 0}},
    {{name = "note", type = "text"}},
}}, unique = {{{{"name"}}}} }})

plugin.query{{
    name = "{search}",
    description = "Items whose name contains `text`, by name.",
    args = {{ text = "String!" }},
    returns = "[{type}!]!",
    handler = function(args, ctx)
        return query("SELECT * FROM {table} WHERE name LIKE ? ORDER BY name", {{"%" .. args.text .. "%"}})
    end,
}}

plugin.on("before_insert", "{table}", function(row, ctx)
    if row.name == nil or row.name:match("^%s*$") then error("an item needs a name") end
    if row.quantity ~= nil and row.quantity < 0 then error("quantity cannot be negative") end
    return row
end)
"""

TEST = '''"""Tests of the {name} plugin, run by the `modula_plugin` fixture Modula ships (pytest -q)."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio  # not needed with asyncio_mode = "auto"

PLUGIN = Path(__file__).resolve().parents[1]  # the plugin folder: this file is in its tests/


async def test_inserted_items_are_found_by_name(modula_plugin):
    client = await modula_plugin(PLUGIN)
    await client.data('mutation {{ {insert}(objects: [{{name: "pen", quantity: 2}}, {{name: "paper"}}]) {{ affectedRows }} }}')
    data = await client.data('{{ {search}(text: "pe") {{ name quantity }} }}')
    assert data == {{"{search}": [{{"name": "paper", "quantity": 0}}, {{"name": "pen", "quantity": 2}}]}}


async def test_an_item_with_negative_quantity_is_refused(modula_plugin):
    client = await modula_plugin(PLUGIN)
    error = await client.error('mutation {{ {insert}(objects: [{{name: "pen", quantity: -1}}]) {{ affectedRows }} }}')
    assert "quantity cannot be negative" in error["message"]
    assert (await client.data("{{ {list} {{ name }} }}")) == {{"{list}": []}}
'''


def scaffold(name: str, directory: Path) -> Path:
    """Write the plugin `name` into `directory/name`; returns the folder. Raises CommandError (what is
    wrong, and the fix) when the name is invalid or the folder exists."""
    if not PLUGIN_NAME.match(name):
        raise CommandError(f"invalid plugin name {name!r}",
                           "use lower-case letters, digits and _, starting with a letter, at most 31 characters (such as my_plugin)")
    folder = directory / name
    if folder.exists():
        raise CommandError(f"{folder} already exists", "choose another name, or another folder with --dir")
    table = f"{name}_items"
    names = table_names(table)
    values = {"name": name, "table": table, "type": names.type, "search": camel(name) + "Search",
              "insert": names.insert, "list": names.list}
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(MANIFEST.format(**values), encoding="utf-8")
    (folder / "init.lua").write_text(INIT_LUA.format(**values), encoding="utf-8")
    (folder / "tests").mkdir()
    (folder / "tests" / f"test_{name}.py").write_text(TEST.format(**values), encoding="utf-8")
    return folder
