"""Memory benchmark (issue 11, item 6): one Modula worker's resident memory after --first q2
requests and after --second, and their ratio (the target: after 100,000 within 10 % of after
10,000, i.e. a ratio <= 1.10).

It builds the peer benchmark's dataset (peer_data.py) into the bench plugin's tables on a fresh
SQLite file, starts `modula serve` (one process) on a free 127.0.0.1 port, and sends q2 (one
product by key with its attributes, random keys) with wrk, 16 connections, until each count is
reached (wrk runs by time, so a count is overshot a little; the counts reached are printed); RSS
is read from /proc/<pid>/status. With --postgres-url the same runs on a fresh PostgreSQL
database instead (dropped at the end).

    python tests/bench/bench_memory.py                        # 1,000 then 10,000 requests
    python tests/bench/bench_memory.py --first 10000 --second 100000   # the issue's numbers

How to read it: the first count's RSS includes warm caches (schema, compiled statements, pools);
growth after that is what a long-running worker would keep adding. Bad responses must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing

import peer_data  # noqa: E402
import peer_load  # noqa: E402
import peer_servers  # noqa: E402
from modula_testing import create_test_database, drop_test_database  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=1_000, help="requests before the first reading (default 1,000)")
    parser.add_argument("--second", type=int, default=10_000, help="requests in all before the second (default 10,000)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres-url", help="run on a fresh database on this PostgreSQL server instead of SQLite")
    return parser.parse_args(argv)


def worker_pid(server: peer_servers.Server) -> int:
    """The process that serves: the server itself, or (should `modula serve` supervise its worker)
    its largest child."""
    children = peer_servers.descendants(server.pid)
    return max(children, key=peer_servers.rss_bytes) if children else server.pid


def measure(server: peer_servers.Server, args: argparse.Namespace) -> dict:
    """Send q2 in wrk runs (wrk runs for a time, not a count) sized by the rate seen so far, until
    each count is reached; the counts printed are the ones actually sent."""
    worker = worker_pid(server)
    readings = {"start": peer_servers.rss_bytes(worker)}
    sent = errors = 0
    rate = 0.0
    for label, target in (("first", args.first), ("second", args.second)):
        while sent < target:
            seconds = min(30.0, max(1.0, (target - sent) / rate)) if rate else 2.0
            result = peer_load.run_load(server, "q2", seconds, args.connections)
            sent += result["requests"]
            errors += result["errors"]
            rate = result["rps"]
        readings[label] = peer_servers.rss_bytes(worker)
        readings[f"{label}_requests"] = sent
        print(f"  after {sent:>9,} requests: RSS {readings[label] / 2**20:7.1f} MiB  ({rate:.0f} req/s)", flush=True)
    return {**readings, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.second <= args.first:
        raise SystemExit("--second must be larger than --first")
    peer_servers.clean_up_on_signals()
    name = f"modula_bench_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="modula-bench-memory-") as tmp:
        folder = Path(tmp)
        try:
            if args.postgres_url:
                database_url = asyncio.run(create_test_database(args.postgres_url, name))
            else:
                database_url = f"sqlite:///{folder / 'modula.db'}"
            products, attributes = peer_data.generate()
            peer_servers.prepare_modula(folder, database_url)
            if args.postgres_url:
                asyncio.run(peer_data.load_postgres(database_url, products, attributes))
            else:
                peer_data.load_sqlite(str(folder / "modula.db"), products, attributes)
            with peer_servers.Processes(folder) as processes:
                server = peer_servers.start_modula(processes, "Modula", folder, database_url)
                server.check()
                started = time.perf_counter()
                readings = measure(server, args)
        finally:
            if args.postgres_url:
                asyncio.run(drop_test_database(args.postgres_url, name))
    ratio = readings["second"] / readings["first"]
    mib = lambda b: f"{b / 2**20:.1f} MiB"  # noqa: E731
    print(f"\none Modula process ({'PostgreSQL' if args.postgres_url else 'SQLite'}), q2 over {args.connections} "
          f"connections, {time.perf_counter() - started:.0f} s")
    print(f"| RSS at start | after {readings['first_requests']:,} | after {readings['second_requests']:,} | ratio | target |")
    print("|---:|---:|---:|---:|---|")
    print(f"| {mib(readings['start'])} | {mib(readings['first'])} | {mib(readings['second'])} | {ratio:.3f} | <= 1.10 |")
    if readings["errors"]:
        print(f"\nERRORS: {readings['errors']} bad responses")
    return 1 if readings["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
