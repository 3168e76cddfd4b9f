"""Viewers from memory: a warmed request finds its viewer without a statement, the touch writes
keep their pace, expiry holds at every use, and a change to who a viewer is or what they may do
is seen at once by the process that made it and by another process within one poll."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

import sqlalchemy as sa

from modula.auth import viewer as viewer_module
from modula.auth.sessions import COOKIE_NAME
from modula.auth.tokens import create_token
from modula.auth.viewer import Viewer
from modula.auth.viewer_cache import CachedToken, ViewerCache, current_auth_generation
from modula.db.core_tables import sessions, tokens, users
from modula.db.types import utcnow
from modula_testing import TEST_PASSWORD, GraphQLClient, admin_client, create_test_user, running_app

TYPENAME = "{ __typename }"  # runs no resolver SQL: every statement of the request is the viewer's
ROUTES = "{ routes { id } }"  # needs `read route`, which the built-in viewer role has
REVOKE_TOKEN = "mutation($id: Int!) { revokeApiToken(id: $id) }"


@contextlib.asynccontextmanager
async def cached_app(database_url, tmp_path, **settings):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", viewer_cache=True, **settings) as app:
        yield app


@contextlib.asynccontextmanager
async def two_servers(database_url, tmp_path, **settings):
    """Two server processes' apps on one database, each with its own viewer cache. Neither polls by
    itself unless `follow_interval` is given: the tests call `poll()`, the step the follow loop
    takes every interval."""
    async with cached_app(database_url, tmp_path, **settings) as a, cached_app(database_url, tmp_path, **settings) as b:
        yield a, b


async def new_token(app, username: str, roles: list[str]) -> tuple[dict, str, int]:
    """A user with `roles` and a real API token: (user, secret, token id)."""
    user = await create_test_user(app, username, roles=roles, password=None)
    async with app.state.database.session() as session:
        secret, row = await create_token(session, user["id"], name="tests")
    return user, secret, row["id"]


@contextlib.asynccontextmanager
async def bearer(app, secret: str):
    async with GraphQLClient.for_app(app) as client:
        client.use_token(secret)
        yield client


async def statements_of(client: GraphQLClient, query: str = TYPENAME):
    """One POST: its response and the statements the app ran for it."""
    statements: list[str] = []
    stop = client.database.observe(statements.append)
    try:
        response = await client.http.post("/graphql", json={"query": query})
    finally:
        stop()
    return response, statements


async def warm(client: GraphQLClient) -> None:
    """Make the client's viewer known to its app, and check it now costs no statement."""
    await statements_of(client)
    response, statements = await statements_of(client)
    assert response.status_code == 200, response.text
    assert statements == []


def code(body: dict) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("extensions", {}).get("code") if errors else None


async def auth_generation(app) -> int:
    async with app.state.database.session() as session:
        return await current_auth_generation(session)


# --- one process -------------------------------------------------------------------------------

async def test_a_warmed_request_runs_no_statement_for_its_viewer(database_url, tmp_path):
    async with cached_app(database_url, tmp_path) as app:
        _, secret, _ = await new_token(app, "robot", ["viewer"])
        async with bearer(app, secret) as machine:
            response, statements = await statements_of(machine)
            assert response.status_code == 200 and len(statements) == 2  # token + grants, its first last_used_at
            response, statements = await statements_of(machine)
            assert response.status_code == 200 and statements == []
            assert (await machine.data("{ me { username roles } }"))["me"] == {"username": "robot", "roles": ["viewer"]}

        await create_test_user(app, "erin", roles=["editor"])
        async with GraphQLClient.for_app(app) as erin:
            await erin.login("erin", TEST_PASSWORD)
            response, statements = await statements_of(erin)
            assert len(statements) == 1  # session, user, roles and permissions in one select
            response, statements = await statements_of(erin)
            assert statements == [] and response.headers.get_list("set-cookie") == []
            assert (await erin.data("{ me { username } }"))["me"] == {"username": "erin"}

        async with GraphQLClient.for_app(app) as nobody:
            await statements_of(nobody)
            response, statements = await statements_of(nobody)
            assert statements == []
            assert (await nobody.data("{ me { id } }")) == {"me": None}


async def test_touch_writes_keep_their_pace_and_a_sliding_session_still_refreshes_its_cookie(database_url, tmp_path,
                                                                                              monkeypatch):
    async with cached_app(database_url, tmp_path) as app:
        _, secret, _ = await new_token(app, "robot", ["viewer"])
        await create_test_user(app, "erin")
        async with bearer(app, secret) as machine, GraphQLClient.for_app(app) as erin:
            await erin.login("erin", TEST_PASSWORD)
            await warm(machine)
            await warm(erin)

            later = utcnow() + dt.timedelta(minutes=2)  # past TOUCH_INTERVAL, since every write above
            monkeypatch.setattr(viewer_module, "utcnow", lambda: later)
            response, statements = await statements_of(machine)
            assert len(statements) == 1 and statements[0].lstrip().upper().startswith("UPDATE TOKENS")
            response, statements = await statements_of(machine)
            assert statements == []  # once per interval, not once per request

            response, statements = await statements_of(erin)
            assert len(statements) == 1 and statements[0].lstrip().upper().startswith("UPDATE SESSIONS")
            assert "max-age=1209600" in response.headers.get_list("set-cookie")[0].lower()
            again, statements = await statements_of(erin)
            assert statements == [] and again.headers.get_list("set-cookie") == []

        async with app.state.database.session() as session:
            (token,) = await session.fetch_all(sa.select(tokens.c.last_used_at))
            (stored,) = await session.fetch_all(sa.select(sessions.c.last_access_at, sessions.c.expires_at))
        assert token["last_used_at"] == later
        assert stored["last_access_at"] == later and stored["expires_at"] == later + dt.timedelta(days=14)


async def test_touch_writes_do_not_move_the_auth_generation(database_url, tmp_path, monkeypatch):
    """Otherwise every minute of every client would empty every process's cache."""
    async with cached_app(database_url, tmp_path) as app:
        _, secret, _ = await new_token(app, "robot", ["viewer"])
        await create_test_user(app, "erin")
        async with bearer(app, secret) as machine, GraphQLClient.for_app(app) as erin:
            await erin.login("erin", TEST_PASSWORD)
            before = await auth_generation(app)
            later = utcnow() + dt.timedelta(minutes=2)
            monkeypatch.setattr(viewer_module, "utcnow", lambda: later)
            assert len((await statements_of(machine))[1]) == 2  # read, then touch
            assert len((await statements_of(erin))[1]) == 2  # read, then slide the expiry
            assert await auth_generation(app) == before


async def test_an_expired_credential_is_refused_at_once_even_when_cached(database_url, tmp_path, monkeypatch):
    async with cached_app(database_url, tmp_path) as app:
        user = await create_test_user(app, "robot", roles=["viewer"], password=None)
        async with app.state.database.session() as session:
            secret, _ = await create_token(session, user["id"], name="ci", expires_at=utcnow() + dt.timedelta(hours=1))
        await create_test_user(app, "erin")
        async with bearer(app, secret) as machine, GraphQLClient.for_app(app) as erin:
            await erin.login("erin", TEST_PASSWORD)
            await warm(machine)
            await warm(erin)

            after_expiry = utcnow() + dt.timedelta(days=15)  # past the token's hour and the session's 14 days
            monkeypatch.setattr(viewer_module, "utcnow", lambda: after_expiry)
            response, statements = await statements_of(machine)
            assert response.status_code == 401 and statements == []  # the clock alone decides
            assert (await erin.data("{ me { id } }")) == {"me": None}


async def test_changes_made_in_the_process_are_seen_by_it_at_once(database_url, tmp_path):
    async with cached_app(database_url, tmp_path) as app, admin_client(app) as admin:
        _, secret, token_id = await new_token(app, "robot", ["viewer"])
        vera = await create_test_user(app, "vera", roles=["viewer"])
        await create_test_user(app, "erin", roles=["viewer"])
        async with bearer(app, secret) as machine, GraphQLClient.for_app(app) as vera_client, \
                GraphQLClient.for_app(app) as erin:
            await vera_client.login("vera", TEST_PASSWORD)
            await erin.login("erin", TEST_PASSWORD)
            for client in (machine, vera_client, erin):
                await warm(client)
                assert code(await client.execute(ROUTES)) is None

            await admin.data('mutation { revokePermission(role: "viewer", resource: "route", action: "read") }')
            assert code(await machine.execute(ROUTES)) == "FORBIDDEN"
            await admin.data('mutation { grantPermission(role: "viewer", resource: "route", action: "read") { action } }')
            assert code(await machine.execute(ROUTES)) is None

            await admin.data(f'mutation {{ setUserRoles(userId: {vera["id"]}, roles: []) {{ roles }} }}')
            assert code(await vera_client.execute(ROUTES)) == "FORBIDDEN"

            secret_of_erin = erin.http.cookies[COOKIE_NAME]
            await erin.data("mutation { logout }")
            async with GraphQLClient.for_app(app) as replay:
                replay.http.cookies.set(COOKIE_NAME, secret_of_erin)
                assert (await replay.data("{ me { id } }")) == {"me": None}

            await admin.data(REVOKE_TOKEN, {"id": token_id})
            assert (await machine.http.post("/graphql", json={"query": TYPENAME})).status_code == 401


# --- several processes -------------------------------------------------------------------------

async def test_a_token_revoked_in_one_process_is_refused_by_another_after_one_poll(database_url, tmp_path):
    async with two_servers(database_url, tmp_path) as (app_a, app_b), admin_client(app_a) as admin_a:
        _, secret, token_id = await new_token(app_a, "robot", ["viewer"])
        async with bearer(app_b, secret) as machine_b:
            await app_b.state.schemas.poll()  # B takes in the users made above
            await warm(machine_b)
            await app_b.state.schemas.poll()  # nothing changed since: the cache stays
            assert (await statements_of(machine_b))[1] == []

            await admin_a.data(REVOKE_TOKEN, {"id": token_id})
            await app_b.state.schemas.poll()
            response, _ = await statements_of(machine_b)
            assert response.status_code == 401


async def test_a_permission_taken_from_a_role_in_one_process_is_refused_by_another_after_one_poll(database_url, tmp_path):
    async with two_servers(database_url, tmp_path) as (app_a, app_b), admin_client(app_a) as admin_a:
        _, secret, _ = await new_token(app_a, "robot", ["viewer"])
        async with bearer(app_b, secret) as machine_b, GraphQLClient.for_app(app_b) as anonymous_b:
            for client in (machine_b, anonymous_b):
                await warm(client)
                assert code(await client.execute(ROUTES)) is None

            await admin_a.data('mutation { revokePermission(role: "viewer", resource: "route", action: "read") }')
            await admin_a.data('mutation { revokePermission(role: "anonymous", resource: "route", action: "read") }')
            await app_b.state.schemas.poll()
            assert code(await machine_b.execute(ROUTES)) == "FORBIDDEN"
            assert code(await anonymous_b.execute(ROUTES)) == "FORBIDDEN"


async def test_a_role_taken_from_a_user_in_one_process_is_refused_by_another_after_one_poll(database_url, tmp_path):
    async with two_servers(database_url, tmp_path) as (app_a, app_b), admin_client(app_a) as admin_a:
        vera = await create_test_user(app_a, "vera", roles=["viewer"])
        async with GraphQLClient.for_app(app_b) as vera_b:
            await vera_b.login("vera", TEST_PASSWORD)
            await warm(vera_b)
            assert code(await vera_b.execute(ROUTES)) is None

            await admin_a.data(f'mutation {{ setUserRoles(userId: {vera["id"]}, roles: []) {{ roles }} }}')
            await app_b.state.schemas.poll()
            assert code(await vera_b.execute(ROUTES)) == "FORBIDDEN"
            assert (await vera_b.data("{ me { roles } }"))["me"] == {"roles": []}


async def test_a_logout_in_one_process_ends_the_session_in_another_after_one_poll(database_url, tmp_path):
    async with two_servers(database_url, tmp_path) as (app_a, app_b):
        await create_test_user(app_a, "erin")
        async with GraphQLClient.for_app(app_a) as erin_a, GraphQLClient.for_app(app_b) as erin_b:
            await erin_a.login("erin", TEST_PASSWORD)
            erin_b.http.cookies.set(COOKIE_NAME, erin_a.http.cookies[COOKIE_NAME])
            await warm(erin_b)
            assert (await erin_b.data("{ me { username } }"))["me"] == {"username": "erin"}

            await erin_a.data("mutation { logout }")
            await app_b.state.schemas.poll()
            assert (await erin_b.data("{ me { username } }")) == {"me": None}


async def test_a_change_made_outside_the_services_reaches_other_processes_too(database_url, tmp_path):
    """The database's triggers move the auth generation, whoever writes: here raw SQL deactivates
    a user, as an operator's script might."""
    async with two_servers(database_url, tmp_path) as (app_a, app_b):
        user, secret, _ = await new_token(app_a, "robot", ["viewer"])
        async with bearer(app_b, secret) as machine_b:
            await warm(machine_b)
            async with app_a.state.database.session() as session:
                await session.execute(users.update().where(users.c.id == user["id"]).values(is_active=False))
            await app_b.state.schemas.poll()
            assert (await statements_of(machine_b))[0].status_code == 401


async def test_the_follow_loop_refuses_a_revoked_token_within_its_interval(database_url, tmp_path):
    """The same as above with the real loop (a short interval), not a poll called by the test."""
    async with two_servers(database_url, tmp_path, follow_interval=0.05) as (app_a, app_b), \
            admin_client(app_a) as admin_a:
        _, secret, token_id = await new_token(app_a, "robot", ["viewer"])
        async with bearer(app_b, secret) as machine_b:
            await statements_of(machine_b)
            await admin_a.data(REVOKE_TOKEN, {"id": token_id})
            started = time.monotonic()
            while (await machine_b.http.post("/graphql", json={"query": TYPENAME})).status_code != 401:
                assert time.monotonic() - started < 5.0, "the revoked token is still accepted"
                await asyncio.sleep(0.01)


# --- the cache itself ----------------------------------------------------------------------------

def _entry(n: int) -> CachedToken:
    return CachedToken(n, Viewer(n, f"user{n}", frozenset()), None, None)


def test_a_read_that_raced_a_change_is_not_kept():
    cache = ViewerCache()
    epoch = cache.epoch  # a request notes the epoch, then reads the database...
    cache.clear()  # ...while a change commits here (or the poll sees one made elsewhere)
    cache.keep_token("a", _entry(1), epoch)
    assert cache.token("a") is None
    cache.keep_token("a", _entry(1), cache.epoch)
    assert cache.token("a") is not None


def test_the_cache_keeps_the_most_recently_used_and_forgets_when_the_generation_moves():
    cache = ViewerCache(max_entries=2)
    cache.sync(7)
    for key, n in (("a", 1), ("b", 2)):
        cache.keep_token(key, _entry(n), cache.epoch)
    assert cache.token("a") is not None  # now the most recently used
    cache.keep_token("c", _entry(3), cache.epoch)
    assert cache.token("b") is None and cache.token("a") is not None and cache.token("c") is not None
    assert not cache.sync(7) and cache.token("a") is not None
    assert cache.sync(8) and cache.token("a") is None and cache.token("c") is None
