"""Core write/read benchmark: what one content node costs through each layer of the stack.

What it measures, per database (SQLite always; PostgreSQL when a server URL is given):

1. ``createContent`` of a node with 20 fields (text, integer, number, boolean, date, datetime,
   json) through the whole GraphQL stack in-process (httpx ASGITransport -> Starlette ->
   Strawberry -> cms service -> ``databases``): N sequential requests, then the same N spread
   over 8 concurrent clients (asyncio.gather over 8 loops). Errors are counted; on SQLite the
   concurrent run shows that write serialisation works (0 "database is locked").
2. The same insert as plain SQL, one transaction per node: ``INSERT content_data ... RETURNING
   id`` then one multi-row ``INSERT`` of the 20 ``content_fields`` rows. Once through
   modula's ``Database``/``Session`` layer with SQLAlchemy Core statements (the floor for our
   stack) and once with the raw driver (stdlib ``sqlite3`` in a thread / ``asyncpg``).
3. ``{ contents(limit: 100) { id fields { value field { id label type } } } }`` through
   GraphQL, with the number of SQL statements one request issues, against the same data
   fetched with 3 plain queries joined in Python (Session layer and raw driver). The GraphQL row
   runs twice: compiled into one statement (schema/compiled), then with the fast path off.

Each row reports throughput (operations/s) and latency p50/p95/p99 in milliseconds.

Run from the repository root with the venv active::

    python tests/bench/bench_core.py                       # SQLite only
    python tests/bench/bench_core.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
    MODULA_TEST_POSTGRES_URL=postgresql://... python tests/bench/bench_core.py --iterations 1000
    python tests/bench/bench_core.py --profile             # + cProfile of createContent (SQLite)

SQLite uses a temporary file; PostgreSQL a temporary database created next to the one in the
URL and dropped at the end. The defaults finish well within ~3 minutes for both dialects.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import io
import os
import pstats
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing, cms_fixtures

import asyncpg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cms_fixtures import field_ids, make_datatype, make_route  # noqa: E402
from modula.cms.field_types import parse_value  # noqa: E402
from modula.db import core_tables as t  # noqa: E402
from asgi_client import DirectClient  # noqa: E402
from modula_testing import GraphQLClient, create_test_database, drop_test_database, running_app, token_client  # noqa: E402

CONCURRENT_CLIENTS = 8
WARMUP = 10

CREATE_CONTENT_ID_ONLY = """
mutation($input: CreateContentInput!) { createContent(input: $input) { id } }"""
QUERY_100 = "{ contents(limit: 100) { id fields { value field { id label type } } } }"

# One sample value per field type; 20 fields cycle through the 7 types.
SAMPLE_VALUES = {
    "text": "Hello, benchmark",
    "integer": "42",
    "number": "3.25",
    "boolean": "true",
    "date": "2024-05-01",
    "datetime": "2024-05-01T12:30:00Z",
    "json": '{"tags": ["a", "b"], "n": 1}',
}
FIELD_TYPES = list(SAMPLE_VALUES)
BENCH_FIELDS = [{"label": f"F{i:02d} {FIELD_TYPES[i % 7]}", "type": FIELD_TYPES[i % 7]} for i in range(20)]


# --------------------------------------------------------------------------- measuring


@dataclass
class Result:
    name: str
    operations: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    statements: int | None = None

    @property
    def throughput(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in ms (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


Operation = Callable[[int], Awaitable[None]]


async def _timed_loop(op: Operation, indexes: range, result: Result) -> None:
    for i in indexes:
        started = time.perf_counter()
        try:
            await op(i)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts errors, it does not stop
            result.errors += 1
            result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
        result.latencies.append(time.perf_counter() - started)


async def measure(name: str, op: Operation, iterations: int, *, clients: int = 1) -> Result:
    """Run `op(i)` `iterations` times, split over `clients` concurrent loops, after a warm-up."""
    warmup = Result("warmup")
    await _timed_loop(op, range(-WARMUP, 0), warmup)
    result = Result(name, operations=iterations)
    chunks = [range(c, iterations, clients) for c in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(_timed_loop(op, chunk, result) for chunk in chunks))
    result.seconds = time.perf_counter() - started
    result.errors += warmup.errors
    result.first_error = warmup.first_error or result.first_error
    return result


def count_statements(database) -> tuple[list[str], Callable[[], None]]:
    """Start recording the SQL `database` runs; returns (the list, stop)."""
    seen: list[str] = []
    return seen, database.observe(seen.append)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Fixture:
    """A route and a 20-field datatype, plus the same values ready for each layer."""

    route_id: int
    datatype_id: int
    graphql_input: dict
    stored_rows: list[dict]  # field_id, value, value_number, value_time (parsed once)


async def make_fixture(client: GraphQLClient) -> Fixture:
    route = await make_route(client, slug="bench", title="Bench")
    datatype = await make_datatype(client, fields=BENCH_FIELDS, label="Bench", type="bench")
    ids = field_ids(datatype)
    values = [(ids[f["label"]], SAMPLE_VALUES[f["type"]], f["type"]) for f in BENCH_FIELDS]
    graphql_input = {
        "routeId": route["id"],
        "datatypeId": datatype["id"],
        "fields": [{"fieldId": fid, "value": raw} for fid, raw, _ in values],
    }
    stored_rows = []
    for fid, raw, kind in values:
        stored = parse_value(kind, raw)
        stored_rows.append({"field_id": fid, "value": stored.value, "value_number": stored.value_number,
                            "value_time": stored.value_time})
    return Fixture(route["id"], datatype["id"], graphql_input, stored_rows)


# --------------------------------------------------------------------------- GraphQL layer


def graphql_create(client: GraphQLClient | DirectClient, fixture: Fixture) -> Operation:
    """Each node with a title of its own (its first text value), as content has: its slug, derived
    from that title, is free among its siblings at the first try."""
    made = iter(range(10**9))
    items = fixture.graphql_input["fields"]
    first_text = next(k for k, f in enumerate(BENCH_FIELDS) if f["type"] == "text")

    async def op(i: int) -> None:
        fields = list(items)
        fields[first_text] = {**items[first_text], "value": f"{items[first_text]['value']} {next(made)}"}
        body = await client.execute(CREATE_CONTENT_ID_ONLY, {"input": {**fixture.graphql_input, "fields": fields}})
        if body.get("errors"):
            raise RuntimeError(body["errors"][0].get("message"))

    return op


def graphql_query(client: GraphQLClient | DirectClient, query: str = QUERY_100) -> Operation:
    async def op(i: int) -> None:
        body = await client.execute(query)
        if body.get("errors"):
            raise RuntimeError(body["errors"][0].get("message"))
        assert len(body["data"]["contents"]) == 100

    return op


async def statements_of(app, op: Operation) -> int:
    seen, stop = count_statements(app.state.database)
    try:
        await op(0)
    finally:
        stop()
    return len(seen)


# --------------------------------------------------------------------------- Session + Core layer


def _content_row(fixture: Fixture, position: int) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    slug = f"raw-{position}"  # the same row as Modula's: its slug and path too
    return {"route_id": fixture.route_id, "datatype_id": fixture.datatype_id, "parent_id": None,
            "position": position, "status": "published", "slug": slug, "tree_path": slug, "created_at": now,
            "updated_at": now}


def session_create(database, fixture: Fixture, first_position: int) -> Operation:
    """The floor for our stack: two Core statements in one Session transaction."""

    async def op(i: int) -> None:
        async with database.session() as session, session.transaction():
            content_id = await session.fetch_value(
                t.content_data.insert().values(**_content_row(fixture, first_position + i)).returning(t.content_data.c.id)
            )
            rows = [{"content_data_id": content_id, **row} for row in fixture.stored_rows]
            await session.execute(t.content_fields.insert().values(rows))

    return op


def join_contents(contents, values, fields) -> list[dict]:
    """Shape 3 flat result sets like the GraphQL answer: node -> fields -> field definition."""
    by_field = {f["id"]: f for f in fields}
    by_content: dict[int, list[dict]] = {c["id"]: [] for c in contents}
    for v in values:
        by_content[v["content_data_id"]].append({"value": v["value"], "field": by_field[v["field_id"]]})
    return [{"id": c["id"], "fields": by_content[c["id"]]} for c in contents]


def session_query(database) -> Operation:
    cd, cf, f = t.content_data, t.content_fields, t.fields

    async def op(i: int) -> None:
        async with database.session() as session:
            contents = await session.fetch_all(sa.select(cd.c.id).order_by(cd.c.id).limit(100))
            ids = [c["id"] for c in contents]
            values = await session.fetch_all(
                sa.select(cf.c.content_data_id, cf.c.field_id, cf.c.value)
                .where(cf.c.content_data_id.in_(ids)).order_by(cf.c.content_data_id, cf.c.id)
            )
            field_rows = await session.fetch_all(
                sa.select(f.c.id, f.c.label, f.c.type).where(f.c.id.in_({v["field_id"] for v in values}))
            )
        assert len(join_contents(contents, values, field_rows)) == 100

    return op


# --------------------------------------------------------------------------- raw drivers


class RawSqlite:
    """stdlib sqlite3 on one connection, each unit of work run in a worker thread (or on the loop's own)."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.connection.execute("PRAGMA foreign_keys = ON")
        self.connection.execute("PRAGMA busy_timeout = 10000")
        self.connection.execute("PRAGMA synchronous = NORMAL")  # as Modula's connections: no fsync per commit in WAL

    async def close(self) -> None:
        self.connection.close()

    def _insert(self, content: dict, rows: list[dict]) -> None:
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            (content_id,) = db.execute(
                "INSERT INTO content_data (route_id, datatype_id, parent_id, position, status, slug, tree_path,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (content["route_id"], content["datatype_id"], None, content["position"], content["status"],
                 content["slug"], content["tree_path"], _sqlite_time(content["created_at"]),
                 _sqlite_time(content["updated_at"])),
            ).fetchone()
            placeholders = ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
            params = [p for r in rows for p in (content_id, r["field_id"], r["value"], r["value_number"],
                                                 _sqlite_time(r["value_time"]))]
            db.execute("INSERT INTO content_fields (content_data_id, field_id, value, value_number, value_time)"
                       f" VALUES {placeholders}", params)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def insert(self, content: dict, rows: list[dict]) -> None:
        await asyncio.to_thread(self._insert, content, rows)

    async def insert_on_loop(self, content: dict, rows: list[dict]) -> None:
        """The same transaction on the event loop's thread, as Modula's short transactions run."""
        self._insert(content, rows)

    def _query(self) -> list[dict]:
        db = self.connection
        contents = [{"id": r[0]} for r in db.execute("SELECT id FROM content_data ORDER BY id LIMIT 100")]
        ids = [c["id"] for c in contents]
        values = [
            {"content_data_id": r[0], "field_id": r[1], "value": r[2]}
            for r in db.execute(
                "SELECT content_data_id, field_id, value FROM content_fields"
                f" WHERE content_data_id IN ({', '.join('?' * len(ids))}) ORDER BY content_data_id, id", ids)
        ]
        field_ids_ = sorted({v["field_id"] for v in values})
        fields = [
            {"id": r[0], "label": r[1], "type": r[2]}
            for r in db.execute(f"SELECT id, label, type FROM fields WHERE id IN ({', '.join('?' * len(field_ids_))})",
                                field_ids_)
        ]
        return join_contents(contents, values, fields)

    async def query(self) -> list[dict]:
        return await asyncio.to_thread(self._query)


def _sqlite_time(value: dt.datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime stores: naive UTC, microseconds."""
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


class RawPostgres:
    """asyncpg on one connection."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, url: str) -> RawPostgres:
        return cls(await asyncpg.connect(url))

    async def close(self) -> None:
        await self.connection.close()

    async def insert(self, content: dict, rows: list[dict]) -> None:
        db = self.connection
        async with db.transaction():
            content_id = await db.fetchval(
                "INSERT INTO content_data (route_id, datatype_id, parent_id, position, status, slug, tree_path,"
                " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                content["route_id"], content["datatype_id"], None, content["position"], content["status"],
                content["slug"], content["tree_path"], content["created_at"], content["updated_at"],
            )
            placeholders = ", ".join(
                f"(${5 * k + 1}, ${5 * k + 2}, ${5 * k + 3}, ${5 * k + 4}, ${5 * k + 5})" for k in range(len(rows))
            )
            params = [p for r in rows for p in (content_id, r["field_id"], r["value"], r["value_number"], r["value_time"])]
            await db.execute("INSERT INTO content_fields (content_data_id, field_id, value, value_number, value_time)"
                             f" VALUES {placeholders}", *params)

    async def query(self) -> list[dict]:
        db = self.connection
        contents = [dict(r) for r in await db.fetch("SELECT id FROM content_data ORDER BY id LIMIT 100")]
        ids = [c["id"] for c in contents]
        values = [dict(r) for r in await db.fetch(
            "SELECT content_data_id, field_id, value FROM content_fields"
            " WHERE content_data_id = ANY($1::int[]) ORDER BY content_data_id, id", ids)]
        fields = [dict(r) for r in await db.fetch(
            "SELECT id, label, type FROM fields WHERE id = ANY($1::int[])", list({v["field_id"] for v in values}))]
        return join_contents(contents, values, fields)


def raw_create(raw, fixture: Fixture, first_position: int, *, on_loop: bool = False) -> Operation:
    insert = raw.insert_on_loop if on_loop else raw.insert

    async def op(i: int) -> None:
        await insert(_content_row(fixture, first_position + i), fixture.stored_rows)

    return op


def raw_query(raw) -> Operation:
    async def op(i: int) -> None:
        assert len(await raw.query()) == 100

    return op


async def connect_raw(database_url: str):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return RawSqlite(url.database)
    return await RawPostgres.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))


# --------------------------------------------------------------------------- one dialect


async def next_position(app) -> int:
    """Positions for rows inserted behind the service's back: after everything there is."""
    async with app.state.database.session() as session:
        return int(await session.fetch_value(sa.select(sa.func.count()).select_from(t.content_data)) or 0) + 1000


async def bench_database(database_url: str, iterations: int, query_iterations: int, plugins_dir: Path) -> list[Result]:
    results: list[Result] = []
    async with running_app(database_url, plugins_dir=plugins_dir, viewer_cache=True) as app, token_client(app, "bench", roles=["admin"]) as client:
        database = app.state.database
        fixture = await make_fixture(client)
        create = graphql_create(client, fixture)

        r = await measure("createContent, GraphQL, sequential", create, iterations)
        r.statements = await statements_of(app, create)
        results.append(r)
        results.append(await measure(f"createContent, GraphQL, {CONCURRENT_CLIENTS} clients", create, iterations,
                                     clients=CONCURRENT_CLIENTS))

        r = await measure("insert, Session + Core", session_create(database, fixture, await next_position(app)),
                          iterations)
        r.statements = await statements_of(app, session_create(database, fixture, await next_position(app)))
        results.append(r)

        raw = await connect_raw(database_url)
        try:
            r = await measure("insert, raw driver", raw_create(raw, fixture, await next_position(app)), iterations)
            r.statements = 4  # BEGIN, 2 INSERTs, COMMIT
            results.append(r)

            query = graphql_query(client)
            r = await measure("contents(limit:100), GraphQL", query, query_iterations)
            r.statements = await statements_of(app, query)
            results.append(r)
            app.state.settings = dataclasses.replace(app.state.settings, fast_path=False)
            try:
                r = await measure("contents(limit:100), GraphQL, fast path off", query, query_iterations)
                r.statements = await statements_of(app, query)
                results.append(r)
            finally:
                app.state.settings = dataclasses.replace(app.state.settings, fast_path=True)
            r = await measure("contents(limit:100), Session + Core", session_query(database), query_iterations)
            r.statements = await statements_of(app, session_query(database))
            results.append(r)
            r = await measure("contents(limit:100), raw driver", raw_query(raw), query_iterations)
            r.statements = 3
            results.append(r)
        finally:
            await raw.close()
    return results


async def bench_sqlite(iterations: int, query_iterations: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="modula-bench-") as tmp:
        return await bench_database(f"sqlite:///{Path(tmp) / 'bench.db'}", iterations, query_iterations,
                                    Path(tmp) / "plugins")


async def bench_postgres(admin_url: str, iterations: int, query_iterations: int) -> list[Result]:
    name = f"modula_bench_{uuid.uuid4().hex[:12]}"
    url = await create_test_database(admin_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="modula-bench-") as tmp:
            return await bench_database(url, iterations, query_iterations, Path(tmp) / "plugins")
    finally:
        await drop_test_database(admin_url, name)


# --------------------------------------------------------------------------- profile


async def profile_create_content(iterations: int, top: int = 15) -> str:
    """cProfile of sequential createContent requests on SQLite: own time by package, the top
    functions by own time, and modula's own functions by cumulative time."""
    with tempfile.TemporaryDirectory(prefix="modula-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        async with running_app(url, plugins_dir=Path(tmp) / "plugins", viewer_cache=True) as app, token_client(app, "bench", roles=["admin"]) as client:
            create = graphql_create(client, await make_fixture(client))
            for i in range(WARMUP):
                await create(i)
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(iterations):
                await create(i)
            profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"{iterations} requests; own time by package (ms per request, profiler overhead included):\n")
    for package, seconds in own_time_by_package(stats)[:top]:
        out.write(f"  {package:<28} {seconds / iterations * 1000:8.2f}\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"/modula/", top)
    out.write("Where SQL gets compiled: ClauseElement.__str__ (modula's statement observers) vs databases' _compile:\n")
    stats.sort_stats("cumulative").print_stats(r"elements.py:\d+\(__str__\)|backends/\w+.py:\d+\(_compile\)")
    return out.getvalue()


def own_time_by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Sum each function's own time under its top-level package (site-packages name, modula, stdlib module)."""
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():
        if "site-packages/" in filename:
            package = filename.split("site-packages/")[1].split("/")[0]
        elif "/modula/" in filename:
            package = "modula." + filename.split("/modula/")[1].split("/")[0].removesuffix(".py")
        elif filename == "~":
            package = f"builtin {name}" if "poll" in name or "select" in name else "builtins"
        else:
            package = "stdlib " + Path(filename).stem
        totals[package] = totals.get(package, 0.0) + tottime
    return sorted(totals.items(), key=lambda item: -item[1])


# --------------------------------------------------------------------------- report


def _cells(result: Result | None) -> list[str]:
    if result is None:
        return ["–"] * 3
    latency = f"{result.percentile(50):.2f} / {result.percentile(95):.2f} / {result.percentile(99):.2f}"
    rate = result.throughput
    return [f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}", latency, str(result.errors)]


def render_table(by_dialect: dict[str, list[Result]]) -> str:
    dialects = list(by_dialect)
    header = ["benchmark"]
    for d in dialects:
        header += [f"{d} ops/s", f"{d} p50 / p95 / p99 ms", f"{d} errors"]
    header.append("SQL stmts")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    names = [r.name for r in next(iter(by_dialect.values()))]
    for name in names:
        row = [name]
        statements = []
        for d in dialects:
            result = next((r for r in by_dialect[d] if r.name == name), None)
            row += _cells(result)
            if result is not None and result.statements is not None:
                statements.append(str(result.statements))
        row.append(" / ".join(dict.fromkeys(statements)) or "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def error_notes(by_dialect: dict[str, list[Result]]) -> list[str]:
    return [f"{d}: {r.name}: {r.errors} errors, first: {r.first_error}"
            for d, results in by_dialect.items() for r in results if r.errors]


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"),
                        help="PostgreSQL server to create a temporary database on (default: $MODULA_TEST_POSTGRES_URL)")
    parser.add_argument("--iterations", "-n", type=int, default=300, help="inserts per write benchmark (default 300)")
    parser.add_argument("--query-iterations", type=int, default=None,
                        help="requests per query benchmark (default: iterations / 10, at least 20)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--profile", action="store_true", help="also cProfile createContent on SQLite")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    query_iterations = args.query_iterations or max(20, args.iterations // 10)
    by_dialect: dict[str, list[Result]] = {}
    started = time.perf_counter()
    if not args.no_sqlite:
        by_dialect["SQLite"] = await bench_sqlite(args.iterations, query_iterations)
    if args.postgres_url:
        by_dialect["PostgreSQL"] = await bench_postgres(args.postgres_url, args.iterations, query_iterations)
    if not by_dialect:
        print("nothing to run: give --postgres-url or drop --no-sqlite", file=sys.stderr)
        return 2
    print(f"\n{args.iterations} inserts of 20 fields per write row, {query_iterations} reads of 100 nodes "
          f"(x 20 fields) per query row; {WARMUP} warm-up operations each; Python {sys.version.split()[0]}\n")
    print(render_table(by_dialect))
    notes = error_notes(by_dialect)
    for note in notes:
        print("\nERROR " + note)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if args.profile:
        print("\ncProfile of createContent (SQLite, GraphQL, sequential):\n")
        print(await profile_create_content(min(args.iterations, 100)))
    return 1 if notes else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
