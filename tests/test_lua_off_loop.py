"""Plugin code runs off the event loop: while a handler burns its whole time budget, the server
keeps answering other requests, and the runaway call still ends with its TIMEOUT error. The
budgets come from the settings (MODULA_LUA_*)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import sqlalchemy as sa

from modula.config import Settings
from modula.lua.limits import Limits
from modula_testing import running_app, token_client

# Plain `find` over 200 kB: each call is C work the instruction hook cannot interrupt, and the
# loop around it never ends on its own; only the wall-clock budget stops it.
SPIN = """
plugin.define_table{name = "slow_notes", fields = {
  {name = "id", type = "integer", primary_key = true},
  {name = "body", type = "text", not_null = true},
}}
plugin.query{name = "spin", returns = "Int", handler = function(args, ctx)
  log.info("spinning")
  local s = string.rep("a", 200000) .. "b"
  local n = 0
  while true do n = n + s:find("b", 1, true) end
end}
"""


def write_spinning_plugin(plugins_dir: Path) -> None:
    folder = plugins_dir / "slow"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(json.dumps({"name": "slow", "version": "1.0.0", "api": 1}))
    (folder / "init.lua").write_text(SPIN)


class _Started(logging.Handler):
    """Sets an asyncio event (from whichever thread logs) when the plugin's handler has begun."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop, self.event = loop, asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "spinning":
            self.loop.call_soon_threadsafe(self.event.set)


async def test_other_requests_complete_while_a_runaway_handler_runs(database_url, tmp_path):
    write_spinning_plugin(tmp_path / "plugins")
    started = _Started(asyncio.get_running_loop())
    plugin_log = logging.getLogger("modula.plugin.slow")
    plugin_log.addHandler(started)
    plugin_log.setLevel(logging.INFO)
    try:
        # One pooled connection, and viewers from memory as `modula serve` keeps them: the spinning
        # request runs no SQL, so it must hold no connection the others wait for.
        async with running_app(database_url, plugins_dir=tmp_path / "plugins", lua_seconds=3.0,
                               lua_instructions=10**15, database_pool_size=1, viewer_cache=True) as app:
            async with app.state.database.session() as session, session.transaction():
                await session.execute(sa.text("INSERT INTO slow_notes (body) VALUES ('kept')"))
            async with token_client(app, "admin", roles=["admin"]) as spinner, token_client(app, "editor", roles=["admin"]) as other:
                await spinner.data("{ slowNotes { id } }")  # the spinner's viewer is in memory now
                runaway = asyncio.create_task(spinner.execute("{ spin }"))
                await asyncio.wait_for(started.event.wait(), 10)

                health = await other.http.get("/health")
                notes = await other.execute("{ slowNotes { body } }")
                assert not runaway.done(), "the runaway handler ended before the other requests"

                assert health.status_code == 200
                assert notes["data"] == {"slowNotes": [{"body": "kept"}]} and "errors" not in notes
                answer = await runaway
                assert answer["data"] == {"spin": None}
                assert [e["extensions"]["code"] for e in answer["errors"]] == ["TIMEOUT"]
                assert "time budget exceeded" in answer["errors"][0]["message"]
    finally:
        plugin_log.removeHandler(started)
        plugin_log.setLevel(logging.NOTSET)


def test_lua_budgets_are_settings_with_the_runtime_defaults():
    assert Limits.from_settings(Settings()) == Limits()
    settings = Settings.from_env({"MODULA_LUA_INSTRUCTIONS": "1000000", "MODULA_LUA_SECONDS": "0.75",
                                  "MODULA_LUA_MEMORY_BYTES": "8388608",
                                  "MODULA_LUA_MAX_STRING_OP_INPUT": "4096", "MODULA_LUA_PATTERN_STEPS": "90000"})
    assert Limits.from_settings(settings) == Limits(instructions=1_000_000, seconds=0.75, memory_bytes=8 * 1024 * 1024,
                                                    max_string_op_input=4096, pattern_steps=90_000)


async def test_the_configured_budget_is_the_one_a_handler_runs_under(database_url, tmp_path):
    write_spinning_plugin(tmp_path / "plugins")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", lua_instructions=100_000) as app:
        async with token_client(app, "admin", roles=["admin"]) as client:
            error = await client.error("{ spin }")
    assert error["extensions"]["code"] == "BUDGET_EXCEEDED"
    assert "instruction budget exceeded" in error["message"]
