"""The fast path against Strawberry's resolvers: requests/s of the issue's q1, q2 and q3 through the
ASGI app in process (httpx ASGITransport), the fast path on and off, side by side on the same data.

The bench plugin's two tables are filled with N products of 3 attributes each (default 10,000),
then each operation runs for a fixed time in each mode, sequentially from one client.

    python tests/bench/bench_fast_path.py [--products 10000] [--seconds 2] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/

from modula_testing import create_test_database, drop_test_database, running_app, token_client  # noqa: E402

BENCH_PLUGIN = Path("/work/shared/peerbench/bench_plugin")
LUA = r"""
plugin.define_table({ name = "bench_products", fields = { {name="product_id", type="integer", primary_key=true},
  {name="name", type="text", not_null=true}, {name="price", type="real", not_null=true},
  {name="category", type="text", not_null=true}, {name="created_at", type="text"} }, indexes = {{"price"}, {"category","price"}} })
plugin.define_table({ name = "bench_product_attributes", fields = { {name="attribute_id", type="integer", primary_key=true},
  {name="product_id", type="integer", foreign_key="bench_products", not_null=true}, {name="key", type="text", not_null=true},
  {name="value", type="text"} }, indexes = {{"product_id"}} })
"""
Q1 = ("query q1($min:Float!,$max:Float!){ benchProducts(where:{price:{gte:$min,lte:$max}}, orderBy:[{price:ASC}], limit:20)"
      "{ productId name price category } }")
Q2 = ("query q2($id:Int!){ benchProduct(productId:$id){ productId name price category createdAt "
      "benchProductAttributes { key value } } }")
Q3 = ("mutation q3($name:String!,$price:Float!,$cat:String!){ insertBenchProduct(object:{name:$name,price:$price,category:$cat})"
      "{ productId } }")


async def load(app, products: int) -> None:
    """Rows straight into the tables, in one transaction (the API is what is measured, not this)."""
    rng = random.Random(7)
    rows = [(i, f"product {i}", round(rng.uniform(1, 1000), 2), f"cat{i % 20}", "2026-01-01T00:00:00Z") for i in range(1, products + 1)]
    attributes = [(3 * (i - 1) + k + 1, i, key, f"{key} of {i}") for i in range(1, products + 1) for k, key in enumerate(("colour", "size", "origin"))]
    async with app.state.database.session() as session, session.transaction():
        raw = session.driver_connection
        if session.dialect == "sqlite":
            await raw.executemany("INSERT INTO bench_products VALUES (?, ?, ?, ?, ?)", rows)
            await raw.executemany("INSERT INTO bench_product_attributes VALUES (?, ?, ?, ?)", attributes)
        else:
            await raw.copy_records_to_table("bench_products", records=rows)
            await raw.copy_records_to_table("bench_product_attributes", records=attributes)
            await raw.execute("SELECT setval(pg_get_serial_sequence('bench_products', 'product_id'), $1)", products)
            await raw.execute("ANALYZE bench_products; ANALYZE bench_product_attributes")


async def rate(app, client, query: str, variables, seconds: float, fast: bool) -> float:
    app.state.settings = dataclasses.replace(app.state.settings, fast_path=fast)
    for i in range(20):  # warm up: plans, prepared statements, caches
        await client.execute(query, variables(i))
    done, i, started = 0, 20, time.perf_counter()
    while time.perf_counter() - started < seconds:
        body = await client.execute(query, variables(i))
        assert "errors" not in body, body
        done, i = done + 1, i + 1
    return done / (time.perf_counter() - started)


async def run(url: str, products: int, seconds: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="modula-bench-"))
    try:
        plugin = folder / "plugins" / "bench"
        if BENCH_PLUGIN.is_dir():
            shutil.copytree(BENCH_PLUGIN, plugin)
        else:
            plugin.mkdir(parents=True)
            (plugin / "plugin.json").write_text('{"name": "bench", "version": "1.0.0", "api": 1}')
            (plugin / "init.lua").write_text(LUA)
        async with running_app(url, plugins_dir=folder / "plugins", viewer_cache=True) as app:
            await load(app, products)
            async with token_client(app, "bench", roles=["admin"]) as client:
                rng = random.Random(1)
                cases = [("q1", Q1, lambda i: (lambda lo: {"min": lo, "max": lo + 10.0})(rng.uniform(1, 990))),
                         ("q2", Q2, lambda i: {"id": rng.randint(1, products)}),
                         ("q3", Q3, lambda i: {"name": f"new {i}", "price": 9.5, "cat": "new"})]
                print(f"{url.split(':')[0]}, {products} products x 3 attributes, {seconds:.0f} s per row, one client in process")
                for name, query, variables in cases:
                    slow = await rate(app, client, query, variables, seconds, fast=False)
                    fast = await rate(app, client, query, variables, seconds, fast=True)
                    print(f"  {name}: fast path {fast:8.1f} req/s   Strawberry {slow:8.1f} req/s   ratio {fast / slow:5.2f}x")
                compiled = app.state.live_schema.current.schema.compiled
                print(f"  plans made: {compiled.compilations}, operations answered by the fast path: {compiled.answered}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--postgres-url", help="also run on a fresh database of this PostgreSQL server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        await run(f"sqlite:///{scratch}/bench.db", args.products, args.seconds)
    if args.postgres_url:
        name = f"bench_fast_{uuid.uuid4().hex[:8]}"
        url = await create_test_database(args.postgres_url, name)
        try:
            await run(url, args.products, args.seconds)
        finally:
            await drop_test_database(args.postgres_url, name)


if __name__ == "__main__":
    asyncio.run(main())
