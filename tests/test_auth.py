"""Authentication as clients see it: login and its cookie, logout, session expiry, API tokens,
failed logins, admin-only management of users, roles and permissions, and the `modula users` CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from starlette.requests import Request

from modula.auth.login_limits import LoginLimiter
from modula.auth.passwords import needs_rehash
from modula.auth.sessions import COOKIE_NAME
from modula.auth.viewer import Viewer, anonymous_viewer, resolve_viewer
from modula.db.core_tables import sessions, tokens, users
from modula.db.types import utcnow
from modula.errors import ModulaError
from modula_testing import (
    TEST_PASSWORD,
    GraphQLClient,
    admin_client,
    create_test_user,
    running_app,
    signed_in_client,
)

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id username email roles } }"
ME = "{ me { id username email roles } }"
CREATE_TOKEN = "mutation($name: String!, $exp: DateTime) { createApiToken(name: $name, expiresAt: $exp) { id name token expiresAt } }"
REVOKE_TOKEN = "mutation($id: Int!) { revokeApiToken(id: $id) }"


@pytest.fixture
def client(anonymous):
    """Here the default client is nobody: these tests sign in themselves."""
    return anonymous


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


async def fetch(client: GraphQLClient, statement) -> list[dict]:
    async with client.database.session() as session:
        return await session.fetch_all(statement)


async def run_sql(client: GraphQLClient, statement) -> None:
    async with client.database.session() as session:
        await session.execute(statement)


async def login_response(client: GraphQLClient, username: str, password: str):
    return await client.http.post("/graphql", json={"query": LOGIN, "variables": {"u": username, "p": password}})


# --- login, cookie, me, logout, expiry ---------------------------------------------------------

async def test_login_sets_an_http_only_session_cookie_and_me_answers_with_it(app, client):
    await create_test_user(app, "erin", roles=["editor"], email="erin@example.com")
    response = await login_response(client, "erin", TEST_PASSWORD)
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["login"]["username"] == "erin"
    (cookie,) = set_cookies(response)
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert attributes[0].startswith(f"{COOKIE_NAME}=")
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert f"max-age={14 * 24 * 3600}" in attributes
    assert "secure" not in attributes  # plain HTTP here

    me = (await client.data(ME))["me"]
    assert me["username"] == "erin" and me["email"] == "erin@example.com" and me["roles"] == ["editor"]

    secret = client.http.cookies[COOKIE_NAME]
    stored = await fetch(client, sa.select(sessions))
    assert len(stored) == 1 and stored[0]["token_hash"] == sha256(secret) and stored[0]["token_hash"] != secret


async def test_anonymous_me_is_null(client):
    assert (await client.data(ME)) == {"me": None}


async def test_cookie_is_secure_over_https(app):
    await create_test_user(app, "erin")
    async with GraphQLClient.for_app(app) as client:
        response = await client.http.post("https://modula.test/graphql",
                                           json={"query": LOGIN, "variables": {"u": "erin", "p": TEST_PASSWORD}})
        assert "secure" in [part.strip().lower() for part in set_cookies(response)[0].split(";")]


async def test_secure_cookies_setting_forces_secure_behind_a_proxy(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path, secure_cookies=True) as app:
        await create_test_user(app, "erin")
        async with GraphQLClient.for_app(app) as client:
            response = await login_response(client, "erin", TEST_PASSWORD)
            assert "secure" in [part.strip().lower() for part in set_cookies(response)[0].split(";")]


async def test_wrong_password_and_unknown_user_get_the_same_error(app, client):
    await create_test_user(app, "erin")
    wrong_password = await login_response(client, "erin", "not the password")
    unknown_user = await login_response(client, "nobody", "not the password")
    assert wrong_password.json()["errors"][0]["message"] == unknown_user.json()["errors"][0]["message"]
    assert wrong_password.json()["errors"][0]["extensions"] == unknown_user.json()["errors"][0]["extensions"] == {
        "code": "LOGIN_FAILED"}
    assert set_cookies(wrong_password) == set_cookies(unknown_user) == []
    assert await client.count("sessions") == 0


async def test_inactive_user_cannot_log_in(app, client):
    user = await create_test_user(app, "erin")
    await run_sql(client, users.update().where(users.c.id == user["id"]).values(is_active=False))
    error = await client.error(LOGIN, {"u": "erin", "p": TEST_PASSWORD})
    assert error["extensions"]["code"] == "LOGIN_FAILED"


async def test_failed_logins_are_limited_per_user_and_per_address(app, client):
    await create_test_user(app, "erin")
    await create_test_user(app, "fred")
    for _ in range(5):
        assert (await client.error(LOGIN, {"u": "erin", "p": "wrong password"}))["extensions"]["code"] == "LOGIN_FAILED"
    limited = await client.error(LOGIN, {"u": "erin", "p": TEST_PASSWORD})
    assert limited["extensions"]["code"] == "LOGIN_RATE_LIMITED"
    assert await client.count("sessions") == 0

    # Another account from the same address still may, until the address runs out of attempts.
    assert (await client.data(LOGIN, {"u": "fred", "p": TEST_PASSWORD}))["login"]["username"] == "fred"
    for n in range(15):
        await client.error(LOGIN, {"u": f"guess{n}", "p": "wrong password"})
    limited = await client.error(LOGIN, {"u": "fred", "p": TEST_PASSWORD})
    assert limited["extensions"]["code"] == "LOGIN_RATE_LIMITED"


def test_login_limits_forget_failures_after_the_window():
    now = [1000.0]
    limiter = LoginLimiter(per_user_and_address=2, per_address=3, window_seconds=60, clock=lambda: now[0])
    limiter.failed("erin", "10.0.0.1")
    limiter.failed("Erin", "10.0.0.1")
    with pytest.raises(ModulaError) as raised:
        limiter.check("ERIN", "10.0.0.1")
    assert raised.value.code == "LOGIN_RATE_LIMITED"
    limiter.check("erin", "10.0.0.2")  # another address is another count
    now[0] += 61
    limiter.check("erin", "10.0.0.1")
    limiter.failed("erin", "10.0.0.1")
    limiter.succeeded("erin", "10.0.0.1")
    limiter.failed("erin", "10.0.0.1")
    limiter.check("erin", "10.0.0.1")  # success reset the user's count: one failure since
    limiter.failed("fred", "10.0.0.1")  # but the address has three failures in the window now
    with pytest.raises(ModulaError):
        limiter.check("gina", "10.0.0.1")


async def test_logout_deletes_the_session_and_clears_the_cookie(app, client):
    await create_test_user(app, "erin")
    await client.login("erin", TEST_PASSWORD)
    secret = client.http.cookies[COOKIE_NAME]
    response = await client.http.post("/graphql", json={"query": "mutation { logout }"})
    assert response.json()["data"] == {"logout": True}
    (cleared,) = set_cookies(response)
    assert cleared.startswith(f'{COOKIE_NAME}="";') or cleared.startswith(f"{COOKIE_NAME}=;")
    assert "max-age=0" in cleared.lower()
    assert await client.count("sessions") == 0
    assert (await client.data(ME)) == {"me": None}
    # The old cookie value opens nothing any more.
    async with GraphQLClient.for_app(app) as replay:
        replay.http.cookies.set(COOKIE_NAME, secret)
        assert (await replay.data(ME)) == {"me": None}


async def test_expired_session_is_anonymous(app, client):
    await create_test_user(app, "erin")
    await client.login("erin", TEST_PASSWORD)
    await run_sql(client, sessions.update().values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    body = await client.execute(ME)
    assert body == {"data": {"me": None}, "extensions": body["extensions"]}
    async with GraphQLClient.for_app(app) as elsewhere:  # the next login sweeps the user's expired sessions
        await elsewhere.login("erin", TEST_PASSWORD)
    assert await client.count("sessions") == 1


async def test_a_used_session_slides_its_expiry_and_refreshes_the_cookie(app, client):
    await create_test_user(app, "erin")
    await client.login("erin", TEST_PASSWORD)
    soon = utcnow() + dt.timedelta(hours=1)
    await run_sql(client, sessions.update().values(expires_at=soon, last_access_at=utcnow() - dt.timedelta(minutes=5)))
    response = await client.http.post("/graphql", json={"query": ME})
    assert response.json()["data"]["me"]["username"] == "erin"
    assert "max-age=1209600" in set_cookies(response)[0].lower()
    (row,) = await fetch(client, sa.select(sessions))
    assert row["expires_at"] > utcnow() + dt.timedelta(days=13)
    assert row["last_access_at"] > utcnow() - dt.timedelta(minutes=1)
    # Within the minute nothing is written and no cookie is sent again.
    again = await client.http.post("/graphql", json={"query": ME})
    assert set_cookies(again) == []


async def test_login_rehashes_a_hash_made_with_weaker_parameters(app, client):
    user = await create_test_user(app, "erin")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(TEST_PASSWORD)
    await run_sql(client, users.update().where(users.c.id == user["id"]).values(password_hash=weak))
    assert needs_rehash(weak)
    await client.login("erin", TEST_PASSWORD)
    (stored,) = await fetch(client, sa.select(users.c.password_hash))
    assert stored["password_hash"] != weak
    assert stored["password_hash"].startswith("$argon2id$") and not needs_rehash(stored["password_hash"])


async def test_only_password_hashes_are_stored(app, client):
    await create_test_user(app, "erin")
    (stored,) = await fetch(client, sa.select(users.c.password_hash))
    assert TEST_PASSWORD not in stored["password_hash"] and stored["password_hash"].startswith("$argon2id$")


# --- API tokens --------------------------------------------------------------------------------

async def test_api_token_is_shown_once_stored_hashed_used_and_revoked(app):
    async with signed_in_client(app, "erin", roles=["editor"]) as erin:
        created = (await erin.data(CREATE_TOKEN, {"name": "deploy bot"}))["createApiToken"]
        token = created["token"]
        assert token.startswith("mdl_") and len(token) > 40 and created["name"] == "deploy bot"
        (row,) = await fetch(erin, sa.select(tokens))
        assert row["token_hash"] == sha256(token) and token not in row.values()
        assert row["last_used_at"] is None

        async with GraphQLClient.for_app(app) as machine:
            machine.use_token(token)
            assert (await machine.data(ME))["me"]["username"] == "erin"
            (row,) = await fetch(erin, sa.select(tokens))
            assert row["last_used_at"] is not None

            listed = (await erin.data("{ apiTokens { id name expiresAt lastUsedAt revokedAt } }"))["apiTokens"]
            assert [(t["id"], t["name"], t["revokedAt"]) for t in listed] == [(created["id"], "deploy bot", None)]
            assert listed[0]["lastUsedAt"] is not None

            assert (await erin.data(REVOKE_TOKEN, {"id": created["id"]})) == {"revokeApiToken": True}
            response = await machine.http.post("/graphql", json={"query": ME})
            assert response.status_code == 401


async def test_expired_api_token_is_refused(app):
    async with signed_in_client(app, "erin") as erin:
        tomorrow = (utcnow() + dt.timedelta(days=1)).isoformat()
        created = (await erin.data(CREATE_TOKEN, {"name": "ci", "exp": tomorrow}))["createApiToken"]
        assert created["expiresAt"] is not None
        async with GraphQLClient.for_app(app) as machine:
            machine.use_token(created["token"])
            assert (await machine.data(ME))["me"]["username"] == "erin"
            await run_sql(erin, tokens.update().values(expires_at=utcnow() - dt.timedelta(seconds=1)))
            assert (await machine.http.post("/graphql", json={"query": ME})).status_code == 401

        yesterday = (utcnow() - dt.timedelta(days=1)).isoformat()
        error = await erin.error(CREATE_TOKEN, {"name": "late", "exp": yesterday})
        assert error["extensions"]["code"] == "INVALID_VALUE" and error["extensions"]["inputPath"] == ["expiresAt"]


async def test_bad_bearer_token_is_401_with_www_authenticate(client):
    for header in ("Bearer mdl_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await client.http.post("/graphql", json={"query": ME}, headers={"authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_anonymous_cannot_make_tokens(client):
    error = await client.error(CREATE_TOKEN, {"name": "x"})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_users_revoke_only_their_own_tokens_and_admins_any(app):
    async with signed_in_client(app, "erin") as erin, signed_in_client(app, "fred") as fred, admin_client(app) as admin:
        token_id = (await erin.data(CREATE_TOKEN, {"name": "mine"}))["createApiToken"]["id"]
        error = await fred.error(REVOKE_TOKEN, {"id": token_id})
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert (await fred.data("{ apiTokens { id } }")) == {"apiTokens": []}
        assert (await admin.data(REVOKE_TOKEN, {"id": token_id})) == {"revokeApiToken": True}
        (row,) = await fetch(erin, sa.select(tokens.c.revoked_at))
        assert row["revoked_at"] is not None


# --- admin-only management ---------------------------------------------------------------------

ADMIN_OPERATIONS = [
    "{ users { id } }",
    "{ roles { name } }",
    '{ permissions(role: "editor") { resource } }',
    'mutation { createUser(input: {username: "mallory", email: "m@example.com", password: "long enough", roles: ["admin"]}) { id } }',
    'mutation { setUserRoles(userId: 1, roles: ["admin"]) { id } }',
    'mutation { createRole(name: "author", label: "Author") { id } }',
    'mutation { grantPermission(role: "viewer", resource: "content", action: "delete") { action } }',
    'mutation { revokePermission(role: "editor", resource: "content", action: "read") }',
]


async def test_management_is_refused_to_non_admins(app, client):
    async with signed_in_client(app, "erin", roles=["editor"]) as editor:
        for operation in ADMIN_OPERATIONS:
            for who in (editor, client):
                error = await who.error(operation)
                assert error["extensions"]["code"] == "FORBIDDEN", operation
    assert await client.count("users") == 1
    assert await client.count("roles") == 4


async def test_admin_manages_users_roles_and_permissions(app):
    async with admin_client(app) as admin:
        created = (await admin.data(
            'mutation { createUser(input: {username: "erin", email: "erin@example.com", password: "long enough", '
            'roles: ["viewer"]}) { id username roles isActive } }'))["createUser"]
        assert created["roles"] == ["viewer"] and created["isActive"]
        listed = (await admin.data("{ users { username roles } }"))["users"]
        assert listed == [{"username": "admin", "roles": ["admin"]}, {"username": "erin", "roles": ["viewer"]}]

        role = (await admin.data('mutation { createRole(name: "author", label: "Author") { name label builtin } }'))
        assert role["createRole"] == {"name": "author", "label": "Author", "builtin": False}
        granted = await admin.data(
            'mutation { grantPermission(role: "author", resource: "content", action: "update", rowRule: "own") '
            '{ role resource action rowRule } }')
        assert granted["grantPermission"] == {"role": "author", "resource": "content", "action": "update", "rowRule": "own"}
        await admin.data('mutation { grantPermission(role: "author", resource: "shop_products", action: "read") { action } }')
        updated = await admin.data(
            f'mutation {{ setUserRoles(userId: {created["id"]}, roles: ["author", "viewer"]) {{ roles }} }}')
        assert updated["setUserRoles"]["roles"] == ["author", "viewer"]
        assert (await admin.data('{ permissions(role: "author") { resource action rowRule } }'))["permissions"] == [
            {"resource": "content", "action": "update", "rowRule": "own"},
            {"resource": "shop_products", "action": "read", "rowRule": None},
        ]

        async with GraphQLClient.for_app(app) as erin:
            await erin.login("erin", "long enough")
            viewer = await _viewer_of(app, erin)
        assert viewer.roles == frozenset({"author", "viewer"})
        assert viewer.can("update", "content") and viewer.row_rule("update", "content") == "own"
        assert viewer.can("read", "content") and viewer.row_rule("read", "content") is None
        assert viewer.can("read", "shop_products") and not viewer.can("delete", "content")

        assert (await admin.data('mutation { revokePermission(role: "author", resource: "shop_products", action: "read") }'))
        assert not (await admin.data('mutation { revokePermission(role: "author", resource: "shop_products", action: "read") }'))["revokePermission"]

        error = await admin.error('mutation { grantPermission(role: "author", resource: "content", action: "publish") { action } }')
        assert error["extensions"]["code"] == "INVALID_VALUE" and error["extensions"]["inputPath"] == ["action"]
        error = await admin.error('mutation { createRole(name: "author", label: "Again") { id } }')
        assert error["extensions"]["code"] == "CONFLICT"


async def test_the_last_admin_keeps_the_admin_role(app):
    async with admin_client(app) as admin:
        me = (await admin.data(ME))["me"]
        error = await admin.error(f'mutation {{ setUserRoles(userId: {me["id"]}, roles: ["editor"]) {{ roles }} }}')
        assert error["extensions"]["code"] == "LAST_ADMIN"


# --- the viewer --------------------------------------------------------------------------------

async def _viewer_of(app, client: GraphQLClient) -> Viewer:
    """Resolve the viewer the way the HTTP endpoint does, from a request carrying the client's credentials."""
    headers = [(b"cookie", f"{name}={value}".encode()) for name, value in client.http.cookies.items()]
    if "authorization" in client.http.headers:
        headers.append((b"authorization", client.http.headers["authorization"].encode()))
    request = Request({"type": "http", "method": "POST", "path": "/graphql", "headers": headers,
                       "scheme": "http", "server": ("modula.test", 80), "query_string": b""})
    async with app.state.database.session() as session:
        return await resolve_viewer(session, request, settings=app.state.settings)


async def test_default_permissions_of_the_builtin_roles(app, client):
    async with app.state.database.session() as session:
        anonymous = await anonymous_viewer(session)
    assert anonymous.roles == frozenset({"anonymous"}) and anonymous.user_id is None
    assert dict(anonymous.permissions) == {
        ("site", "read"): None, ("route", "read"): None, ("datatype", "read"): None, ("content", "read"): "published"}
    assert anonymous.row_rule("read", "content") == "published"
    assert not anonymous.can("create", "content")
    with pytest.raises(ModulaError) as raised:
        anonymous.row_rule("delete", "content")
    assert raised.value.code == "FORBIDDEN"

    async with signed_in_client(app, "erin", roles=["editor"]) as erin, signed_in_client(app, "vera", roles=["viewer"]) as vera, \
            admin_client(app) as admin:
        editor, viewer, administrator = [await _viewer_of(app, c) for c in (erin, vera, admin)]
    for resource in ("site", "route", "datatype", "content", "media"):
        for action in ("read", "create", "update", "delete"):
            assert editor.can(action, resource) and editor.row_rule(action, resource) is None
            assert viewer.can(action, resource) == (action == "read")
    assert not editor.can("read", "shop_products") and not viewer.can("read", "shop_products")
    assert administrator.is_admin and administrator.can("delete", "shop_products")
    assert administrator.row_rule("read", "content") is None and administrator.permissions == {}
    assert administrator.to_lua() == {"id": administrator.user_id, "username": "admin", "roles": ["admin"]}


def test_rules_of_several_roles_are_alternatives_and_no_rule_wins():
    from modula.auth.viewer import combine_grants

    combined = combine_grants([("content", "read", "published"), ("content", "read", "own"),
                               ("content", "update", "own"), ("content", "update", None), ("media", "read", None)])
    assert dict(combined) == {("content", "read"): "own|published", ("content", "update"): None, ("media", "read"): None}


async def test_resolving_the_viewer_costs_at_most_two_statements(app, client):
    """A `{ __typename }` request runs no resolver SQL: every statement it issues is the viewer's."""
    statements: list[str] = []
    stop = client.database.observe(statements.append)
    try:
        async def count(who: GraphQLClient) -> int:
            statements.clear()
            response = await who.http.post("/graphql", json={"query": "{ __typename }"})
            assert response.status_code == 200, response.text
            return len(statements)

        assert await count(client) == 1  # anonymous: the anonymous role's permissions
        async with GraphQLClient.for_app(app) as stale:
            stale.http.cookies.set(COOKIE_NAME, "stale")
            assert await count(stale) == 2  # unknown session, then anonymous
        async with signed_in_client(app, "erin", roles=["editor", "viewer"]) as erin:
            assert await count(erin) == 1  # session, user, roles and permissions in one select
            await run_sql(erin, sessions.update().values(last_access_at=utcnow() - dt.timedelta(minutes=2)))
            assert await count(erin) == 2  # ... plus sliding the expiry, at most once a minute
            assert await count(erin) == 1
            token = (await erin.data(CREATE_TOKEN, {"name": "bot"}))["createApiToken"]["token"]
            async with GraphQLClient.for_app(app) as machine:
                machine.use_token(token)
                assert await count(machine) == 2  # token + grants, then its first last_used_at
                assert await count(machine) == 1
    finally:
        stop()


# --- the CLI -----------------------------------------------------------------------------------

def _modula(*args: str, stdin: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modula.cli", *args], input=stdin, cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ})


async def test_cli_creates_an_admin_from_a_piped_password_who_can_log_in(database_url, tmp_path):
    created = _modula("users", "create", "--username", "root", "--email", "root@example.com", "--admin",
                      "--database-url", database_url, stdin="a long secret\n", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines() == [created.stdout.strip()]
    assert "root" in created.stdout and "admin" in created.stdout and "a long secret" not in created.stdout

    short = _modula("users", "create", "--username", "bob", "--email", "bob@example.com",
                    "--database-url", database_url, stdin="short\n", cwd=tmp_path)
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    empty = _modula("users", "create", "--username", "bob", "--email", "bob@example.com",
                    "--database-url", database_url, stdin="", cwd=tmp_path)
    assert empty.returncode == 1 and "empty" in empty.stderr
    as_argument = _modula("users", "create", "--username", "bob", "--email", "bob@example.com", "--password", "a long secret",
                          "--database-url", database_url, stdin="", cwd=tmp_path)
    assert as_argument.returncode == 2

    listed = _modula("users", "list", "--database-url", database_url, stdin="", cwd=tmp_path)
    assert listed.returncode == 0 and "root" in listed.stdout and "bob" not in listed.stdout

    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with GraphQLClient.for_app(app) as client:
            me = await client.login("root", "a long secret")
            assert me["roles"] == ["admin"]
            assert (await client.data("{ users { username } }")) == {"users": [{"username": "root"}]}


async def test_a_service_account_acts_only_through_tokens(app, client):
    from modula_testing import token_client

    async with token_client(app, "robot", roles=["viewer"]) as robot:
        assert (await robot.data("{ me { username roles } }"))["me"] == {"username": "robot", "roles": ["viewer"]}
    body = await client.execute('mutation { login(username: "robot", password: "") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "LOGIN_FAILED"
