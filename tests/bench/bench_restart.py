"""Restart benchmark: how long `modula serve` on PostgreSQL with the bundled plugins takes to be
ready again after kill -9, beside its first start on a fresh database.

Each time is from starting the process to the first 200 of `/health/ready` (database reachable,
migrations applied, schema at the database's generation, LISTEN up), Python's own start-up
included. The first start migrates and installs; a restart finds the plugins in the registry
and only loads them.

Run from the repository root with the venv active::

    python tests/bench/bench_restart.py --postgres-url postgresql://postgres@127.0.0.1:5432/test

Another checkout's server (say main, for a before/after) runs with its package first on the path:
`PYTHONPATH=/path/to/main/server python tests/bench/bench_restart.py --postgres-url ... --path /health`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: serve_processes, modula_testing

from modula_testing import create_test_database, drop_test_database  # noqa: E402
from serve_processes import launch, stop  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[2] / "plugins"


def until_ready(served, path: str) -> float:
    started = time.monotonic()
    while True:
        try:
            if httpx.get(f"{served.base}{path}", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        assert served.process.poll() is None, served.process.stdout.read()
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--path", default="/health/ready",
                        help="the probe that says ready (/health for a checkout that has no /health/ready)")
    args = parser.parse_args()
    name = f"modula_bench_{uuid.uuid4().hex[:10]}"
    url = asyncio.run(create_test_database(args.postgres_url, name))
    root = Path(tempfile.mkdtemp(prefix="bench_restart_"))
    shutil.copytree(BUNDLED, root / "plugins", ignore=shutil.ignore_patterns("README.md"))
    env = {"DATABASE_URL": url}
    try:
        served = launch(root, "--plugins-dir", str(root / "plugins"), env=env)
        first = until_ready(served, args.path)
        restarts = []
        for _ in range(args.restarts):
            served.process.kill()  # kill -9
            served.process.wait()
            served = launch(root, "--plugins-dir", str(root / "plugins"), env=env)
            restarts.append(until_ready(served, args.path))
        stop(served)
    finally:
        asyncio.run(drop_test_database(args.postgres_url, name))
        shutil.rmtree(root, ignore_errors=True)
    print(f"first start on a fresh database (migrate, install shop and webhooks): {first:.2f} s")
    print(f"ready after kill -9, {args.restarts} times: min {min(restarts):.2f}  median {statistics.median(restarts):.2f}  "
          f"max {max(restarts):.2f} s")
    print(f"restart / first start: {statistics.median(restarts) / first:.2f}")


if __name__ == "__main__":
    main()
