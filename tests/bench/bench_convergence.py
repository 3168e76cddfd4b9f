"""Convergence benchmark: how long after a plugin change commits every replica serves it.

Three `modula serve` processes on one PostgreSQL database: replica A with a plugins folder (the
bundled plugins and a small `conv` plugin), B and C with an empty one. 20 changes, each a new
version of `conv` reloaded through A's `reloadPlugin` mutation. Meanwhile each replica is polled
every 10 ms (`{ convVersion }`, reading `extensions.schemaGeneration`) and 4 clients per replica
send `{ convVersion shopProducts(limit: 1) { productId } }` back to back.

A change's commit time is when this process hears the database's NOTIFY of the new generation
on a LISTEN connection of its own; a replica has converged when its poll first sees the new
generation. Reported: min / median / p99 / max per replica and over all, and the failed requests
(any status but 200, or a GraphQL error) of the clients and pollers, which must be 0. The same run
also measures the poll alone (`MODULA_LISTEN=0`, `--poll-interval`, default 1 s) for the ratio.

Run from the repository root with the venv active::

    python tests/bench/bench_convergence.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: serve_processes, modula_testing

from modula.auth.tokens import create_token  # noqa: E402
from modula.auth.users import create_user  # noqa: E402
from modula_testing import create_test_database, drop_test_database, migrated_session  # noqa: E402
from serve_processes import launch, stop, wait_ready  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[2] / "plugins"
CHANGES = 20
CLIENTS_PER_REPLICA = 4
POLL_SECONDS = 0.010
CONV = """
plugin.define_table({{name = "conv_items", fields = {{{{name = "item_id", type = "integer", primary_key = true}}}}}})
plugin.query{{name = "convVersion", returns = "Int!", handler = function() return {version} end}}
"""
LOAD_QUERIES = {True: "{ convVersion shopProducts(limit: 1) { productId } }", False: "{ convVersion convItems { itemId } }"}


def write_conv(folder: Path, version: int) -> None:
    target = folder / "conv"
    target.mkdir(parents=True, exist_ok=True)
    (target / "plugin.json").write_text(json.dumps({"name": "conv", "version": f"1.0.{version}"}))
    (target / "init.lua").write_text(CONV.format(version=version))


async def admin_token(url: str) -> str:
    async with migrated_session(url) as session:
        user = await create_user(session, username="bench", email="bench@example.com", password=None, roles=["admin"])
        secret, _ = await create_token(session, user["id"], name="bench")
        return secret


class Run:
    def __init__(self) -> None:
        self.failed = 0
        self.requests = 0
        self.stop = False
        self.first_seen: list[dict[int, float]] = []  # per replica: generation -> first time seen

    def check(self, response: httpx.Response) -> int | None:
        self.requests += 1
        body = response.json() if response.status_code == 200 else {}
        if response.status_code != 200 or body.get("errors"):
            self.failed += 1
            return None
        return body["extensions"]["schemaGeneration"]


async def poller(run: Run, index: int, base: str, token: str) -> None:
    seen = run.first_seen[index]
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=10) as http:
        while not run.stop:
            generation = run.check(await http.post("/graphql", json={"query": "{ convVersion }"}))
            if generation is not None:
                seen.setdefault(generation, time.monotonic())
            await asyncio.sleep(POLL_SECONDS)


async def client(run: Run, base: str, token: str, query: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=10) as http:
        while not run.stop:
            run.check(await http.post("/graphql", json={"query": query}))


async def measure(postgres_url: str, listen: bool, poll_interval: float, bundled: bool) -> dict:
    name = f"modula_bench_{uuid.uuid4().hex[:10]}"
    url = await create_test_database(postgres_url, name)
    root = Path(tempfile.mkdtemp(prefix="bench_convergence_"))
    folder = root / "a"
    folder.mkdir(parents=True)
    for plugin in ("shop", "webhooks") if bundled else ():
        (folder / plugin).mkdir(parents=True)
        for file in (BUNDLED / plugin).iterdir():
            (folder / plugin / file.name).write_bytes(file.read_bytes())
    write_conv(folder, 0)
    (root / "empty").mkdir()
    env = {"DATABASE_URL": url, "MODULA_FOLLOW_INTERVAL": str(poll_interval), "MODULA_LISTEN": "1" if listen else "0"}
    replicas = []
    notified: dict[int, float] = {}
    listener = None
    try:
        token = await admin_token(url)
        replicas.append(await asyncio.to_thread(wait_ready, launch(root, "--plugins-dir", str(folder), env=env)))
        others = [launch(root, "--plugins-dir", str(root / "empty"), env=env) for _ in range(2)]
        replicas += [await asyncio.to_thread(wait_ready, other) for other in others]
        listener = await asyncpg.connect(url)
        await listener.add_listener("modula_schema", lambda _c, _p, _ch, payload: notified.setdefault(int(payload), time.monotonic()))
        run = Run()
        run.first_seen = [{} for _ in replicas]
        tasks = [asyncio.create_task(poller(run, i, r.base, token)) for i, r in enumerate(replicas)]
        tasks += [asyncio.create_task(client(run, r.base, token, LOAD_QUERIES[bundled]))
                  for r in replicas for _ in range(CLIENTS_PER_REPLICA)]
        await asyncio.sleep(1.0)
        generations = []
        async with httpx.AsyncClient(base_url=replicas[0].base, headers={"authorization": f"Bearer {token}"},
                                     timeout=60) as admin:
            for version in range(1, CHANGES + 1):
                write_conv(folder, version)
                body = (await admin.post("/graphql", json={"query": 'mutation { reloadPlugin(name: "conv") { schemaGeneration } }'})).json()
                assert "errors" not in body, body
                generation = body["data"]["reloadPlugin"]["schemaGeneration"]
                generations.append(generation)
                deadline = time.monotonic() + 30
                while not all(any(g >= generation for g in seen) for seen in run.first_seen):
                    assert time.monotonic() < deadline, f"generation {generation} did not reach every replica"
                    await asyncio.sleep(0.005)
                print(f"  change {version}: generation {generation} everywhere", file=sys.stderr, flush=True)
                await asyncio.sleep(0.2)  # requests on the new generation before the next change
        run.stop = True
        await asyncio.gather(*tasks)
    finally:
        if listener is not None:
            await listener.close()
        for replica in replicas:
            stop(replica)
        await drop_test_database(postgres_url, name)
    per_replica = []
    for seen in run.first_seen:
        per_replica.append([min(t for g, t in seen.items() if g >= generation) - notified[generation]
                            for generation in generations])
    return {"per_replica": per_replica, "failed": run.failed, "requests": run.requests}


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"min {ordered[0] * 1000:6.1f}  median {statistics.median(ordered) * 1000:6.1f}  "
            f"p99 {p99 * 1000:6.1f}  max {ordered[-1] * 1000:6.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the poll-only run's interval (s)")
    parser.add_argument("--without-bundled", action="store_true",
                        help="only the small conv plugin (a rebuild then costs little): shows the delivery more than the build")
    parser.add_argument("--push-only", action="store_true", help="skip the poll-only run")
    args = parser.parse_args()
    results = {}
    runs = [("LISTEN/NOTIFY (poll 1 s as fallback)", True, 1.0)]
    if not args.push_only:
        runs.append((f"poll only, every {args.poll_interval} s", False, args.poll_interval))
    print(f"plugins: {'conv only' if args.without_bundled else 'shop, webhooks and conv'}")
    for label, listen, interval in runs:
        result = await measure(args.postgres_url, listen, interval, not args.without_bundled)
        results[label] = result
        print(f"\n{label}: {CHANGES} changes, 3 replicas, {CLIENTS_PER_REPLICA} clients each, polled every 10 ms")
        for index, samples in enumerate(result["per_replica"]):
            print(f"  replica {'ABC'[index]}{' (changed)' if index == 0 else '          '} {summary(samples)}")
        everything = [s for samples in result["per_replica"] for s in samples]
        print(f"  all replicas          {summary(everything)}")
        print(f"  failed requests: {result['failed']} of {result['requests']}")
    if len(results) == 2:
        (push, poll) = ([s for samples in r["per_replica"][1:] for s in samples] for r in results.values())
        print(f"\nother replicas, median poll / median push: {statistics.median(poll) / statistics.median(push):.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
