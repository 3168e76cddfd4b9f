"""Finding a content node by its path (issue 12 §2), three ways side by side in one run, over the
same tree: the stored tree path (`cms/paths.py node_by_path`: one statement of index lookups, what
Modula does), a recursive CTE that walks the slugs from the root down in one statement, and a walk
in Python (one statement per level).

Per database (SQLite always; PostgreSQL with --postgres-url, on a temporary database), a route
holding a tree of FANOUT children per node, DEPTH levels deep, every lookup of a random leaf:
lookups/s of each way on one Session, and each's ratio to the stored path.

    python tests/bench/bench_content_paths.py
    python tests/bench/bench_content_paths.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench_core import Result, measure  # puts tests/ on the path
from modula.cms.paths import node_by_path
from modula.db.connection import Database
from modula.db.migrations import migrate
from modula.db.types import utcnow
from modula_testing import create_test_database, drop_test_database

FANOUT, DEPTH = 8, 4  # 8 + 64 + 512 + 4096 nodes


async def _seed(session) -> list[str]:
    """The tree, inserted level by level; returns every leaf's public path."""
    now = utcnow()
    async with session.transaction():
        await session.execute(sa.text("INSERT INTO routes (id, slug, title, created_at, updated_at) VALUES (1, 'blog', 'Blog', :n, :n)").bindparams(n=now))
        await session.execute(sa.text("INSERT INTO datatypes (id, label, type, created_at, updated_at) VALUES (1, 'Page', 'page', :n, :n)").bindparams(n=now))
        level: list[tuple[int | None, str | None]] = [(None, None)]
        next_id = 1
        for _ in range(DEPTH):
            rows, below = [], []
            for parent_id, parent_path in level:
                for position in range(FANOUT):
                    slug = f"page-{position}"
                    path = slug if parent_path is None else f"{parent_path}/{slug}"
                    rows.append({"id": next_id, "p": parent_id, "o": position, "s": slug, "t": path, "n": now})
                    below.append((next_id, path))
                    next_id += 1
            await session.execute_many(sa.text(
                "INSERT INTO content_data (id, route_id, datatype_id, parent_id, position, status, slug, tree_path,"
                " created_at, updated_at) VALUES (:id, 1, 1, :p, :o, 'published', :s, :t, :n, :n)"), rows)
            level = below
    return [f"/blog/{path}" for _, path in level]


_WALK = """WITH RECURSIVE segments(depth, slug) AS (VALUES {values}),
walk(id, depth) AS (
  SELECT c.id, 1 FROM content_data c JOIN routes r ON r.id = c.route_id
  WHERE r.site_id IS NULL AND r.slug = :route AND c.parent_id IS NULL AND c.slug = (SELECT slug FROM segments WHERE depth = 1)
  UNION ALL
  SELECT c.id, w.depth + 1 FROM content_data c JOIN walk w ON c.parent_id = w.id
  JOIN segments s ON s.depth = w.depth + 1 AND c.slug = s.slug)
SELECT content_data.* FROM content_data JOIN walk ON walk.id = content_data.id
WHERE walk.depth = (SELECT max(depth) FROM segments)"""


async def _by_cte(session, path: str):
    route, *slugs = path.strip("/").split("/")
    values = ", ".join(f"({i}, :s{i})" for i in range(1, len(slugs) + 1))
    params = {"route": route, **{f"s{i}": slug for i, slug in enumerate(slugs, 1)}}
    return await session.fetch_one(sa.text(_WALK.format(values=values)).bindparams(**params))


async def _by_python_walk(session, path: str):
    route, *slugs = path.strip("/").split("/")
    route_id = await session.fetch_value(sa.text("SELECT id FROM routes WHERE site_id IS NULL AND slug = :r").bindparams(r=route))
    node = None
    for slug in slugs:
        parent = "parent_id IS NULL" if node is None else "parent_id = :p"
        node = await session.fetch_one(sa.text(f"SELECT * FROM content_data WHERE route_id = :r AND {parent} AND slug = :s")
                                       .bindparams(r=route_id, s=slug, **({} if node is None else {"p": node["id"]})))
        if node is None:
            return None
    return node


async def bench_database(url: str, lookups: int) -> dict[str, Result]:
    database = Database(url)
    await database.connect()
    try:
        async with database.session() as session:
            await migrate(session)
            leaves = await _seed(session)
            picks = random.Random(12).choices(leaves, k=lookups + 100)
            expected = await node_by_path(session, picks[0], None)
            for way in (_by_cte, _by_python_walk):  # the three ways find the same node
                assert (await way(session, picks[0]))["id"] == expected["id"]
            ways = {"stored path": lambda i: node_by_path(session, picks[i], None),
                    "recursive CTE": lambda i: _by_cte(session, picks[i]),
                    "Python walk": lambda i: _by_python_walk(session, picks[i])}
            return {name: await measure(name, way, lookups) for name, way in ways.items()}
    finally:
        await database.disconnect()


async def bench_postgres(admin_url: str, lookups: int) -> dict[str, Result]:
    name = f"modula_bench_{uuid.uuid4().hex[:10]}"
    url = await create_test_database(admin_url, name)
    try:
        return await bench_database(url, lookups)
    finally:
        await drop_test_database(admin_url, name)


def render(by_dialect: dict[str, dict[str, Result]]) -> str:
    lines = [f"tree: {FANOUT} children per node, {DEPTH} levels; lookups of random leaves",
             "| database | way | lookups/s | p50 ms | / stored path |", "|---|---|---:|---:|---:|"]
    for dialect, results in by_dialect.items():
        base = results["stored path"].throughput
        for name, r in results.items():
            lines.append(f"| {dialect} | {name} | {r.throughput:,.0f} | {r.percentile(50):.3f} | {r.throughput / base:.2f} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"))
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modula-bench-paths-") as tmp:
        by_dialect = {"sqlite": await bench_database(f"sqlite:///{Path(tmp) / 'bench.db'}", args.lookups)}
    if args.postgres_url:
        by_dialect["postgresql"] = await bench_postgres(args.postgres_url, args.lookups)
    print(render(by_dialect))


if __name__ == "__main__":
    asyncio.run(main())
