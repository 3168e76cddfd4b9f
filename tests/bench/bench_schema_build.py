"""Schema build benchmark: what a plugin with many tables costs to install and to turn into GraphQL.

For a generated plugin with N tables (default 1, 10, 100, 500), each with 7 columns of mixed types
(integer key, text, real, boolean, datetime, json) and a foreign key to the previous table, it
reports per database (SQLite always; PostgreSQL when a server URL is given):

- install: ``PluginHost.install`` (run init.lua, plan and create the tables, record the plugin,
  reflect the tables back), once, on an empty database;
- build: ``modula.schema.builder.build`` called directly with the installed plugin, the median of
  a few runs (what every reload or follow costs, off the event loop);
- SDL: size of the built schema's SDL, and its number of types;
- RSS: peak resident memory growth of the process from just before install to after the builds.

Each (database, N) case runs in a fresh Python process so its peak RSS is its own. A size whose
estimated time (extrapolated linearly from the previous size) exceeds --budget seconds is
skipped with a note.

Run from the repository root with the venv active::

    python tests/bench/bench_schema_build.py                       # SQLite only
    python tests/bench/bench_schema_build.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
    python tests/bench/bench_schema_build.py --sizes 1,10,100 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing, test_plugins

from modula.schema.builder import build  # noqa: E402
from modula_testing import create_test_database, drop_test_database, running_app  # noqa: E402
from test_plugins import write_plugin  # noqa: E402

PLUGIN = "bench"


def table_name(i: int) -> str:
    return f"{PLUGIN}_t{i:03d}_rows"


def plugin_lua(tables: int) -> str:
    """init.lua declaring `tables` tables, each referring to the one before it."""
    parts = []
    for i in range(tables):
        parent = f'\n    {{name = "parent_id", type = "integer", foreign_key = "{table_name(i - 1)}"}},' if i else ""
        parts.append(f"""plugin.define_table({{name = "{table_name(i)}", fields = {{
    {{name = "row_id", type = "integer", primary_key = true}},
    {{name = "name", type = "text", not_null = true}},
    {{name = "price", type = "real"}},
    {{name = "active", type = "boolean", not_null = true, default = true}},
    {{name = "created_at", type = "datetime"}},
    {{name = "meta", type = "json"}},{parent}
}}, indexes = {{{{"name"}}}} }})
""")
    return "\n".join(parts)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --------------------------------------------------------------------------- one case (child process)


async def measure_case(database_url: str, tables: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        plugins_dir = Path(scratch) / "plugins"
        plugins_dir.mkdir()
        async with running_app(database_url, plugins_dir=plugins_dir) as app:
            host = app.state.plugins
            folder = write_plugin(Path(scratch) / "src", PLUGIN, plugin_lua(tables))
            build([], host)  # warm the core schema's caches so the first timed build is not penalised
            rss_before = peak_rss_mb()
            started = time.perf_counter()
            plugin = await host.install(folder)
            install = time.perf_counter() - started
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                result = build([plugin], host)
                timings.append(time.perf_counter() - started)
            if result.failures:
                raise RuntimeError(f"the plugin was left out: {result.failures}")
            sdl = result.schema.as_str()
            return {
                "tables": tables,
                "install": install,
                "build": statistics.median(timings),
                "build_min": min(timings),
                "sdl_kb": len(sdl.encode()) / 1024,
                "types": len(result.schema._schema.type_map),
                "rss_mb": peak_rss_mb() - rss_before,
            }


async def run_case(dialect: str, tables: int, runs: int, postgres_url: str | None) -> dict:
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            return await measure_case(f"sqlite:///{Path(scratch) / 'bench.db'}", tables, runs)
    name = f"modula_bench_{uuid.uuid4().hex[:12]}"
    url = await create_test_database(postgres_url, name)
    try:
        return await measure_case(url, tables, runs)
    finally:
        await drop_test_database(postgres_url, name)


def child(dialect: str, tables: int, runs: int, postgres_url: str | None) -> dict:
    """Run one case in a fresh interpreter so its peak RSS is not inherited from earlier cases."""
    command = [sys.executable, __file__, "--case", f"{dialect}:{tables}", "--runs", str(runs)]
    if postgres_url:
        command += ["--postgres-url", postgres_url]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"{dialect} with {tables} tables failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def render_table(rows: list[tuple[str, dict]]) -> str:
    header = ["database", "tables", "install s", "build s (median)", "build s (min)", "SDL KiB", "types", "peak RSS +MiB"]
    lines = [header] + [[dialect, str(r["tables"]), f"{r['install']:.3f}", f"{r['build']:.3f}", f"{r['build_min']:.3f}",
                         f"{r['sdl_kb']:.0f}", str(r["types"]), f"{r['rss_mb']:.0f}"] for dialect, r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = ["  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(line)) for line in lines]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"),
                        help="PostgreSQL server to create a temporary database on (default: $MODULA_TEST_POSTGRES_URL)")
    parser.add_argument("--sizes", default="1,10,100,500", help="table counts, comma separated (default 1,10,100,500)")
    parser.add_argument("--runs", type=int, default=5, help="builds per size; the median is reported (default 5)")
    parser.add_argument("--budget", type=float, default=60.0, help="skip a size estimated to take longer (seconds, default 60)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # dialect:tables, run by the parent in a child process
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        dialect, tables = args.case.split(":")
        print(json.dumps(asyncio.run(run_case(dialect, int(tables), args.runs, args.postgres_url))))
        return 0
    dialects = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres_url else [])
    if not dialects:
        print("nothing to run: give --postgres-url or drop --no-sqlite", file=sys.stderr)
        return 2
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows: list[tuple[str, dict]] = []
    notes: list[str] = []
    started = time.perf_counter()
    for dialect in dialects:
        previous: dict | None = None
        for tables in sizes:
            if previous is not None:
                estimate = (previous["install"] + previous["build"] * (args.runs + 1)) * tables / previous["tables"]
                if estimate > args.budget:
                    notes.append(f"{dialect}: {tables} tables skipped, estimated {estimate:.0f} s > budget {args.budget:.0f} s")
                    continue
            previous = child(dialect, tables, args.runs, args.postgres_url)
            rows.append((dialect, previous))
            print(f"  {dialect} {tables} tables done", file=sys.stderr)
    print(f"\nOne plugin with N tables (7 columns each, a foreign key to the previous table); build = median of "
          f"{args.runs}; Python {sys.version.split()[0]}\n")
    print(render_table(rows))
    for note in notes:
        print("\n" + note)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
