"""Typed content benchmark (issue 12, part 1): a datatype's generated list against the generic
`contents` form, over the same 100 nodes of 20 fields (all value types), in one run.

Per database (SQLite always; PostgreSQL with --postgres-url, on a temporary database), through the
whole GraphQL stack in-process, requests/s and SQL statements per request of:
1. `contents(limit: 100) { id fields { value field { label type } } }` (the generic form; the
   fast path compiles it into one statement);
2. `benches(limit: 100) { id f00Text f01Integer ... }` (the typed form, through Strawberry);
3. the typed form filtered and ordered on a typed field (`where: {f01Integer: {gte: 0}}`,
   `orderBy: [{f01Integer: DESC}]`).

    python tests/bench/bench_typed_content.py
    python tests/bench/bench_typed_content.py --postgres-url postgresql://postgres@127.0.0.1:5432/test

How to read it: "typed / generic" is the typed list's rate over the generic one's (same nodes, same
values, one run); statements must not grow with the number of nodes.
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

from bench_core import BENCH_FIELDS, Result, graphql_create, make_fixture, measure, statements_of  # puts tests/ on the path
from modula.db.field_names import derive
from modula.testing import running_app, token_client
from modula_testing import create_test_database, drop_test_database

NODES = 100
NAMES = " ".join(derive(f["label"]) for f in BENCH_FIELDS)
QUERIES = {
    "generic": ("contents", "{ contents(limit: 100) { id fields { value field { label type } } } }"),
    "typed": ("benches", f"{{ benches(limit: 100) {{ id {NAMES} }} }}"),
    "typed_filtered": ("benches", "{ benches(where: {f01Integer: {gte: 0}}, orderBy: [{f01Integer: DESC}], limit: 100) "
                                  f"{{ id {NAMES} }} }}"),
}


def _reader(client, key: str, query: str):
    async def op(i: int) -> None:
        body = await client.execute(query)
        if body.get("errors"):
            raise RuntimeError(body["errors"][0].get("message"))
        assert len(body["data"][key]) == NODES

    return op


async def bench_database(database_url: str, plugins_dir: Path, reads: int) -> dict[str, Result]:
    results: dict[str, Result] = {}
    async with running_app(database_url, plugins_dir=plugins_dir, viewer_cache=True) as app, \
            token_client(app, "bench", roles=["admin"]) as client:
        create = graphql_create(client, await make_fixture(client))
        for i in range(NODES):
            await create(i)
        for name, (key, query) in QUERIES.items():
            read = _reader(client, key, query)
            results[name] = await measure(name, read, reads)
            results[name].statements = await statements_of(app, read)
    return results


async def bench_sqlite(reads: int) -> dict[str, Result]:
    with tempfile.TemporaryDirectory(prefix="modula-bench-typed-") as tmp:
        return await bench_database(f"sqlite:///{Path(tmp) / 'bench.db'}", Path(tmp) / "plugins", reads)


async def bench_postgres(admin_url: str, reads: int) -> dict[str, Result]:
    name = f"modula_bench_{uuid.uuid4().hex[:10]}"
    url = await create_test_database(admin_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="modula-bench-typed-") as tmp:
            return await bench_database(url, Path(tmp) / "plugins", reads)
    finally:
        await drop_test_database(admin_url, name)


def summary(results: dict[str, Result]) -> dict:
    rates = {key: round(r.throughput, 1) for key, r in results.items()}
    return {"rates": rates, "statements": {key: r.statements for key, r in results.items()},
            "p50_ms": {key: round(r.percentile(50), 2) for key, r in results.items()},
            "p99_ms": {key: round(r.percentile(99), 2) for key, r in results.items()},
            "errors": sum(r.errors for r in results.values()),
            "typed_vs_generic": round(rates["typed"] / rates["generic"], 3),
            "filtered_vs_generic": round(rates["typed_filtered"] / rates["generic"], 3)}


def render(by_dialect: dict[str, dict]) -> str:
    lines = ["| database | form | req/s | p50 ms | p99 ms | statements |", "|---|---|---:|---:|---:|---:|"]
    for dialect, s in by_dialect.items():
        for form in QUERIES:
            lines.append(f"| {dialect} | {form} | {s['rates'][form]:,.1f} | {s['p50_ms'][form]} | {s['p99_ms'][form]} | "
                         f"{s['statements'][form]} |")
        lines.append(f"| {dialect} | typed / generic | {s['typed_vs_generic']:.3f} | | | |")
        lines.append(f"| {dialect} | filtered / generic | {s['filtered_vs_generic']:.3f} | | | |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"),
                        help="PostgreSQL server for a temporary database (default: $MODULA_TEST_POSTGRES_URL)")
    parser.add_argument("--reads", type=int, default=30, help="requests per form (default 30)")
    parser.add_argument("--out", type=Path, default=Path("bench_typed_content.json"), help="JSON results")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    by_dialect = {"sqlite": summary(await bench_sqlite(args.reads))}
    if args.postgres_url:
        by_dialect["postgresql"] = summary(await bench_postgres(args.postgres_url, args.reads))
    print(render(by_dialect))
    args.out.write_text(json.dumps(by_dialect, indent=2))
    return 1 if any(s["errors"] for s in by_dialect.values()) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
