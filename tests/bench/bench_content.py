"""Core content benchmark (issue 11, item 5): the read and the write the issue names, each against
the same work done with raw SQL on the same driver, with the statements one request issues.

Per database (SQLite always; PostgreSQL with --postgres-url, on a temporary database):
1. `contents(limit: 100) { id fields { value field { label type } } }` over exactly 100 nodes of 20
   fields (all field types), through the whole GraphQL stack in-process (the ASGI app called
   directly, asgi_client.py -> Starlette -> Strawberry or the fast path -> cms -> db): requests/s and SQL statements per request, beside
   the same rows read with 3 plain queries on the raw driver (stdlib sqlite3 / asyncpg).
2. `createContent` with 20 fields, sequentially, beside the same transaction in raw SQL on the
   same driver (INSERT content_data RETURNING id, one multi-row INSERT of 20 content_fields): on
   SQLite both in a worker thread (how an asyncio app runs sqlite3) and on the loop's own thread
   (how Modula runs its short transactions, see db/inline.py). Each write phase starts with an
   empty WAL. The write is also measured through httpx's in-process transport (the tests' client),
   to show what that client alone costs.

It reuses bench_core.py's fixture, measuring loop and raw-driver code (bench_core.py also has the
Session + Core layer, 8 concurrent writers and a profile).

    python tests/bench/bench_content.py                          # SQLite
    python tests/bench/bench_content.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
    python tests/bench/bench_content.py --out after.json --compare before.json

How to read it: "createContent / raw" is the GraphQL write rate over the raw one (issue 11 wants
>= 0.5); the read's statement count must stay bounded (it does not grow with the number of nodes
or fields); with --compare, "gain" is how many times better the read did than in the earlier run
(the issue wants >= 5x over the rate before its work), measured on the read's "GraphQL / raw" ratio,
which takes the machine's drift out (the raw read runs in the same minutes on the same machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

from asgi_client import DirectClient
from bench_core import (Result, connect_raw, graphql_create, graphql_query, make_fixture, measure, next_position,
                        raw_create, raw_query, statements_of)
from modula.testing import running_app, token_client
from modula_testing import create_test_database, drop_test_database

CONTENTS_QUERY = "{ contents(limit: 100) { id fields { value field { label type } } } }"
NODES = 100


async def bench_database(database_url: str, plugins_dir: Path, creates: int, reads: int) -> dict[str, Result]:
    results: dict[str, Result] = {}
    async with running_app(database_url, plugins_dir=plugins_dir, viewer_cache=True) as app, \
            token_client(app, "bench", roles=["admin"]) as client:
        fixture = await make_fixture(client)
        direct = DirectClient.like(client)  # the server's work without httpx's (asgi_client.py)
        create = graphql_create(direct, fixture)
        for i in range(NODES):  # the read sees exactly these 100 nodes: it runs before any other insert
            await create(i)
        read = graphql_query(direct, CONTENTS_QUERY)
        results["read"] = await measure("contents(limit: 100), GraphQL", read, reads)
        results["read"].statements = await statements_of(app, read)
        raw = await connect_raw(database_url)
        try:
            results["raw_read"] = await measure("the same rows, raw driver (3 queries)", raw_query(raw), reads)
            results["raw_read"].statements = 3
            await settle(app)
            results["create"] = await measure("createContent 20 fields, GraphQL", create, creates)
            results["create"].statements = await statements_of(app, create)
            await settle(app)
            results["create_httpx"] = await measure("createContent 20 fields, GraphQL through httpx's ASGI transport",
                                                    graphql_create(client, fixture), creates)
            await settle(app)
            results["raw_create"] = await measure("the same transaction, raw driver", raw_create(
                raw, fixture, await next_position(app)), creates)
            results["raw_create"].statements = 4  # BEGIN, 2 INSERTs, COMMIT
            if app.state.database.is_sqlite:  # Modula's runs on the loop's thread: so does this one
                await settle(app)
                results["raw_create_loop"] = await measure("the same transaction, raw sqlite3 on the loop's thread",
                                                           raw_create(raw, fixture, await next_position(app), on_loop=True), creates)
                results["raw_create_loop"].statements = 4
        finally:
            await raw.close()
    return results


async def settle(app) -> None:
    """SQLite: start a write phase with an empty WAL, so that no phase pays for checkpointing the
    writes of the one before it (Modula's loop-thread connection leaves checkpoints to a
    background task; a plain sqlite3 connection checkpoints in its own commits)."""
    database = app.state.database
    if database.is_sqlite:
        async with database.session() as session:
            await session.fetch_native("PRAGMA wal_checkpoint(TRUNCATE)", [])


async def bench_sqlite(creates: int, reads: int) -> dict[str, Result]:
    with tempfile.TemporaryDirectory(prefix="modula-bench-content-") as tmp:
        return await bench_database(f"sqlite:///{Path(tmp) / 'bench.db'}", Path(tmp) / "plugins", creates, reads)


async def bench_postgres(admin_url: str, creates: int, reads: int) -> dict[str, Result]:
    name = f"modula_bench_{uuid.uuid4().hex[:10]}"
    url = await create_test_database(admin_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="modula-bench-content-") as tmp:
            return await bench_database(url, Path(tmp) / "plugins", creates, reads)
    finally:
        await drop_test_database(admin_url, name)


def summary(results: dict[str, Result]) -> dict:
    rate = {key: round(r.throughput, 1) for key, r in results.items()}
    return {"rates": rate, "statements": {key: r.statements for key, r in results.items()},
            "p50_ms": {key: round(r.percentile(50), 2) for key, r in results.items()},
            "errors": sum(r.errors for r in results.values()),
            "first_error": next((r.first_error for r in results.values() if r.first_error), None),
            "read_vs_raw": round(rate["read"] / rate["raw_read"], 3),
            "create_vs_raw": round(rate["create"] / rate["raw_create"], 3),
            "create_httpx_vs_raw": round(rate["create_httpx"] / rate["raw_create"], 3),
            "create_vs_raw_loop": round(rate["create"] / rate["raw_create_loop"], 3) if "raw_create_loop" in rate else None}


def render(by_dialect: dict[str, dict], earlier: dict | None) -> str:
    lines = ["| database | contents(limit:100) req/s | statements | raw read /s | GraphQL / raw |"
             " createContent /s | statements | raw insert /s | createContent / raw |"
             " raw on the loop /s | createContent / raw on the loop | through httpx / raw | gain vs --compare | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for dialect, s in by_dialect.items():
        rates, statements = s["rates"], s["statements"]
        before = (earlier or {}).get(dialect, {}).get("read_vs_raw")
        gain = f"{s['read_vs_raw'] / before:.2f}x" if before else "–"
        lines.append(f"| {dialect} | {rates['read']:,.1f} | {statements['read']} | {rates['raw_read']:,.0f} | "
                     f"{s['read_vs_raw']:.3f} | {rates['create']:,.0f} | {statements['create']} | "
                     f"{rates['raw_create']:,.0f} | {s['create_vs_raw']:.2f} | "
                     f"{rates.get('raw_create_loop', 0):,.0f} | {s['create_vs_raw_loop'] or 0:.2f} | {s['create_httpx_vs_raw']:.2f} | {gain} | {s['errors']} |")
    lines.append("\ntargets (issue 11): createContent / raw >= 0.5; contents statements bounded; gain >= 5x")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"),
                        help="PostgreSQL server for a temporary database (default: $MODULA_TEST_POSTGRES_URL)")
    parser.add_argument("--creates", type=int, default=200, help="inserts per write row (default 200)")
    parser.add_argument("--reads", type=int, default=30, help="requests per read row (default 30)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--out", type=Path, default=Path("bench_content.json"), help="JSON results")
    parser.add_argument("--compare", type=Path, help="an earlier --out file: print this run's read gain over it")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    by_dialect: dict[str, dict] = {}
    if not args.no_sqlite:
        by_dialect["SQLite"] = summary(await bench_sqlite(args.creates, args.reads))
    if args.postgres_url:
        by_dialect["PostgreSQL"] = summary(await bench_postgres(args.postgres_url, args.creates, args.reads))
    earlier = json.loads(args.compare.read_text()) if args.compare else None
    print(f"\n{NODES} nodes x 20 fields; {args.reads} reads and {args.creates} inserts per row, sequential, in-process\n")
    print(render(by_dialect, earlier))
    for dialect, s in by_dialect.items():
        if s["errors"]:
            print(f"\nERROR {dialect}: {s['errors']} errors, first: {s['first_error']}")
    args.out.write_text(json.dumps(by_dialect, indent=1))
    print(f"\nwritten: {args.out}")
    return 1 if any(s["errors"] for s in by_dialect.values()) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
