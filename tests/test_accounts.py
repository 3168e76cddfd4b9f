"""The rest of the core's account API (issue 12 §5): admins update, deactivate and activate users
and delete roles; a user changes their own password (the old one required) and lists and ends
their own sessions. Every refusal says what and where, and the database is checked after it.
Both dialects."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modula.auth import users as user_service
from modula.db.core_tables import users
from modula.errors import ModulaError
from modula.testing import GraphQLClient
from modula_testing import TEST_PASSWORD, admin_client, create_test_user, signed_in_client, token_client

ME = "{ me { username } }"
UPDATE = "mutation($id: Int!, $set: UpdateUserInput!) { updateUser(id: $id, set: $set) { id username email } }"
DEACTIVATE = "mutation($id: Int!) { deactivateUser(id: $id) { id isActive } }"
ACTIVATE = "mutation($id: Int!) { activateUser(id: $id) { id isActive } }"
CHANGE = "mutation($old: String!, $new: String!) { changePassword(oldPassword: $old, newPassword: $new) }"
SESSIONS = "{ mySessions { id current userAgent expiresAt } }"
REVOKE = "mutation($id: Int!) { revokeSession(id: $id) }"
DELETE_ROLE = "mutation($name: String!) { deleteRole(name: $name) }"


@pytest.fixture
async def admin(app):
    async with admin_client(app) as client:
        yield client


async def user_row(client: GraphQLClient, user_id: int) -> dict:
    async with client.database.session() as session:
        return await session.fetch_one(sa.select(users).where(users.c.id == user_id))


async def test_an_admin_changes_a_users_name_and_email(app, admin):
    erin = await create_test_user(app, "erin")
    changed = (await admin.data(UPDATE, {"id": erin["id"], "set": {"email": "erin@example.org"}}))["updateUser"]
    assert changed == {"id": erin["id"], "username": "erin", "email": "erin@example.org"}
    changed = (await admin.data(UPDATE, {"id": erin["id"], "set": {"username": "erin.b"}}))["updateUser"]
    assert changed["username"] == "erin.b" and changed["email"] == "erin@example.org"
    async with GraphQLClient.for_app(app) as again:
        await again.login("erin.b", TEST_PASSWORD)
        assert (await again.data(ME))["me"]["username"] == "erin.b"


@pytest.mark.parametrize("change, code, path", [
    ({"username": "admin"}, "CONFLICT", ["set", "username"]),
    ({"email": "admin@modula.test"}, "CONFLICT", ["set", "email"]),
    ({"username": "no spaces"}, "INVALID_VALUE", ["set", "username"]),
    ({"email": "not-an-address"}, "INVALID_VALUE", ["set", "email"]),
])
async def test_a_bad_update_says_where_and_changes_nothing(app, admin, change, code, path):
    erin = await create_test_user(app, "erin")
    error = await admin.error(UPDATE, {"id": erin["id"], "set": change})
    assert error["extensions"]["code"] == code and error["extensions"]["inputPath"] == path, error
    row = await user_row(admin, erin["id"])
    assert (row["username"], row["email"]) == ("erin", "erin@modula.test")


async def test_updating_a_missing_user_is_not_found(admin):
    error = await admin.error(UPDATE, {"id": 999, "set": {"email": "x@example.org"}})
    assert error["extensions"]["code"] == "NOT_FOUND" and "user 999" in error["message"]


async def test_a_deactivated_user_cannot_log_in_and_its_session_and_token_open_nothing(app, admin):
    async with signed_in_client(app, "erin", roles=["editor"]) as erin, token_client(app, "bot", roles=["editor"]) as bot:
        users = {u["username"]: u["id"] for u in (await admin.data("{ users { id username } }"))["users"]}
        assert (await erin.data(ME))["me"]["username"] == "erin"
        assert (await admin.data(DEACTIVATE, {"id": users["erin"]}))["deactivateUser"]["isActive"] is False
        await admin.data(DEACTIVATE, {"id": users["bot"]})
        assert (await erin.data(ME))["me"] is None  # the session cookie is anonymous now
        assert (await bot.http.post("/graphql", json={"query": ME})).status_code == 401
        async with GraphQLClient.for_app(app) as again:
            assert (await again.error("mutation { login(username: \"erin\", password: \"%s\") { id } }" % TEST_PASSWORD)
                    )["extensions"]["code"] == "LOGIN_FAILED"
        assert (await admin.data(ACTIVATE, {"id": users["erin"]}))["activateUser"]["isActive"] is True
        assert (await erin.data(ME))["me"]["username"] == "erin"


async def test_nobody_deactivates_themselves(app, admin):
    me = next(u for u in (await admin.data("{ users { id username } }"))["users"] if u["username"] == "admin")
    error = await admin.error(DEACTIVATE, {"id": me["id"]})
    assert error["extensions"]["code"] == "INVALID_VALUE" and error["extensions"]["inputPath"] == ["id"]
    assert "yourself" in error["message"]
    assert (await user_row(admin, me["id"]))["is_active"] is True
    await create_test_user(app, "root2", roles=["admin"])
    async with GraphQLClient.for_app(app) as root2:
        await root2.login("root2", TEST_PASSWORD)
        assert (await root2.data(DEACTIVATE, {"id": me["id"]}))["deactivateUser"]["isActive"] is False  # another admin may
    async with signed_in_client(app, "erin", roles=["editor"]) as erin:
        assert (await erin.error(ACTIVATE, {"id": me["id"]}))["extensions"]["code"] == "FORBIDDEN"
    assert (await user_row(admin, me["id"]))["is_active"] is False


async def test_the_last_active_admin_stays_active(app, admin):
    """Through GraphQL the acting admin is always another active one; the service (which the CLI
    could call) refuses to leave the server without an active administrator."""
    me = next(u for u in (await admin.data("{ users { id username } }"))["users"] if u["username"] == "admin")
    async with app.state.database.session() as session:
        with pytest.raises(ModulaError) as refused:
            await user_service.set_active(session, me["id"], False, acting_user_id=None)
    assert refused.value.code == "LAST_ADMIN"
    assert (await user_row(admin, me["id"]))["is_active"] is True


async def test_changing_your_password_needs_the_old_one_and_ends_your_other_sessions(app):
    await create_test_user(app, "erin")
    async with GraphQLClient.for_app(app) as laptop, GraphQLClient.for_app(app) as phone:
        await laptop.login("erin", TEST_PASSWORD)
        await phone.login("erin", TEST_PASSWORD)
        error = await laptop.error(CHANGE, {"old": "wrong password", "new": "a new long password"})
        assert error["extensions"]["code"] == "WRONG_PASSWORD" and error["extensions"]["inputPath"] == ["oldPassword"]
        error = await laptop.error(CHANGE, {"old": TEST_PASSWORD, "new": "short"})
        assert error["extensions"]["code"] == "INVALID_VALUE" and error["extensions"]["inputPath"] == ["newPassword"]
        assert await laptop.count("sessions") == 2  # nothing ended by the refusals
        assert (await laptop.data(CHANGE, {"old": TEST_PASSWORD, "new": "a new long password"}))["changePassword"] == 1
        assert (await laptop.data(ME))["me"]["username"] == "erin"  # this session stays
        assert (await phone.data(ME))["me"] is None  # the other one ended
        async with GraphQLClient.for_app(app) as again:
            assert (await again.execute("mutation { login(username: \"erin\", password: \"%s\") { id } }" % TEST_PASSWORD)
                    )["errors"][0]["extensions"]["code"] == "LOGIN_FAILED"
            await again.login("erin", "a new long password")


async def test_anonymous_cannot_change_a_password_or_list_sessions(client):
    async with GraphQLClient.for_app(client.app) as nobody:
        assert (await nobody.error(CHANGE, {"old": "x", "new": "y"}))["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await nobody.error(SESSIONS))["extensions"]["code"] == "UNAUTHENTICATED"


async def test_you_list_and_end_your_own_sessions_only(app, admin):
    await create_test_user(app, "erin")
    await create_test_user(app, "fred")
    async with GraphQLClient.for_app(app) as laptop, GraphQLClient.for_app(app) as phone, \
            GraphQLClient.for_app(app) as fred:
        await laptop.login("erin", TEST_PASSWORD)
        await phone.login("erin", TEST_PASSWORD)
        await fred.login("fred", TEST_PASSWORD)
        mine = (await laptop.data(SESSIONS))["mySessions"]
        assert len(mine) == 2 and [s["current"] for s in mine].count(True) == 1
        other = next(s for s in mine if not s["current"])
        freds = (await fred.data(SESSIONS))["mySessions"]
        assert len(freds) == 1
        assert (await laptop.data(REVOKE, {"id": freds[0]["id"]}))["revokeSession"] is False  # not erin's
        assert (await fred.data(ME))["me"]["username"] == "fred"
        assert (await laptop.data(REVOKE, {"id": other["id"]}))["revokeSession"] is True
        assert (await phone.data(ME))["me"] is None
        assert len((await laptop.data(SESSIONS))["mySessions"]) == 1
        assert (await admin.data(REVOKE, {"id": freds[0]["id"]}))["revokeSession"] is True  # admins: anyone's
        assert (await fred.data(ME))["me"] is None


async def test_deleting_a_role_takes_its_permissions_and_is_refused_while_held_or_built_in(app, admin):
    await admin.data('mutation { createRole(name: "author", label: "Author") { id } }')
    await admin.data('mutation { grantPermission(role: "author", resource: "content", action: "update") { action } }')
    erin = await create_test_user(app, "erin", roles=["author"])
    roles_before, permissions_before = await admin.count("roles"), await admin.count("permissions")
    error = await admin.error(DELETE_ROLE, {"name": "author"})
    assert error["extensions"]["code"] == "ROLE_IN_USE" and "'erin'" in error["message"], error
    assert error["extensions"]["inputPath"] == ["name"]
    error = await admin.error(DELETE_ROLE, {"name": "editor"})
    assert error["extensions"]["code"] == "BUILTIN_ROLE"
    error = await admin.error(DELETE_ROLE, {"name": "nobody"})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await admin.count("roles"), await admin.count("permissions")) == (roles_before, permissions_before)
    await admin.data(f'mutation {{ setUserRoles(userId: {erin["id"]}, roles: []) {{ id }} }}')
    assert (await admin.data(DELETE_ROLE, {"name": "author"}))["deleteRole"] is True
    assert await admin.count("roles") == roles_before - 1
    assert await admin.count("permissions") == permissions_before - 1
    assert "author" not in {r["name"] for r in (await admin.data("{ roles { name } }"))["roles"]}


async def test_account_management_is_for_admins(app):
    erin = await create_test_user(app, "erin")
    async with signed_in_client(app, "fred", roles=["editor"]) as fred:
        for query, variables in ((UPDATE, {"id": erin["id"], "set": {"email": "x@example.org"}}),
                                 (DEACTIVATE, {"id": erin["id"]}), (ACTIVATE, {"id": erin["id"]}),
                                 (DELETE_ROLE, {"name": "viewer"})):
            assert (await fred.error(query, variables))["extensions"]["code"] == "FORBIDDEN", query
    row = await user_row(fred, erin["id"])
    assert row["email"] == "erin@modula.test" and row["is_active"] is True
