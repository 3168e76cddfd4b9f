"""What a test of Modula or of a plugin needs: a running app, a GraphQL client, and clients signed in
as real users (created as `modula users create` creates them)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from modula.app import create_app
from modula.config import Settings
from modula.db import outbox


@contextlib.asynccontextmanager
async def running_app(database_url: str, *, plugins_dir: Path | None = None, **settings: Any):
    """The application with its lifespan running (database connected and migrated).

    It does not poll for other processes' plugin changes unless `follow_interval` is given: a
    test has no other process to follow, and the poll's statement would land at random in tests
    that count the statements of a request. Nor does it keep viewers in memory unless
    `viewer_cache=True` is given: tests that change credentials with raw SQL, and those that
    count a request's statements, see the database's answer on every request, as before the
    cache (tests/test_viewer_cache.py covers the cache). Nor does it run the outbox worker unless
    `outbox_worker=True` is given (its poll too would land in counted statements): a test
    delivers what is queued with `deliver_outbox(app)`."""
    settings.setdefault("follow_interval", 3600.0)
    settings.setdefault("outbox_worker", False)
    settings.setdefault("listen", False)  # nor LISTEN, for the same reason, unless asked for
    settings.setdefault("viewer_cache", False)
    app = create_app(Settings(database_url=database_url, plugins_dir=plugins_dir or Path("plugins"), **settings))
    async with app.router.lifespan_context(app):
        yield app


async def deliver_outbox(app, *, timeout: float = 10.0) -> dict[str, int]:
    """Run the app's outbox worker until no entry is pending (each delivered or dead) or `timeout`
    seconds passed (entries waiting out a backoff are waited for); returns the counts by status."""
    worker, loop = app.state.outbox, asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await worker.step()
        await worker.drain()
        async with app.state.database.session() as session:
            counts = await outbox.counts(session)
        if counts[outbox.PENDING] == 0 or loop.time() >= deadline:
            return counts
        await asyncio.sleep(0.02)


class GraphQLClient:
    """Talks to the app over in-process HTTP, as a frontend would."""

    def __init__(self, app, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    @classmethod
    @contextlib.asynccontextmanager
    async def for_app(cls, app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://modula.test") as http:
            yield cls(app, http)

    def use_token(self, token: str | None) -> None:
        """Send `Authorization: Bearer <token>` from now on (None: stop sending it)."""
        if token is None:
            self.http.headers.pop("authorization", None)
        else:
            self.http.headers["authorization"] = f"Bearer {token}"

    async def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in through the `login` mutation; the session cookie stays in this client."""
        data = await self.data(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id username roles } }",
            {"u": username, "p": password},
        )
        return data["login"]

    async def execute(self, query: str, variables: dict | None = None, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables}, **kwargs)
        return response.json()

    async def data(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        """Execute and insist on success: the test fails with the server's errors otherwise."""
        body = await self.execute(query, variables)
        assert not body.get("errors"), body.get("errors")
        return body["data"]

    async def error(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        """Execute and insist on exactly one error; returns it."""
        body = await self.execute(query, variables)
        errors = body.get("errors") or []
        assert len(errors) == 1, body
        return errors[0]

    @property
    def database(self):
        return self.app.state.database

    async def count(self, table: str) -> int:
        async with self.database.session() as session:
            return await session.fetch_value(sa.select(sa.func.count()).select_from(sa.table(table)))

    async def counts(self, *tables: str) -> dict[str, int]:
        return {table: await self.count(table) for table in tables}


TEST_PASSWORD = "correct horse battery staple"


async def create_test_user(app, username: str, *, roles: list[str] | tuple[str, ...] = (),
                           password: str | None = TEST_PASSWORD, email: str | None = None) -> dict[str, Any]:
    """A user made by the same function `modula users create` calls."""
    from modula.auth.users import create_user

    async with app.state.database.session() as session:
        return await create_user(session, username=username, email=email or f"{username}@modula.test",
                                 password=password, roles=list(roles))


@contextlib.asynccontextmanager
async def signed_in_client(app, username: str, *, roles: list[str] | tuple[str, ...] = ()):
    """A client logged in (session cookie) as a new user with `roles`."""
    await create_test_user(app, username, roles=roles)
    async with GraphQLClient.for_app(app) as client:
        await client.login(username, TEST_PASSWORD)
        yield client


@contextlib.asynccontextmanager
async def token_client(app, username: str, *, roles: list[str] | tuple[str, ...] = ()):
    """A client sending a real API token (`Authorization: Bearer`) of a new user with `roles`;
    the token comes from the function `createApiToken` calls (no password check per test)."""
    from modula.auth.tokens import create_token

    user = await create_test_user(app, username, roles=roles, password=None)  # a service account
    async with app.state.database.session() as session:
        secret, _ = await create_token(session, user["id"], name="tests")
    async with GraphQLClient.for_app(app) as client:
        client.use_token(secret)
        yield client


def admin_client(app, username: str = "admin"):
    """`async with admin_client(app) as admin:` a client logged in as a new administrator."""
    return signed_in_client(app, username, roles=["admin"])
