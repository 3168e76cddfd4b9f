"""Does a runaway plugin handler stall the server? Latency of `/health` and of a generated query,
idle and while 4 clients each run a handler that burns its whole time budget, side by side.

It starts `modula serve` (one process, default Lua budgets unless --lua-seconds is given) on a
fresh SQLite file with `--plugins` plugins (default 4, so each burning client has its own plugin
and its own Lua thread; 1 puts all four on one plugin). Each plugin declares a table and a query
`spin` whose handler loops over `string.find` (C work the instruction hook cannot interrupt)
until its wall-clock budget ends it with TIMEOUT. One probing client then measures, one request
at a time, GET /health and `{ burn0Notes { id body } }` (the generated list query), first with
the server idle, then while the 4 burning clients keep a `spin` call running each.

The goal (issue 14): loaded p99 <= 2 x idle p99 + 5 ms for both. Run from the repository root::

    python tests/bench/bench_lua_stall.py
    python tests/bench/bench_lua_stall.py --requests 400 --plugins 1 --workload lua
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/bench: bench_http

from bench_http import admin_token, modula_serve, percentile  # noqa: E402

BURNERS = 4
# `find`: plain search over 200 kB per call, in C; `lua`: pure Lua arithmetic (hook-counted).
WORKLOADS = {
    "find": 'local s = string.rep("a", 200000) .. "b"\n  local n = 0\n  while true do n = n + s:find("b", 1, true) end',
    "lua": "local n = 0\n  while true do n = (n + 1) % 1000003 end",
}


def write_plugins(plugins_dir: Path, count: int, workload: str) -> list[str]:
    names = [f"burn{i}" for i in range(count)]
    for name in names:
        folder = plugins_dir / name
        folder.mkdir(parents=True)
        (folder / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0", "api": 1}))
        (folder / "init.lua").write_text(f"""
plugin.define_table{{name = "{name}_notes", fields = {{
  {{name = "id", type = "integer", primary_key = true}},
  {{name = "body", type = "text", not_null = true}},
}}}}
plugin.query{{name = "spin{name[4:]}", returns = "Int", handler = function(args, ctx)
  {WORKLOADS[workload]}
end}}
plugin.mutation{{name = "seed{name[4:]}", args = {{n = "Int!"}}, returns = "Int", handler = function(args, ctx)
  for i = 1, args.n do insert("{name}_notes", {{body = "note " .. i}}) end
  return args.n
end}}
""")
    return names


async def probe(http: httpx.AsyncClient, requests: int) -> dict[str, list[float]]:
    """Latencies in ms of GET /health and of the generated query, alternating, one at a time."""
    latencies: dict[str, list[float]] = {"GET /health": [], "generated query": []}
    for _ in range(requests):
        started = time.perf_counter()
        (await http.get("/health")).raise_for_status()
        latencies["GET /health"].append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        answer = (await http.post("/graphql", json={"query": "{ burn0Notes(limit: 20) { id body } }"})).json()
        latencies["generated query"].append(1000 * (time.perf_counter() - started))
        assert len(answer["data"]["burn0Notes"]) == 20, answer
    return latencies


async def burn(http: httpx.AsyncClient, field: str, stop: asyncio.Event, codes: list[str]) -> None:
    while not stop.is_set():
        answer = (await http.post("/graphql", json={"query": f"{{ {field} }}"})).json()
        codes.extend(error["extensions"]["code"] for error in answer.get("errors", []))


async def run(args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="modula-bench-stall-") as scratch:
        folder = Path(scratch)
        names = write_plugins(folder / "plugins", args.plugins, args.workload)
        database_url = f"sqlite:///{folder / 'bench.db'}"
        token = await admin_token(database_url)
        if args.lua_seconds:
            os.environ["MODULA_LUA_SECONDS"] = str(args.lua_seconds)
        os.environ["MODULA_LUA_INSTRUCTIONS"] = str(10 ** 15)  # the wall clock is the budget burned
        with modula_serve(database_url, folder) as base:
            headers = {"authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
                (await http.post("/graphql", json={"query": "mutation { seed0(n: 50) }"})).raise_for_status()
                await probe(http, 20)  # warm up
                idle = await probe(http, args.requests)
                stop, codes = asyncio.Event(), []
                burners = [asyncio.create_task(burn(http, f"spin{i % len(names)}", stop, codes))
                           for i in range(BURNERS)]
                await asyncio.sleep(0.5)  # every burner is inside its handler
                loaded_started = time.perf_counter()
                loaded = await probe(http, args.requests)
                loaded_seconds = time.perf_counter() - loaded_started
                stop.set()
                await asyncio.gather(*burners)
    print(f"{BURNERS} clients burning the budget of `spin` ({args.workload} loop) on {args.plugins} plugin(s); "
          f"{args.requests} probes of each kind, one at a time; the loaded probes took {loaded_seconds:.1f} s, "
          f"burning calls ended with {sorted(set(codes))} ({len(codes)})")
    print(f"{'':<18}{'idle p50':>10}{'idle p99':>10}{'loaded p50':>12}{'loaded p99':>12}"
          f"{'p99 ratio':>11}{'limit':>9}  verdict")
    ok = True
    for name in idle:
        i50, i99 = percentile(idle[name], .5), percentile(idle[name], .99)
        l50, l99 = percentile(loaded[name], .5), percentile(loaded[name], .99)
        limit = 2 * i99 + 5
        ok &= l99 <= limit
        print(f"{name:<18}{i50:>8.2f}ms{i99:>8.2f}ms{l50:>10.2f}ms{l99:>10.2f}ms{l99 / i99:>10.2f}x"
              f"{limit:>7.1f}ms  {'ok' if l99 <= limit else 'OVER'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="probes of each kind per phase")
    parser.add_argument("--plugins", type=int, default=BURNERS, help="plugins the burning clients share")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="find")
    parser.add_argument("--lua-seconds", type=float, default=None, help="wall-clock budget per call (default 5)")
    return 0 if asyncio.run(run(parser.parse_args())) else 1


if __name__ == "__main__":
    sys.exit(main())
