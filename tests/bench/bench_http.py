"""HTTP benchmark: what the GraphQL-over-HTTP layer costs over a real socket, and what the
playground weighs.

It starts `modula serve` (one uvicorn process) on a free port of 127.0.0.1 on a fresh SQLite
file (and on a fresh PostgreSQL database when a URL is given), then drives it from this process
with httpx over keep-alive connections, 8 concurrent clients:

1. a small query (`{ routes { id slug } }`, 10 routes) as POST JSON, as GET, and as POST asking
   for `application/graphql-response+json`;
2. a request error (a syntax error) answered 400 with `application/graphql-response+json`;
3. the playground: the page and its two assets, with their sizes and the time to fetch them.

Each row reports throughput (requests/s) and latency p50/p95/p99 in milliseconds. Client and
server share the machine's cores, so the numbers are a floor for what the server does alone.

Run from the repository root with the venv active::

    python tests/bench/bench_http.py
    python tests/bench/bench_http.py --postgres-url postgresql://postgres@127.0.0.1:5432/test --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing

from modula_testing import create_test_database, drop_test_database, migrated_session  # noqa: E402

CLIENTS = 8
SMALL_QUERY = "{ routes { id slug } }"
JSON_ACCEPT = {"accept": "application/json"}  # httpx sends */*, which now gets graphql-response+json


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def modula_serve(database_url: str, folder: Path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "MODULA_DATABASE_URL": "",
           "MODULA_PLUGINS_DIR": str(folder / "plugins")}
    process = subprocess.Popen([sys.executable, "-m", "modula.cli", "serve", "--port", str(port)], cwd=folder, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("modula serve did not start")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def admin_token(database_url: str) -> str:
    """A service account's API token, made directly in the database before the server starts."""
    from modula.auth.tokens import create_token
    from modula.auth.users import create_user

    async with migrated_session(database_url) as session:
        user = await create_user(session, username="bench", email="bench@example.com", password=None, roles=["admin"])
        secret, _ = await create_token(session, user["id"], name="bench")
    return secret


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(name: str, requests: int, send) -> None:
    """`send(http)` makes one request and returns the response; every status is checked by the caller."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=CLIENTS)) as http:
        for _ in range(20):  # warm up the connections and the server's caches
            await send(http)

        async def client(count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                await send(http)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client(requests // CLIENTS) for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    ms = [1000 * x for x in latencies]
    print(f"  {name:<52} {len(ms) / elapsed:8.1f}/s   p50 {percentile(ms, .5):6.1f}  p95 {percentile(ms, .95):6.1f}  "
          f"p99 {percentile(ms, .99):6.1f} ms")


def expect(status: int, media: str):
    def check(response: httpx.Response) -> httpx.Response:
        assert response.status_code == status, (response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith(media), response.headers["content-type"]
        return response
    return check


async def run(database_url: str, label: str, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "plugins").mkdir()
        token = await admin_token(database_url)
        with modula_serve(database_url, folder) as base:
            auth = {"authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=auth) as admin:
                for i in range(10):
                    body = admin.post("/graphql", json={"query": f'mutation {{ createRoute(input: {{slug: "r{i}", '
                                                                 f'title: "R{i}"}}) {{ id }} }}'}).json()
                    assert "errors" not in body, body
            url = f"{base}/graphql"
            print(f"{label}: {requests} requests per row, {CLIENTS} concurrent clients")
            json_ok = expect(200, "application/json")
            spec_ok = expect(200, "application/graphql-response+json")
            spec_400 = expect(400, "application/graphql-response+json")
            await measure("POST Accept: application/json, small query", requests,
                          lambda http: _checked(http.post(url, json={"query": SMALL_QUERY}, headers=JSON_ACCEPT), json_ok))
            await measure("GET ?query= Accept: application/json, small query", requests,
                          lambda http: _checked(http.get(url, params={"query": SMALL_QUERY}, headers=JSON_ACCEPT), json_ok))
            await measure("POST Accept: graphql-response+json, small query", requests,
                          lambda http: _checked(http.post(url, json={"query": SMALL_QUERY},
                                                          headers={"accept": "application/graphql-response+json"}),
                                                spec_ok))
            await measure("POST syntax error -> 400 graphql-response+json", requests,
                          lambda http: _checked(http.post(url, json={"query": "{ routes { "},
                                                          headers={"accept": "application/graphql-response+json"}),
                                                spec_400))
            with httpx.Client(base_url=base) as browser:
                started = time.perf_counter()
                page = browser.get("/playground", headers={"accept": "text/html"})
                js = browser.get("/playground/assets/playground.js")
                css = browser.get("/playground/assets/playground.css")
                elapsed = time.perf_counter() - started
                assert {page.status_code, js.status_code, css.status_code} == {200}
                print(f"  playground: page {len(page.content) / 1024:.1f} KiB, js {len(js.content) / 1024:.0f} KiB, "
                      f"css {len(css.content) / 1024:.0f} KiB; fetched in {1000 * elapsed:.0f} ms")


async def _checked(pending, check):
    return check(await pending)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"))
    parser.add_argument("--requests", type=int, default=1000, help="requests per row (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite", args.requests))
    if args.postgres_url:
        name = f"modula_bench_{uuid.uuid4().hex[:8]}"
        url = asyncio.run(create_test_database(args.postgres_url, name))
        try:
            asyncio.run(run(url, "PostgreSQL", args.requests))
        finally:
            asyncio.run(drop_test_database(args.postgres_url, name))


if __name__ == "__main__":
    main()
