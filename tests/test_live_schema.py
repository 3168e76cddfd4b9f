"""The live schema: plugins loaded, reloaded and unloaded on a running server, as a client sees it.

Every test drives the app over in-process HTTP, signed in as an administrator, with the plugin
mutations, and reads back what is served: the SDL, `extensions.schemaGeneration`, the generated
and Lua-declared fields, and what the database holds.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from modula.plugins import host as host_module
from modula_testing import GraphQLClient, admin_client, running_app
from test_plugins import write_plugin

SWAP = "plugin schemaGeneration loadedPlugins failures { plugin message } breakingChanges dangerousChanges"

NOTES_TABLE = """
plugin.define_table({name = "notes_items", fields = {
    {name = "item_id", type = "integer", primary_key = true},
    {name = "title", type = "text", not_null = true},
}})
plugin.field{type = "NotesItem", name = "shout", returns = "String!",
             handler = function(row, args, ctx) return string.upper(row.title) end}
"""
NOTES_COUNT = """
plugin.query{name = "notesCount", returns = "Int!",
             handler = function(args, ctx) return #query("SELECT item_id FROM notes_items") end}
"""
NOTES_V1 = NOTES_TABLE + NOTES_COUNT
NOTES_V2 = NOTES_V1 + """
plugin.define_table({name = "notes_tags", fields = {
    {name = "tag_id", type = "integer", primary_key = true},
    {name = "label", type = "text"},
    {name = "item_id", type = "integer", foreign_key = "notes_items"},
}})
plugin.query{name = "notesLatest", returns = "NotesItem",
             handler = function(args, ctx) return query_one("SELECT * FROM notes_items ORDER BY item_id DESC LIMIT 1") end}
"""
NOTES_V3 = NOTES_V2.replace(NOTES_COUNT, "")  # notesCount is gone; tables stay (dropping them is refused)


@pytest.fixture
async def admin(app):
    """Managing plugins and reading their tables is an administrator's job: the tests act as one."""
    async with admin_client(app) as client:
        yield client


def plugins_dir(tmp_path: Path) -> Path:
    return tmp_path / "plugins"


def sdl(app) -> str:
    return app.state.live_schema.current.schema.as_str()


def generation(app) -> int:
    return app.state.live_schema.current.generation


async def swap(client: GraphQLClient, action: str, name: str) -> dict:
    """Run loadPlugin/reloadPlugin/unloadPlugin and insist on success; returns the SchemaSwap."""
    data = await client.data(f"mutation($name: String!) {{ {action}(name: $name) {{ {SWAP} }} }}", {"name": name})
    return data[action]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0, interval: float = 0.05) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"gave up waiting after {timeout} s"
        await asyncio.sleep(interval)


async def serving(client: GraphQLClient, query: str) -> bool:
    return "errors" not in await client.execute(query)


async def held_requests(app) -> int:
    """Requests running on the current schema now."""
    return app.state.live_schema.current.in_flight


async def insert_note(client: GraphQLClient, title: str) -> int:
    data = await client.data("mutation($t: String!) { insertNotesItem(object: {title: $t}) { itemId } }", {"t": title})
    return data["insertNotesItem"]["itemId"]


# --- loading and reloading ----------------------------------------------------------------------


async def test_load_plugin_serves_its_tables_and_queries_without_a_restart(admin, tmp_path):
    before = await admin.execute("{ __typename }")
    assert "NotesItem" not in sdl(admin.app)
    write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)

    swapped = await swap(admin, "loadPlugin", "notes")

    assert swapped["plugin"] == "notes" and swapped["loadedPlugins"] == ["notes"]
    assert swapped["failures"] == [] and swapped["breakingChanges"] == []
    assert swapped["schemaGeneration"] > before["extensions"]["schemaGeneration"]
    assert "type NotesItem {" in sdl(admin.app)
    await insert_note(admin, "first")
    body = await admin.execute("{ notesItems { itemId title shout } notesCount }")
    assert body["data"] == {"notesItems": [{"itemId": 1, "title": "first", "shout": "FIRST"}], "notesCount": 1}
    assert body["extensions"]["schemaGeneration"] == swapped["schemaGeneration"]
    assert await admin.count("notes_items") == 1


async def test_reload_adds_tables_and_queries_and_reports_a_removed_query_as_breaking(admin, tmp_path):
    folder = write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)
    first = await swap(admin, "loadPlugin", "notes")
    await insert_note(admin, "kept")

    (folder / "init.lua").write_text(NOTES_V2)
    second = await swap(admin, "reloadPlugin", "notes")
    assert second["schemaGeneration"] > first["schemaGeneration"]
    assert second["breakingChanges"] == [] and second["failures"] == []
    assert "type NotesTag {" in sdl(admin.app) and "notesLatest: NotesItem" in sdl(admin.app)
    await admin.data("mutation { insertNotesTags(objects: [{label: \"x\", itemId: 1}]) { affectedRows } }")
    assert await admin.data("{ notesLatest { title shout } notesTags { label } notesCount }") == {
        "notesLatest": {"title": "kept", "shout": "KEPT"}, "notesTags": [{"label": "x"}], "notesCount": 1}

    (folder / "init.lua").write_text(NOTES_V3)
    third = await swap(admin, "reloadPlugin", "notes")
    assert third["schemaGeneration"] > second["schemaGeneration"]
    assert any("Query.notesCount was removed" in change for change in third["breakingChanges"]), third
    error = await admin.error("{ notesCount }")
    assert "notesCount" in error["message"]
    assert await admin.data("{ notesItems { title } }") == {"notesItems": [{"title": "kept"}]}


# --- broken plugins -----------------------------------------------------------------------------


async def test_a_plugin_with_a_lua_syntax_error_is_refused_and_the_old_schema_keeps_serving(admin, tmp_path):
    folder = write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)
    loaded = await swap(admin, "loadPlugin", "notes")
    await insert_note(admin, "still here")
    write_plugin(plugins_dir(tmp_path), "broken", "plugin.query{name = 'brokenX', returns = 'Int'\n")
    served = sdl(admin.app)

    error = await admin.error('mutation { loadPlugin(name: "broken") { plugin } }')
    assert error["extensions"]["code"] == "PLUGIN_LOAD_FAILED" and error["extensions"]["plugin"] == "broken"
    assert error["message"].startswith("plugin broken (init.lua:")

    (folder / "init.lua").write_text(NOTES_V2 + "\nlocal = 1\n")
    error = await admin.error('mutation { reloadPlugin(name: "notes") { plugin } }')
    assert error["message"].startswith("plugin notes (init.lua:") and error["extensions"]["plugin"] == "notes"

    assert sdl(admin.app) == served and generation(admin.app) == loaded["schemaGeneration"]
    body = await admin.execute("{ notesItems { title shout } notesCount }")
    assert body["data"] == {"notesItems": [{"title": "still here", "shout": "STILL HERE"}], "notesCount": 1}
    assert "errors" not in body


BROKEN_SCHEMAS = {
    "field on an unknown type": (
        "plugin.field{type = 'NoSuchType', name = 'x', returns = 'Int', handler = function() return 1 end}",
        "plugin.field NoSuchType.x: NoSuchType is not one of this plugin's generated types"),
    "query returning an unknown type": (
        "plugin.query{name = 'brokenThing', returns = 'NoSuchType!', handler = function() return {} end}",
        "plugin.query brokenThing: unknown output type NoSuchType"),
    "argument of an unknown input type": (
        "plugin.query{name = 'brokenFind', args = {by = 'NoSuchInput'}, returns = 'Int', handler = function() return 1 end}",
        "unknown input type NoSuchInput"),
}


@pytest.mark.parametrize("lua, reason", BROKEN_SCHEMAS.values(), ids=BROKEN_SCHEMAS.keys())
async def test_a_plugin_whose_schema_does_not_fit_is_left_out_and_reported(admin, tmp_path, lua, reason):
    write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)
    await swap(admin, "loadPlugin", "notes")
    await insert_note(admin, "fine")
    broken_table = "plugin.define_table({name = 'broken_rows', fields = {{name = 'row_id', type = 'integer', primary_key = true}}})\n"
    write_plugin(plugins_dir(tmp_path), "broken", broken_table + lua)

    swapped = await swap(admin, "loadPlugin", "broken")

    assert swapped["loadedPlugins"] == ["notes"]
    [failure] = swapped["failures"]
    assert failure["plugin"] == "broken"
    assert failure["message"].startswith("plugin broken (init.lua:2): ") and reason in failure["message"]
    assert "BrokenRow" not in sdl(admin.app)
    body = await admin.execute("{ notesItems { title shout } notesCount }")
    assert body["data"] == {"notesItems": [{"title": "fine", "shout": "FINE"}], "notesCount": 1} and "errors" not in body
    assert body["extensions"]["schemaGeneration"] == swapped["schemaGeneration"]


async def test_reloading_into_a_schema_that_does_not_fit_keeps_the_previous_version_serving(admin, tmp_path):
    folder = write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)
    await swap(admin, "loadPlugin", "notes")
    await insert_note(admin, "fine")
    (folder / "init.lua").write_text(NOTES_V1 + BROKEN_SCHEMAS["query returning an unknown type"][0])

    swapped = await swap(admin, "reloadPlugin", "notes")

    assert [f["plugin"] for f in swapped["failures"]] == ["notes"]
    assert swapped["breakingChanges"] == []
    assert await admin.data("{ notesItems { title shout } notesCount }") == {
        "notesItems": [{"title": "fine", "shout": "FINE"}], "notesCount": 1}


async def test_plugins_that_fail_at_startup_do_not_stop_the_server(database_url, tmp_path):
    folder = plugins_dir(tmp_path)
    write_plugin(folder, "notes", NOTES_V1)
    write_plugin(folder, "crashing", "local n = nil\nreturn n + 1\n")
    write_plugin(folder, "misfit", BROKEN_SCHEMAS["query returning an unknown type"][0].replace("brokenThing", "misfitThing"))

    async with running_app(database_url, plugins_dir=folder) as app, admin_client(app) as client:
        report = app.state.schemas.last_report
        assert report.plugins == ["notes"]
        assert set(report.failures) == {"crashing", "misfit"}
        assert report.failures["crashing"].startswith("plugin crashing (init.lua:2): ")
        assert "unknown output type NoSuchType" in report.failures["misfit"]
        await insert_note(client, "served")
        assert await client.data("{ notesItems { shout } }") == {"notesItems": [{"shout": "SERVED"}]}


def stats_plugin(name: str, clash: str) -> str:
    """A plugin with a table of its own plus a type or query whose GraphQL name `clash` picks."""
    table = (f"plugin.define_table({{name = '{name}_rows', fields = {{{{name = 'row_id', type = 'integer', primary_key = true}}}}}})\n"
             f"plugin.query{{name = '{name}Hello', returns = 'String', handler = function() return '{name}' end}}\n")
    if clash == "type":
        return table + (f"plugin.type{{name = 'Stats', fields = {{owner = 'String!'}}}}\n"
                        f"plugin.query{{name = '{name}Stats', returns = 'Stats', handler = function() return {{owner = '{name}'}} end}}\n")
    return table + f"plugin.query{{name = 'stats', returns = 'String', handler = function() return '{name}' end}}\n"


@pytest.mark.parametrize("clash, name", [("type", "Stats"), ("query", "stats")])
@pytest.mark.parametrize("first, second", [
    ("alpha", "zeta"),
    ("zeta", "alpha"),
], ids=["later name loads second", "earlier name loads second"])
async def test_a_plugin_taking_a_name_another_plugin_serves_is_left_out(admin, tmp_path, clash, name, first, second):
    write_plugin(plugins_dir(tmp_path), first, stats_plugin(first, clash))
    write_plugin(plugins_dir(tmp_path), second, stats_plugin(second, clash))
    await swap(admin, "loadPlugin", first)

    swapped = await swap(admin, "loadPlugin", second)

    assert swapped["loadedPlugins"] == [first]
    [failure] = swapped["failures"]
    assert failure["plugin"] == second
    assert failure["message"] == f"plugin {second}: generates names already in use: {name} (from plugin {first})"
    stats = f"{first}Stats {{ owner }}" if clash == "type" else "stats"
    data = await admin.data(f"{{ {first}Hello {first}Rows {{ rowId }} {stats} }}")
    assert data[f"{first}Hello"] == first
    assert (data[f"{first}Stats"] if clash == "type" else {"owner": data["stats"]}) == {"owner": first}
    assert f"{second}Hello" not in sdl(admin.app)


# --- unloading ----------------------------------------------------------------------------------


async def test_an_unloaded_plugin_stays_unloaded_after_a_restart_and_comes_back_with_its_data(database_url, tmp_path):
    folder = plugins_dir(tmp_path)
    write_plugin(folder, "notes", NOTES_V1)
    async with running_app(database_url, plugins_dir=folder) as app, admin_client(app) as client:
        await insert_note(client, "survivor")
        unloaded = await swap(client, "unloadPlugin", "notes")
        assert unloaded["loadedPlugins"] == []
        assert any("Query.notesItems was removed" in change for change in unloaded["breakingChanges"])
        assert "notesItems" not in sdl(app)
        assert "notesItems" in (await client.error("{ notesItems { title } }"))["message"]

    async with running_app(database_url, plugins_dir=folder) as app, admin_client(app, "admin_again") as client:
        assert "notesItems" not in sdl(app) and app.state.schemas.last_report.failures == {}
        assert await client.count("notes_items") == 1
        loaded = await swap(client, "loadPlugin", "notes")
        assert loaded["loadedPlugins"] == ["notes"]
        assert await client.data("{ notesItems { itemId title shout } }") == {
            "notesItems": [{"itemId": 1, "title": "survivor", "shout": "SURVIVOR"}]}


# --- several server processes -------------------------------------------------------------------


async def test_a_server_sharing_the_database_follows_a_plugin_load_within_moments(database_url, tmp_path):
    folder = plugins_dir(tmp_path)
    folder.mkdir()
    async with (
        running_app(database_url, plugins_dir=folder, follow_interval=0.1) as app_a,
        running_app(database_url, plugins_dir=folder, follow_interval=0.1) as app_b,
        admin_client(app_a, "admin_a") as a,
        admin_client(app_b, "admin_b") as b,
    ):
        write_plugin(folder, "notes", NOTES_V1)
        loaded = await swap(a, "loadPlugin", "notes")
        await insert_note(a, "from a")

        started = time.monotonic()
        await eventually(lambda: serving(b, "{ notesItems { title } }"), timeout=3.0)
        assert time.monotonic() - started < 2.0
        body = await b.execute("{ notesItems { title shout } notesCount }")
        assert body["data"] == {"notesItems": [{"title": "from a", "shout": "FROM A"}], "notesCount": 1}
        assert body["extensions"]["schemaGeneration"] == loaded["schemaGeneration"]


async def test_a_plugin_load_swaps_the_schema_once_while_following(database_url, tmp_path, monkeypatch):
    folder = plugins_dir(tmp_path)
    write_plugin(folder, "notes", NOTES_V1)
    async with running_app(database_url, plugins_dir=folder, follow_interval=0.01) as app, admin_client(app) as client:
        host, install = app.state.plugins, app.state.plugins.install

        async def install_then_pause(plugin_folder):
            installed = await install(plugin_folder)
            await asyncio.sleep(0.1)  # the database has the new generation, the swap is still to come
            return installed

        monkeypatch.setattr(host, "install", install_then_pause)
        (folder / "notes" / "init.lua").write_text(NOTES_V2)
        swapped = await swap(client, "reloadPlugin", "notes")
        await asyncio.sleep(0.1)  # several follow ticks
        assert generation(app) == swapped["schemaGeneration"]


async def test_a_server_follows_the_next_change_after_reloading_an_unchanged_plugin(database_url, tmp_path):
    folder = plugins_dir(tmp_path)
    write_plugin(folder, "notes", NOTES_V1)
    async with (
        running_app(database_url, plugins_dir=folder, follow_interval=0.1) as app_a,
        running_app(database_url, plugins_dir=folder, follow_interval=0.1) as app_b,
        admin_client(app_a, "admin_a") as a,
        admin_client(app_b, "admin_b") as b,
    ):
        await swap(a, "reloadPlugin", "notes")  # same files: a new runtime, no registry change
        write_plugin(folder, "greeter", "plugin.query{name = 'greeting', returns = 'String', handler = function() return 'hi' end}")
        await swap(b, "loadPlugin", "greeter")

        await eventually(lambda: serving(a, "{ greeting }"), timeout=2.0)
        body = await a.execute("{ greeting }")
        assert body["data"] == {"greeting": "hi"}
        assert body["extensions"]["schemaGeneration"] == generation(app_b)


# --- swaps under load ---------------------------------------------------------------------------


def counter_plugin(version: int) -> str:
    return f"""
plugin.define_table({{name = "counter_items", fields = {{
    {{name = "item_id", type = "integer", primary_key = true}},
    {{name = "title", type = "text", not_null = true}},
}}}})
plugin.query{{name = "counterVersion", returns = "Int!", handler = function(args, ctx) return {version} end}}
plugin.field{{type = "CounterItem", name = "label", returns = "String!",
             handler = function(row, args, ctx) return row.title .. "@" .. {version} end}}
"""


async def test_ten_reloads_under_eight_busy_clients_fail_no_request(admin, tmp_path):
    # Ten swaps while requests overlap them (twenty ran with no failure too, at twice the time).
    folder = write_plugin(plugins_dir(tmp_path), "counter", counter_plugin(0))
    await swap(admin, "loadPlugin", "counter")
    await admin.data('mutation { insertCounterItems(objects: [{title: "a"}, {title: "b"}]) { affectedRows } }')
    reloading = True
    query = "{ counterItems(limit: 5) { itemId title label } counterVersion }"
    finished_on_a_retired_schema = 0

    async def busy_client() -> list[tuple[int, int]]:
        nonlocal finished_on_a_retired_schema
        seen: list[tuple[int, int]] = []  # (schemaGeneration, counterVersion) per response
        while reloading:
            response = await admin.http.post("/graphql", json={"query": query})
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body["errors"]
            served, version = body["extensions"]["schemaGeneration"], body["data"]["counterVersion"]
            assert [item["label"] for item in body["data"]["counterItems"]] == [f"a@{version}", f"b@{version}"]
            seen.append((served, version))
            finished_on_a_retired_schema += served < generation(admin.app)
            # A short pause between requests: the reloads share this event loop, and eight clients
            # that never leave it idle make each reload take about a second (install reflects the
            # tables with many small awaits). Requests still overlap the swaps: see the last assert.
            await asyncio.sleep(0.02)
        return seen

    clients = [asyncio.create_task(busy_client()) for _ in range(8)]
    try:
        generations = []
        for version in range(1, 11):
            (folder / "init.lua").write_text(counter_plugin(version))
            swapped = await swap(admin, "reloadPlugin", "counter")
            assert swapped["failures"] == [] and swapped["loadedPlugins"] == ["counter"]
            generations.append(swapped["schemaGeneration"])
    finally:
        reloading = False
        results = await asyncio.gather(*clients)

    assert generations == sorted(set(generations)) and len(generations) == 10
    assert await admin.data("{ counterVersion }") == {"counterVersion": 10}
    for seen in results:
        assert len(seen) > 0
        assert seen == sorted(seen), "a admin saw the schema generation or plugin version go back"
    assert finished_on_a_retired_schema > 0, "no request was in flight across a swap"


def slow_plugin(version: str) -> str:
    """A query that polls its table until the test plants a flag: it is still running when a reload
    swaps the schema, and each poll is an SQL call, which lets the reload run meanwhile."""
    return f"""
plugin.define_table({{name = "slow_flags", fields = {{{{name = "flag_id", type = "integer", primary_key = true}}}}}})
plugin.query{{name = "slowVersion", returns = "String!", handler = function(args, ctx)
    for polls = 1, 1000000 do
        if query_one("SELECT flag_id FROM slow_flags") ~= nil then return "{version} after " .. polls .. " polls" end
    end
    return "{version} gave up"
end}}
"""


async def plant_flag(client: GraphQLClient) -> None:
    async with client.database.session() as session, session.transaction():
        await session.execute(sa.text("INSERT INTO slow_flags (flag_id) VALUES (1)"))


async def test_a_request_in_flight_finishes_on_the_schema_it_started_with(admin, tmp_path):
    folder = write_plugin(plugins_dir(tmp_path), "slow", slow_plugin("v1"))
    old = await swap(admin, "loadPlugin", "slow")
    in_flight = asyncio.create_task(admin.execute("{ slowVersion }"))
    await eventually(lambda: held_requests(admin.app), interval=0.01)

    (folder / "init.lua").write_text(slow_plugin("v2"))
    new = await swap(admin, "reloadPlugin", "slow")
    assert new["schemaGeneration"] > old["schemaGeneration"] and not in_flight.done()
    await plant_flag(admin)

    body = await asyncio.wait_for(in_flight, timeout=5)
    assert "errors" not in body, body["errors"]
    assert body["data"]["slowVersion"].startswith("v1 after ")
    assert body["extensions"]["schemaGeneration"] == old["schemaGeneration"]
    after = await admin.execute("{ slowVersion }")
    assert after["data"]["slowVersion"] == "v2 after 1 polls"
    assert after["extensions"]["schemaGeneration"] == new["schemaGeneration"]


async def test_a_request_in_flight_keeps_its_plugin_across_two_swaps(admin, tmp_path):
    folder = write_plugin(plugins_dir(tmp_path), "slow", slow_plugin("v1"))
    notes = write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)
    await swap(admin, "loadPlugin", "slow")
    old = await swap(admin, "loadPlugin", "notes")
    in_flight = asyncio.create_task(admin.execute("{ slowVersion }"))
    await eventually(lambda: held_requests(admin.app), interval=0.01)

    (notes / "init.lua").write_text(NOTES_V2)
    await swap(admin, "reloadPlugin", "notes")  # the next schema serves the same slow v1 runtime
    (folder / "init.lua").write_text(slow_plugin("v2"))
    await swap(admin, "reloadPlugin", "slow")  # retires slow v1
    await plant_flag(admin)

    body = await asyncio.wait_for(in_flight, timeout=5)
    assert "errors" not in body, body["errors"]
    assert body["data"]["slowVersion"].startswith("v1 after ")
    assert body["extensions"]["schemaGeneration"] == old["schemaGeneration"]


async def test_serve_watch_reloads_a_plugin_when_its_files_change(database_url, tmp_path):
    write_plugin(plugins_dir(tmp_path), "notes", NOTES_V1)
    async with running_app(database_url, plugins_dir=plugins_dir(tmp_path), watch=True) as app:
        before = generation(app)
        assert "notesLatest" not in sdl(app)
        await asyncio.sleep(0.2)  # let the watcher start
        (plugins_dir(tmp_path) / "notes" / "init.lua").write_text(NOTES_V2)
        await eventually(lambda: asyncio.sleep(0, "notesLatest" in sdl(app)), timeout=10)
        assert generation(app) > before


async def test_a_swapped_out_schema_is_freed_once_no_request_holds_it(admin, tmp_path):
    # Validation results are cached per schema; a process-wide cache keyed by schema kept every
    # retired generation (and its plugins' types) alive.
    write_plugin(plugins_dir(tmp_path), "counter", counter_plugin(1))
    await swap(admin, "loadPlugin", "counter")
    await admin.data("{ counterItems { itemId } counterVersion }")  # validated (and cached) on this schema
    retired = weakref.ref(admin.app.state.live_schema.current.schema)
    (plugins_dir(tmp_path) / "counter" / "init.lua").write_text(counter_plugin(2))
    await swap(admin, "reloadPlugin", "counter")
    await admin.data("{ counterItems { itemId } counterVersion }")
    gc.collect()
    assert retired() is None, [type(r).__qualname__ for r in gc.get_referrers(retired())]


async def test_a_follower_introspects_a_plugins_tables_again_only_when_an_install_changed_them(database_url, tmp_path,
                                                                                               monkeypatch):
    folder = plugins_dir(tmp_path)
    write_plugin(folder, "notes", NOTES_V1)
    async with (
        running_app(database_url, plugins_dir=folder) as app_a,
        running_app(database_url, plugins_dir=tmp_path / "empty") as app_b,
        admin_client(app_a, "admin_a") as a,
        admin_client(app_b, "admin_b") as b,
    ):
        reflected: list = []
        reflect = host_module.reflect_tables

        async def counted(url, *args, **kwargs):
            reflected.append(kwargs.get("prefix"))
            return await reflect(url, *args, **kwargs)

        monkeypatch.setattr(host_module, "reflect_tables", counted)
        (folder / "notes" / "init.lua").write_text(NOTES_V1 + "\n-- new code, same tables\n")
        await swap(a, "reloadPlugin", "notes")
        reflected.clear()  # A's own install introspects under the lock
        await app_b.state.schemas.poll()
        assert reflected == [] and generation(app_b) == generation(app_a)

        (folder / "notes" / "init.lua").write_text(NOTES_V2)
        await swap(a, "reloadPlugin", "notes")
        reflected.clear()
        await app_b.state.schemas.poll()
        assert reflected == [("notes_",)]
        assert sdl(app_b) == sdl(app_a) and "notesTags" in sdl(app_b)
        assert await b.data("{ notesLatest { title } }") == {"notesLatest": None}
