"""Measures the Lua bridge overhead per host call against a Python loop awaiting the same fake host.

Run: python tests/bench/bench_lua_bridge.py [calls]
"""
from __future__ import annotations

import asyncio
import sys
import time

from modula.lua import Limits, PluginRuntime

ROW = {"product_id": 1, "name": "Mug", "price": 9.5, "category_id": 3}


class ConstantHost:
    """Answers every query with the same one-row result, without touching a database."""

    async def query(self, sql, params, tx):
        return [ROW]

    def log(self, level, message):
        pass


async def python_loop(host: ConstantHost, calls: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(calls):
        rows = await host.query("select * from shop_products where product_id = ?", [i], None)
        total += len(rows)
    return time.perf_counter() - start


async def lua_loop(runtime: PluginRuntime, handler, host: ConstantHost, calls: int) -> float:
    start = time.perf_counter()
    result = await runtime.call(handler, {"n": calls}, {}, host)
    elapsed = time.perf_counter() - start
    assert result == calls
    return elapsed


async def main(calls: int) -> None:
    runtime = PluginRuntime("bench", limits=Limits(instructions=10 ** 10, seconds=600))
    handler = runtime.load("""
        plugin.query{name = 'loop', returns = 'Int', handler = function(args, ctx)
          local total = 0
          for i = 1, args.n do
            local rows = query('select * from shop_products where product_id = ?', {i})
            total = total + #rows
          end
          return total
        end}""").operations[0].handler
    host = ConstantHost()
    await lua_loop(runtime, handler, host, 1000)
    python = min([await python_loop(host, calls) for _ in range(3)])
    lua = min([await lua_loop(runtime, handler, host, calls) for _ in range(3)])
    print(f"{calls} host calls, best of 3")
    print(f"python await loop : {python / calls * 1e6:8.2f} µs per call")
    print(f"lua handler loop  : {lua / calls * 1e6:8.2f} µs per call")
    print(f"bridge overhead   : {(lua - python) / calls * 1e6:8.2f} µs per call")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
