"""Viewer benchmark: what finding a request's viewer costs from the database and from memory.

Per database (SQLite always; PostgreSQL when a server URL is given), in one run:

1. `resolve_viewer` for a bearer token, a session cookie and an anonymous request, on one held
   session as the HTTP endpoint calls it: without a cache (the database, every time: today's
   path) and with a warmed `ViewerCache`. Microseconds per call and the ratio.
2. `{ routes { id } }` (10 routes) with a bearer token through the whole in-process stack (httpx
   ASGITransport -> Starlette -> Strawberry), sequentially, on an app without the viewer cache
   and on one with it: requests/s and the ratio.

Run from the repository root with the venv active::

    python tests/bench/bench_viewer.py
    python tests/bench/bench_viewer.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from starlette.requests import Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing

from modula.auth.sessions import COOKIE_NAME, create_session, session_ttl  # noqa: E402
from modula.auth.tokens import create_token  # noqa: E402
from modula.auth.viewer import resolve_viewer  # noqa: E402
from modula.auth.viewer_cache import ViewerCache  # noqa: E402
from modula.cms.routes import create_route  # noqa: E402
from modula_testing import (GraphQLClient, create_test_database, create_test_user, drop_test_database,  # noqa: E402
                            migrated_session, running_app)

QUERY = "{ routes { id } }"


def request_with(headers: dict[str, str]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/graphql", "scheme": "http",
                    "server": ("modula.test", 80), "query_string": b"",
                    "headers": [(name.encode(), value.encode()) for name, value in headers.items()]})


async def per_call_us(session, request, settings, cache, calls: int) -> float:
    await resolve_viewer(session, request, settings=settings, cache=cache)  # warm (and touch once)
    started = time.perf_counter()
    for _ in range(calls):
        await resolve_viewer(session, request, settings=settings, cache=cache)
    return (time.perf_counter() - started) / calls * 1e6


async def bench_resolve(url: str, folder: Path, calls: int) -> None:
    async with running_app(url, plugins_dir=folder / "plugins") as app:
        user = await create_test_user(app, "bench", roles=["editor", "viewer"])
        async with app.state.database.session() as session:
            token, _ = await create_token(session, user["id"], name="bench")
            secret, _ = await create_session(session, user["id"], ttl=session_ttl(app.state.settings))
        requests = {"token": request_with({"authorization": f"Bearer {token}"}),
                    "session": request_with({"cookie": f"{COOKIE_NAME}={secret}"}),
                    "anonymous": request_with({})}
        async with app.state.database.session() as session:
            for name, request in requests.items():
                cold = await per_call_us(session, request, app.state.settings, None, calls)
                cached = await per_call_us(session, request, app.state.settings, ViewerCache(), calls)
                print(f"  resolve_viewer {name:<9}  database {cold:8.1f} us   cached {cached:6.1f} us   "
                      f"ratio {cold / cached:6.1f}x")


async def requests_per_second(url: str, folder: Path, token_of, viewer_cache: bool, requests: int) -> float:
    async with running_app(url, plugins_dir=folder / "plugins", viewer_cache=viewer_cache) as app:
        token = await token_of(app)
        async with GraphQLClient.for_app(app) as client:
            client.use_token(token)
            for _ in range(20):
                await client.data(QUERY)
            started = time.perf_counter()
            for _ in range(requests):
                response = await client.http.post("/graphql", json={"query": QUERY})
                assert response.status_code == 200, response.text
            return requests / (time.perf_counter() - started)


async def bench_requests(url: str, folder: Path, requests: int) -> None:
    tokens: dict[str, str] = {}

    async def token_of(app) -> str:
        # The same user and token in both runs: the database is shared, the app is not.
        if "bench" not in tokens:
            user = await create_test_user(app, "bench_http", roles=["viewer"], password=None)
            async with app.state.database.session() as session:
                tokens["bench"], _ = await create_token(session, user["id"], name="bench")
                for n in range(10):
                    await create_route(session, slug=f"r{n}", title=f"R{n}", site_id=None)
        return tokens["bench"]

    before = await requests_per_second(url, folder, token_of, False, requests)
    after = await requests_per_second(url, folder, token_of, True, requests)
    print(f"  {QUERY} with a bearer token: without the cache {before:7.0f} req/s   with it {after:7.0f} req/s   "
          f"ratio {after / before:5.2f}x")


async def run(url: str, label: str, folder: Path, calls: int, requests: int) -> None:
    print(label)
    await bench_resolve(url, folder, calls)
    await bench_requests(url, folder, requests)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"))
    parser.add_argument("--calls", type=int, default=1000, help="resolve_viewer calls per row")
    parser.add_argument("--requests", type=int, default=400, help="HTTP requests per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        async with migrated_session(url):
            pass
        await run(url, "SQLite", folder, args.calls, args.requests)
        if args.postgres_url:
            name = f"modula_bench_{uuid.uuid4().hex[:8]}"
            pg_url = await create_test_database(args.postgres_url, name)
            try:
                await run(pg_url, "PostgreSQL", folder, args.calls, args.requests)
            finally:
                with contextlib.suppress(Exception):
                    await drop_test_database(args.postgres_url, name)


if __name__ == "__main__":
    asyncio.run(main())
