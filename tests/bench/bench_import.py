"""Bulk import benchmark: content nodes per second through `modula.cms.transfer.import_content`.

What it measures, per database (SQLite always; PostgreSQL when a server URL is given):

1. ``import`` of N content nodes (default 5,000) with 10 fields each (text, richtext, integer,
   number, boolean, date, datetime, json, and two more text fields), read from JSON Lines text,
   into a freshly migrated database, in one transaction, as `modula content import` does. Two
   shapes: ``flat`` (every node at the root of one route: the widest sibling list) and ``tree``
   (sections of 50: one parent with 49 children each).
2. ``export`` of the same nodes back to records (`modula content export` without the printing).

Each row reports nodes/s and the wall time; the import is checked to have written N nodes and
N x 10 values, so a fast wrong run cannot pass for a fast one.

Run from the repository root with the venv active::

    python tests/bench/bench_import.py                                  # SQLite only
    python tests/bench/bench_import.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
    python tests/bench/bench_import.py -n 1000 --profile                # + cProfile of a SQLite import

SQLite uses a temporary file; PostgreSQL a temporary database created next to the one in the URL
and dropped at the end. The defaults take about a minute for both dialects on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing

import sqlalchemy as sa  # noqa: E402

from modula.cms import datatypes, routes  # noqa: E402
from modula.cms.datatypes import NewField  # noqa: E402
from modula.cms.transfer import export_content, import_content, read_records  # noqa: E402
from modula.db import core_tables as t  # noqa: E402
from modula.db.connection import Database  # noqa: E402
from modula.db.migrations import migrate  # noqa: E402
from modula_testing import create_test_database, drop_test_database  # noqa: E402

FIELDS = [
    NewField("Title", "text", required=True),
    NewField("Body", "richtext"),
    NewField("Views", "integer"),
    NewField("Rating", "number"),
    NewField("Featured", "boolean"),
    NewField("Published on", "date"),
    NewField("Updated", "datetime"),
    NewField("Meta", "json"),
    NewField("Author", "text"),
    NewField("Summary", "text"),
]
SECTION = 50  # tree shape: one parent and 49 children


def jsonl(count: int, shape: str) -> str:
    """N import lines; in the tree shape every 50th line is a section the next 49 hang under."""
    lines = []
    for i in range(count):
        record = {
            "route": "blog",
            "datatype": "Article",
            "fields": {
                "Title": f"Article {i}", "Body": f"<p>Body of article {i}</p>" * 3, "Views": i, "Rating": 3.25,
                "Featured": i % 2 == 0, "Published on": "2024-05-01", "Updated": "2024-05-01T12:30:00Z",
                "Meta": {"tags": ["a", "b"], "n": i}, "Author": "Ada", "Summary": "A short summary.",
            },
        }
        if shape == "tree":
            if i % SECTION == 0:
                record["ref"] = f"s{i}"
            else:
                record["parent"] = f"s{i - i % SECTION}"
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


@dataclass
class Row:
    dialect: str
    operation: str
    nodes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.nodes / self.seconds


async def _fresh(url: str) -> Database:
    database = Database(url)
    await database.connect()
    async with database.session() as session:
        await migrate(session)
        await routes.create_route(session, slug="blog", title="Blog", site_id=None)
        await datatypes.create_datatype(session, label="Article", type="article", new_fields=FIELDS)
    return database


async def bench_url(dialect: str, url: str, count: int, shape: str, *, with_export: bool) -> list[Row]:
    text = jsonl(count, shape)
    database = await _fresh(url)
    try:
        async with database.session() as session:
            started = time.perf_counter()
            records = read_records(text, "bench.jsonl")
            created = await import_content(session, records)
            imported = Row(dialect, f"import ({shape})", created, time.perf_counter() - started)
            nodes = await session.fetch_value(sa.select(sa.func.count()).select_from(t.content_data))
            values = await session.fetch_value(sa.select(sa.func.count()).select_from(t.content_fields))
            assert (created, nodes, values) == (count, count, count * len(FIELDS)), (created, nodes, values)
            rows = [imported]
            if with_export:
                started = time.perf_counter()
                exported = await export_content(session)
                rows.append(Row(dialect, "export", len(exported), time.perf_counter() - started))
                assert len(exported) == count
        return rows
    finally:
        await database.disconnect()


async def bench_sqlite(count: int) -> list[Row]:
    rows = []
    for shape in ("flat", "tree"):
        with tempfile.TemporaryDirectory(prefix="modula-bench-") as tmp:
            rows += await bench_url("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", count, shape, with_export=shape == "flat")
    return rows


async def bench_postgres(admin_url: str, count: int) -> list[Row]:
    rows = []
    for shape in ("flat", "tree"):
        name = f"modula_bench_{uuid.uuid4().hex[:12]}"
        url = await create_test_database(admin_url, name)
        try:
            rows += await bench_url("PostgreSQL", url, count, shape, with_export=shape == "flat")
        finally:
            await drop_test_database(admin_url, name)
    return rows


async def profile_import(count: int, top: int = 15) -> str:
    with tempfile.TemporaryDirectory(prefix="modula-bench-") as tmp:
        database = await _fresh(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            records = read_records(jsonl(count, "flat"), "bench.jsonl")
            profiler = cProfile.Profile()
            async with database.session() as session:
                profiler.enable()
                await import_content(session, records)
                profiler.disable()
        finally:
            await database.disconnect()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats("modula", top)
    return out.getvalue()


def render(rows: list[Row]) -> str:
    lines = [f"{'database':<11} {'operation':<14} {'nodes':>7} {'seconds':>8} {'nodes/s':>8}"]
    for row in rows:
        lines.append(f"{row.dialect:<11} {row.operation:<14} {row.nodes:>7} {row.seconds:>8.2f} {row.rate:>8.0f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"),
                        help="PostgreSQL server to create a temporary database on (default: $MODULA_TEST_POSTGRES_URL)")
    parser.add_argument("--nodes", "-n", type=int, default=5000, help="content nodes per import (default 5000)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--profile", action="store_true", help="also cProfile an import on SQLite")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[Row] = []
    started = time.perf_counter()
    if not args.no_sqlite:
        rows += await bench_sqlite(args.nodes)
    if args.postgres_url:
        rows += await bench_postgres(args.postgres_url, args.nodes)
    if not rows:
        print("nothing to run: give --postgres-url or drop --no-sqlite", file=sys.stderr)
        return 2
    print(f"\n{args.nodes} content nodes of {len(FIELDS)} fields per import, one transaction; Python {sys.version.split()[0]}\n")
    print(render(rows))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if args.profile:
        print("\ncProfile of an import (SQLite, modula functions by cumulative time):\n")
        print(await profile_import(min(args.nodes, 1000)))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
