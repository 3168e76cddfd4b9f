"""A fake in-memory plugin host and runtime fixtures for the Lua runtime tests."""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from modula.lua import HandlerRef, Limits, PluginRuntime


class FakeHost:
    """Records every host call; tables are dicts of rows; transactions are just ids."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.logs: list[tuple[str, str]] = []
        self.rows: dict[str, list[dict]] = {}
        self.query_result: list[dict] = [{"id": 1, "name": "first"}]
        self.fail_with: Exception | None = None
        self.delay = 0.0
        self.open_txs: set[int] = set()
        self.committed: list[int] = []
        self.rolled_back: list[int] = []
        self._ids = itertools.count(1)
        self._txs = itertools.count(100)

    async def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with

    async def query(self, sql, params, tx):
        await self._record("query", sql, params, tx)
        return self.query_result

    async def query_one(self, sql, params, tx):
        await self._record("query_one", sql, params, tx)
        return self.query_result[0] if self.query_result else None

    async def exec(self, sql, params, tx):
        await self._record("exec", sql, params, tx)
        return {"rows_affected": 2, "last_insert_id": 7}

    async def insert(self, table, values, tx):
        await self._record("insert", table, values, tx)
        row = {"id": next(self._ids), **values}
        self.rows.setdefault(table, []).append(row)
        return row

    async def begin(self):
        await self._record("begin")
        tx = next(self._txs)
        self.open_txs.add(tx)
        return tx

    async def commit(self, tx):
        await self._record("commit", tx)
        self.open_txs.discard(tx)
        self.committed.append(tx)

    async def rollback(self, tx):
        self.calls.append(("rollback", tx))
        self.open_txs.discard(tx)
        self.rolled_back.append(tx)

    async def http_request(self, method, url, headers, body, timeout):
        await self._record("http", method, url, headers, body, timeout)
        return {"status": 200, "headers": {"content-type": "text/plain"}, "body": "pong"}

    def log(self, level, message):
        self.logs.append((level, message))


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


SMALL = Limits(instructions=2_000_000, memory_bytes=16 * 1024 * 1024, seconds=2.0)


HEALTHY = """
plugin.query{name = 'healthy', returns = 'JSON', handler = function(args, ctx)
  local rows = query('select 1', {})
  local t = {}
  for i = 1, 1000 do t[i] = string.rep('x', 10) end
  return {ok = true, rows = #rows, n = #t}
end}
"""


@dataclass
class LoadedPlugin:
    """A runtime with its ``run`` handler (the code under test) and a ``healthy`` handler."""

    runtime: PluginRuntime
    run: HandlerRef
    healthy: HandlerRef

    async def call(self, host, args=None, ctx=None):
        return await self.runtime.call(self.run, args or {}, ctx or {}, host)

    async def assert_still_healthy(self, host) -> None:
        result = await self.runtime.call(self.healthy, {}, {}, host)
        assert result == {"ok": True, "rows": 1, "n": 1000}


def plugin_with(handler_body: str, *, limits: Limits = SMALL, http_hosts=("api.example.com",),
                prelude: str = "") -> LoadedPlugin:
    """A loaded runtime whose query ``run`` has ``handler_body`` as its body."""
    runtime = PluginRuntime("shop", limits=limits, http_hosts=list(http_hosts))
    declarations = runtime.load(prelude + HEALTHY + "\nplugin.query{name = 'run', "
                                "returns = 'JSON', handler = function(args, ctx)\n"
                                + handler_body + "\nend}\n")
    handlers = {op.name: op.handler for op in declarations.operations}
    return LoadedPlugin(runtime, handlers["run"], handlers["healthy"])


@pytest.fixture
def make_plugin():
    """``plugin_with`` as a fixture, so test modules need not import conftest."""
    return plugin_with


@pytest.fixture
def run_lua(host):
    """Run a handler body on a fresh runtime and return its result."""
    async def run(body: str, args=None, ctx=None, **options):
        return await plugin_with(body, **options).call(host, args, ctx)
    return run
