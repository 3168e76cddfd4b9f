"""Authentication over GraphQL: login, logout and `me`; the viewer's own password, sessions and
API tokens; and, for admins, users, roles and permissions. Mixed into the core Query and Mutation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from modula.auth import roles as role_service
from modula.auth import sessions, tokens
from modula.auth.digests import digest
from modula.auth import users as user_service
from modula.auth.login_limits import login_limiter
from modula.auth.viewer import Viewer, forbidden
from modula.errors import ModulaError
from modula.schema.core_types import CoreInfo

Row = dict[str, Any]

LOGIN_FAILED_MESSAGE = "wrong username or password"


@strawberry.type(description="The logged-in user.")
class Me:
    id: int
    username: str
    email: str
    roles: list[str]

    @classmethod
    def from_row(cls, row: Row) -> Me:
        return cls(id=row["id"], username=row["username"], email=row["email"], roles=row["roles"])


@strawberry.type(description="A user account, as admins see it.")
class User:
    id: int
    username: str
    email: str
    is_active: bool
    roles: list[str]
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(id=row["id"], username=row["username"], email=row["email"], is_active=row["is_active"],
                   roles=row["roles"], created_at=row["created_at"])


@strawberry.type(description="An API token for machines; its secret is never shown again after creation.")
class ApiToken:
    id: int
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Row) -> ApiToken:
        return cls(id=row["id"], name=row["name"], created_at=row["created_at"], expires_at=row["expires_at"],
                   last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])


@strawberry.type(description="A token just created. Store `token` now: only its hash is kept.")
class NewApiToken:
    id: int
    name: str
    token: str = strawberry.field(description="Send it as `Authorization: Bearer <token>`.")
    expires_at: dt.datetime | None


@strawberry.type(description="A role users can have; permissions are granted to roles.")
class Role:
    id: int
    name: str
    label: str
    builtin: bool

    @classmethod
    def from_row(cls, row: Row) -> Role:
        return cls(id=row["id"], name=row["name"], label=row["label"], builtin=row["builtin"])


@strawberry.type(description="A role may do `action` on `resource`, on the rows `rowRule` admits (null: all rows).")
class Permission:
    role: str
    resource: str
    action: str
    row_rule: str | None

    @classmethod
    def from_row(cls, row: Row) -> Permission:
        return cls(role=row["role"], resource=row["resource"], action=row["action"], row_rule=row["row_rule"])


@strawberry.type(description="One of your logged-in sessions (a browser's cookie).")
class UserSession:
    id: int
    created_at: dt.datetime
    last_access_at: dt.datetime
    expires_at: dt.datetime
    ip: str | None
    user_agent: str | None
    current: bool = strawberry.field(description="The session this request came with.")

    @classmethod
    def from_row(cls, row: Row, current_hash: str | None) -> UserSession:
        return cls(id=row["id"], created_at=row["created_at"], last_access_at=row["last_access_at"],
                   expires_at=row["expires_at"], ip=row["ip"], user_agent=row["user_agent"],
                   current=row["token_hash"] == current_hash)


@strawberry.input(description="What updateUser changes; a field left out keeps its value.")
class UpdateUserInput:
    username: str | None = None
    email: str | None = None


@strawberry.input
class CreateUserInput:
    username: str
    email: str
    password: str
    roles: list[str] = strawberry.field(default_factory=list)


def _signed_in(info: CoreInfo) -> Viewer:
    viewer = info.context.viewer
    if not viewer.is_authenticated:
        raise ModulaError("UNAUTHENTICATED", "log in or send an API token first")
    return viewer


def _admin(info: CoreInfo) -> Viewer:
    viewer = info.context.viewer
    if not viewer.is_admin:
        raise forbidden("manage users, roles and permissions (admins only)")
    return viewer


def _session_secret(info: CoreInfo) -> str | None:
    """The session cookie this request came with, if any."""
    request = info.context.request
    return request.cookies.get(sessions.COOKIE_NAME) if request is not None else None


def _http_request(info: CoreInfo) -> Any:
    """Sessions live in cookies, so login and logout need the HTTP request."""
    request = info.context.request
    if request is None:
        raise ModulaError("UNAVAILABLE", "login and logout work over HTTP only")
    return request


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The logged-in user, or null for anonymous requests.")
    async def me(self, info: CoreInfo) -> Me | None:
        viewer = info.context.viewer
        if not viewer.is_authenticated:
            return None
        row = await user_service.get_user(info.context.session, viewer.user_id)
        return Me.from_row(row) if row else None

    @strawberry.field(description="Your own API tokens (never their secrets).")
    async def api_tokens(self, info: CoreInfo) -> list[ApiToken]:
        viewer = _signed_in(info)
        return [ApiToken.from_row(row) for row in await tokens.list_tokens(info.context.session, viewer.user_id)]

    @strawberry.field(description="Your unexpired sessions, newest first.")
    async def my_sessions(self, info: CoreInfo) -> list[UserSession]:
        viewer = _signed_in(info)
        current = _session_secret(info)
        current_hash = digest(current) if current else None
        return [UserSession.from_row(row, current_hash)
                for row in await sessions.list_sessions(info.context.session, viewer.user_id)]

    @strawberry.field(description="All users (admins only).")
    async def users(self, info: CoreInfo) -> list[User]:
        _admin(info)
        return [User.from_row(row) for row in await user_service.list_users(info.context.session)]

    @strawberry.field(description="All roles (admins only).")
    async def roles(self, info: CoreInfo) -> list[Role]:
        _admin(info)
        return [Role.from_row(row) for row in await role_service.list_roles(info.context.session)]

    @strawberry.field(description="The permissions of one role (admins only).")
    async def permissions(self, info: CoreInfo, role: str) -> list[Permission]:
        _admin(info)
        return [Permission.from_row(row) for row in await role_service.list_permissions(info.context.session, role)]


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Log in: sets an HttpOnly session cookie. Failures never say whether the user exists.")
    async def login(self, info: CoreInfo, username: str, password: str) -> Me:
        context = info.context
        request = _http_request(info)
        # Behind a reverse proxy this is the proxy's address unless the server trusts its
        # X-Forwarded-For (uvicorn's forwarded_allow_ips); the per-address limit then counts per proxy.
        address = request.client.host if request.client else None
        limiter = login_limiter(request.app.state)
        limiter.check(username, address)
        user = await user_service.authenticate(context.session, username, password)
        if user is None:
            limiter.failed(username, address)
            raise ModulaError("LOGIN_FAILED", LOGIN_FAILED_MESSAGE)
        limiter.succeeded(username, address)
        previous = request.cookies.get(sessions.COOKIE_NAME)
        if previous:  # a new secret at every login: a cookie planted before login opens nothing
            if await sessions.end_session(context.session, previous):
                context.viewers_changed()
        secret, _ = await sessions.create_session(
            context.session, user["id"], ttl=sessions.session_ttl(context.settings), ip=address,
            user_agent=request.headers.get("user-agent"),
        )
        context.response_cookies.append(sessions.session_cookie(secret, request, context.settings))
        row = await user_service.get_user(context.session, user["id"])
        assert row is not None
        return Me.from_row(row)

    @strawberry.mutation(description="End the session of this cookie and clear it; false when there was none.")
    async def logout(self, info: CoreInfo) -> bool:
        context = info.context
        request = _http_request(info)
        secret = request.cookies.get(sessions.COOKIE_NAME)
        ended = await sessions.end_session(context.session, secret) if secret else False
        if ended:
            context.viewers_changed()
        context.response_cookies.append(sessions.cleared_cookie(request, context.settings))
        return ended

    @strawberry.mutation(description="A new API token for yourself. The token is in this answer only.")
    async def create_api_token(self, info: CoreInfo, name: str, expires_at: dt.datetime | None = None) -> NewApiToken:
        viewer = _signed_in(info)
        secret, row = await tokens.create_token(info.context.session, viewer.user_id, name=name, expires_at=expires_at)
        return NewApiToken(id=row["id"], name=row["name"], token=secret, expires_at=row["expires_at"])

    @strawberry.mutation(description="Revoke one of your API tokens (admins: anyone's).")
    async def revoke_api_token(self, info: CoreInfo, id: int) -> bool:
        viewer = _signed_in(info)
        await tokens.revoke_token(info.context.session, id, user_id=None if viewer.is_admin else viewer.user_id)
        info.context.viewers_changed()
        return True

    @strawberry.mutation(description="Create a user with roles (admins only).")
    async def create_user(self, info: CoreInfo, input: CreateUserInput) -> User:
        _admin(info)
        row = await user_service.create_user(info.context.session, username=input.username, email=input.email,
                                      password=input.password, roles=input.roles)
        return User.from_row(row)

    @strawberry.mutation(description="Replace a user's roles (admins only).")
    async def set_user_roles(self, info: CoreInfo, user_id: int, roles: list[str]) -> User:
        _admin(info)
        row = await user_service.set_user_roles(info.context.session, user_id, roles)
        info.context.viewers_changed()
        return User.from_row(row)

    @strawberry.mutation(description="Change a user's username or email (admins only).")
    async def update_user(self, info: CoreInfo, id: int, set: UpdateUserInput) -> User:
        _admin(info)
        row = await user_service.update_user(info.context.session, id, username=set.username, email=set.email)
        info.context.viewers_changed()
        return User.from_row(row)

    @strawberry.mutation(description="Deactivate a user: no login, and its sessions and API tokens open nothing until"
                                     " activateUser (admins only; not yourself, not the last active admin).")
    async def deactivate_user(self, info: CoreInfo, id: int) -> User:
        viewer = _admin(info)
        row = await user_service.set_active(info.context.session, id, False, acting_user_id=viewer.user_id)
        info.context.viewers_changed()
        return User.from_row(row)

    @strawberry.mutation(description="Activate a deactivated user again (admins only).")
    async def activate_user(self, info: CoreInfo, id: int) -> User:
        viewer = _admin(info)
        row = await user_service.set_active(info.context.session, id, True, acting_user_id=viewer.user_id)
        info.context.viewers_changed()
        return User.from_row(row)

    @strawberry.mutation(description="Change your own password; the old one is required. Your other sessions end"
                                     " (this one stays); API tokens stay valid. Answers how many sessions ended.")
    async def change_password(self, info: CoreInfo, old_password: str, new_password: str) -> int:
        viewer = _signed_in(info)
        ended = await user_service.change_password(info.context.session, viewer.user_id, old=old_password,
                                                   new=new_password, keep_session=_session_secret(info))
        info.context.viewers_changed()
        return ended

    @strawberry.mutation(description="End one of your sessions (admins: anyone's); false when there is no such session.")
    async def revoke_session(self, info: CoreInfo, id: int) -> bool:
        viewer = _signed_in(info)
        revoked = await sessions.revoke_session(info.context.session, id,
                                                user_id=None if viewer.is_admin else viewer.user_id)
        info.context.viewers_changed()
        return revoked

    @strawberry.mutation(description="Delete a role and its permissions (admins only); refused for built-in roles"
                                     " and while users hold it.")
    async def delete_role(self, info: CoreInfo, name: str) -> bool:
        _admin(info)
        await role_service.delete_role(info.context.session, name)
        info.context.viewers_changed()
        return True

    @strawberry.mutation(description="Create a role (admins only); grant it permissions with grantPermission.")
    async def create_role(self, info: CoreInfo, name: str, label: str) -> Role:
        _admin(info)
        return Role.from_row(await role_service.create_role(info.context.session, name=name, label=label))

    @strawberry.mutation(description="Let a role do an action (read, create, update, delete) on a resource (admins only).")
    async def grant_permission(self, info: CoreInfo, role: str, resource: str, action: str,
                               row_rule: str | None = None) -> Permission:
        _admin(info)
        row = await role_service.grant_permission(info.context.session, role=role, resource=resource, action=action,
                                                  row_rule=row_rule)
        info.context.viewers_changed()
        return Permission.from_row(row)

    @strawberry.mutation(description="Take a permission away from a role; false when it had none (admins only).")
    async def revoke_permission(self, info: CoreInfo, role: str, resource: str, action: str) -> bool:
        _admin(info)
        revoked = await role_service.revoke_permission(info.context.session, role=role, resource=resource, action=action)
        info.context.viewers_changed()
        return revoked
