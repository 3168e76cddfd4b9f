"""Generated plugin API benchmark: the bundled shop plugin served as GraphQL.

Per database (SQLite always; PostgreSQL when a server URL is given), through the whole stack
in-process (httpx ASGITransport -> Starlette -> Strawberry -> generated resolvers -> CRUD builder):

1. nested insert: one product with 5 attributes (`insertShopProducts`), N sequential requests;
2. read: 100 products with their attributes (`shopProducts(limit: 100) { … shopProductAttributes { … } }`),
   with the number of SQL statements one request issues;
3. the same 100 products with a Lua field (`displayPrice`, one Lua call per row) instead of the
   generated `price` column: the cost of Lua-backed resolvers against generated ones;
4. filtered, sorted list of a columnar plugin table (`price > x ORDER BY price DESC LIMIT 20`) over
   N products: what plugin tables are for, next to EAV content.

Each row reports throughput (operations/s) and latency p50/p95/p99 in milliseconds.

    python tests/bench/bench_generated_api.py [--postgres-url postgresql://postgres@127.0.0.1:5432/test] [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/

from modula_testing import create_test_database, drop_test_database, running_app, token_client  # noqa: E402

SHOP = Path(__file__).resolve().parents[2] / "plugins" / "shop"
INSERT = """mutation($n: String!, $p: Float!) { insertShopProducts(objects: [{name: $n, price: $p, stockCount: 5,
  shopProductAttributes: [{key: "a", value: "1"}, {key: "b", value: "2"}, {key: "c", value: "3"}, {key: "d", value: "4"}, {key: "e", value: "5"}]}]) { affectedRows } }"""
READ = "{ shopProducts(limit: 100) { productId name price shopProductAttributes { key value } } }"
READ_LUA = "{ shopProducts(limit: 100) { productId name displayPrice } }"
READ_PLAIN = "{ shopProducts(limit: 100) { productId name price } }"
FILTERED = "{ shopProducts(where: {price: {gt: 50}}, orderBy: [{price: DESC}], limit: 20) { name price } }"


def report(label: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    rate = len(seconds) / sum(seconds)
    print(f"  {label:<58} {rate:8.1f}/s  p50 {pct(0.5):7.2f}  p95 {pct(0.95):7.2f}  p99 {pct(0.99):7.2f} ms")


async def timed(client, query: str, n: int, variables=None) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        body = await client.execute(query, variables(i) if callable(variables) else variables)
        out.append(time.perf_counter() - started)
        assert not body.get("errors"), body["errors"]
    return out


async def run(database_url: str, label: str, iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(SHOP, Path(tmp) / "plugins" / "shop")
        async with running_app(database_url, plugins_dir=Path(tmp) / "plugins") as app, \
                token_client(app, "bench", roles=["admin"]) as client:
            print(f"{label}:")
            report("insert 1 product + 5 attributes (nested)",
                   await timed(client, INSERT, iterations, lambda i: {"n": f"p{i}", "p": float(i % 100)}))
            statements: list = []
            stop = app.state.database.observe(statements.append)
            await client.execute(READ)
            stop()
            report(f"100 products + attributes ({len(statements) - 1} statements + viewer)", await timed(client, READ, iterations // 4))
            report("100 products, generated columns only", await timed(client, READ_PLAIN, iterations // 4))
            report("100 products with a Lua field (100 Lua calls)", await timed(client, READ_LUA, iterations // 4))
            report(f"filtered + sorted, {iterations} rows, limit 20", await timed(client, FILTERED, iterations // 2))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url")
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await run(f"sqlite:///{tmp}/bench.db", "SQLite", args.iterations)
    if args.postgres_url:
        name = f"modula_bench_{uuid.uuid4().hex[:8]}"
        url = await create_test_database(args.postgres_url, name)
        try:
            await run(url, "PostgreSQL", args.iterations)
        finally:
            await drop_test_database(args.postgres_url, name)


if __name__ == "__main__":
    asyncio.run(main())
