"""The viewer: who a request acts for (from its bearer token or session cookie) and what their
roles allow; resolvers reach it as `info.context.viewer`. Read from the database, or from the
process's ViewerCache (auth/viewer_cache.py) when the caller passes one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from modula.auth import sessions, tokens
from modula.auth.digests import digest
from modula.auth.viewer_cache import CachedSession, CachedToken, ViewerCache
from modula.config import Settings
from modula.db.connection import Session
from modula.db.core_tables import permissions, roles, sessions as sessions_table, tokens as tokens_table, user_roles, users
from modula.db.types import utcnow
from modula.errors import ModulaError

ADMIN = "admin"
ANONYMOUS = "anonymous"
ACTIONS = ("read", "create", "update", "delete")

# The last-access (sessions) and last-used (tokens) times are written at most this often, so a
# busy client does not turn every read into a write.
TOUCH_INTERVAL = dt.timedelta(minutes=1)

Permissions = Mapping[tuple[str, str], str | None]


class AuthenticationError(ModulaError):
    """The request names credentials that do not hold (HTTP answers 401)."""

    def __init__(self, message: str) -> None:
        super().__init__("UNAUTHENTICATED", message)


@dataclass(frozen=True)
class Viewer:
    """Who the request acts for. Permissions are those of all the viewer's roles together.

    `permissions` maps (resource, action) to the row rule that limits it, None meaning every row.
    When several roles grant the same pair, the widest grant wins: no rule beats any rule, and
    different rules are alternatives, joined with "|" in name order ("own|published").
    """

    user_id: int | None
    username: str | None
    roles: frozenset[str]
    permissions: Permissions = field(default_factory=lambda: MappingProxyType({}))

    def __hash__(self) -> int:  # the permissions mapping itself is not hashable
        return hash((self.user_id, self.roles, frozenset(self.permissions.items())))

    @classmethod
    def anonymous(cls, grants: Iterable[tuple[str, str, str | None]] = ()) -> Viewer:
        """Nobody in particular: the 'anonymous' role. With no grants given, allowed nothing."""
        return cls(None, None, frozenset({ANONYMOUS}), combine_grants(grants))

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def can(self, action: str, resource: str) -> bool:
        return self.is_admin or (resource, action) in self.permissions

    def row_rule(self, action: str, resource: str) -> str | None:
        """The rule limiting which rows `action` may touch; None when unrestricted. A pair the
        viewer may not act on at all raises FORBIDDEN: check `can` first."""
        if self.is_admin:
            return None
        try:
            return self.permissions[(resource, action)]
        except KeyError:
            raise forbidden(f"{action} {resource}") from None

    def to_lua(self) -> dict[str, Any]:
        """What Lua handlers see as `ctx.viewer`."""
        return {"id": self.user_id, "username": self.username, "roles": sorted(self.roles)}


def forbidden(what: str) -> ModulaError:
    return ModulaError("FORBIDDEN", f"you are not allowed to {what}")


def combine_grants(grants: Iterable[tuple[str, str, str | None]]) -> Permissions:
    """(resource, action, row_rule) rows of several roles -> one permissions mapping."""
    rules: dict[tuple[str, str], set[str] | None] = {}
    for resource, action, row_rule in grants:
        key = (resource, action)
        if row_rule is None or (key in rules and rules[key] is None):
            rules[key] = None
        else:
            rules.setdefault(key, set()).add(row_rule)
    return MappingProxyType({key: None if rule is None else "|".join(sorted(rule)) for key, rule in rules.items()})


async def resolve_viewer(session: Session, request: Any, *, settings: Settings | None = None,
                         cookies: list | None = None, cache: ViewerCache | None = None) -> Viewer:
    """The viewer of an HTTP request, in one or two statements; with a `cache`, in none once the
    credential's viewer is known to the process (only the touch writes remain, as often as ever).

    `Authorization: Bearer <token>` names an API token; a token that is unknown, revoked or expired
    raises AuthenticationError (the client meant to authenticate and must hear it failed).
    Otherwise the session cookie names a login session; a cookie that matches no live session is
    ignored (it may simply be old) and the request is anonymous. When a session's expiry slides
    forward, a refreshed cookie is appended to `cookies`.
    """
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <API token>'")
        return await _token_viewer(session, credentials.strip(), cache)
    secret = request.cookies.get(sessions.COOKIE_NAME)
    if secret:
        viewer = await _session_viewer(session, secret, request, settings or Settings(), cookies, cache)
        if viewer is not None:
            return viewer
    if cache is not None and cache.anonymous is not None:
        return cache.anonymous
    epoch = cache.epoch if cache is not None else 0
    viewer = await anonymous_viewer(session)
    if cache is not None:
        cache.keep_anonymous(viewer, epoch)
    return viewer


async def anonymous_viewer(session: Session) -> Viewer:
    rows = await session.fetch_all(
        sa.select(permissions.c.resource, permissions.c.action, permissions.c.row_rule)
        .join(roles, roles.c.id == permissions.c.role_id)
        .where(roles.c.name == ANONYMOUS)
    )
    return Viewer.anonymous((row["resource"], row["action"], row["row_rule"]) for row in rows)


def _with_grants(statement: sa.Select) -> sa.Select:
    """Extend a select that joins `users` with one row per (role, permission) of the user."""
    return (
        statement.add_columns(users.c.id.label("user_id"), users.c.username, roles.c.name.label("role"),
                              permissions.c.resource, permissions.c.action, permissions.c.row_rule)
        .outerjoin(user_roles, user_roles.c.user_id == users.c.id)
        .outerjoin(roles, roles.c.id == user_roles.c.role_id)
        .outerjoin(permissions, permissions.c.role_id == roles.c.id)
        .where(users.c.is_active.is_(True))
    )


def _viewer_from(rows: list[dict[str, Any]]) -> Viewer:
    first = rows[0]
    return Viewer(
        user_id=first["user_id"],
        username=first["username"],
        roles=frozenset(row["role"] for row in rows if row["role"] is not None),
        permissions=combine_grants(
            (row["resource"], row["action"], row["row_rule"]) for row in rows if row["resource"] is not None
        ),
    )


async def _session_viewer(session: Session, secret: str, request: Any, settings: Settings,
                          cookies: list | None, cache: ViewerCache | None) -> Viewer | None:
    key = digest(secret)
    now = utcnow()
    entry = cache.session(key) if cache is not None else None
    if entry is None or entry.expires_at <= now:
        # Not known, or expired as far as this process knows: the database decides (another
        # process may have slid the expiry since).
        epoch = cache.epoch if cache is not None else 0
        entry = await _load_session(session, key)
        if entry is None or entry.expires_at <= now:
            if cache is not None:
                cache.forget_session(key)
            return None
        if cache is not None:
            cache.keep_session(key, entry, epoch)
    if now - entry.last_access_at >= TOUCH_INTERVAL:
        ttl = sessions.session_ttl(settings)
        # Recorded before the write, so that concurrent requests of the session write it once.
        entry.last_access_at, entry.expires_at = now, now + ttl
        await sessions.touch_session(session, entry.session_id, now=now, ttl=ttl)
        if cookies is not None:
            cookies.append(sessions.session_cookie(secret, request, settings))
    return entry.viewer


async def _load_session(session: Session, key: str) -> CachedSession | None:
    rows = await session.fetch_all(_with_grants(
        sa.select(sessions_table.c.id.label("session_id"), sessions_table.c.expires_at, sessions_table.c.last_access_at)
        .select_from(sessions_table.join(users, users.c.id == sessions_table.c.user_id))
        .where(sessions_table.c.token_hash == key)
    ))
    if not rows:
        return None
    return CachedSession(rows[0]["session_id"], _viewer_from(rows), rows[0]["expires_at"], rows[0]["last_access_at"])


async def _token_viewer(session: Session, secret: str, cache: ViewerCache | None) -> Viewer:
    key = digest(secret)
    now = utcnow()
    entry = cache.token(key) if cache is not None else None
    if entry is None:
        epoch = cache.epoch if cache is not None else 0
        entry = await _load_token(session, key, now)
        if cache is not None:
            cache.keep_token(key, entry, epoch)
    elif entry.expires_at is not None and entry.expires_at <= now:
        cache.forget_token(key)
        raise _invalid_token()  # the clock decides; a token's expiry only moves by a change the poll sees
    if entry.last_used_at is None or now - entry.last_used_at >= TOUCH_INTERVAL:
        entry.last_used_at = now  # before the write, so that concurrent requests write it once
        await tokens.touch_token(session, entry.token_id, now=now)
    return entry.viewer


async def _load_token(session: Session, key: str, now: dt.datetime) -> CachedToken:
    rows = await session.fetch_all(_with_grants(
        sa.select(tokens_table.c.id.label("token_id"), tokens_table.c.expires_at, tokens_table.c.revoked_at,
                  tokens_table.c.last_used_at)
        .select_from(tokens_table.join(users, users.c.id == tokens_table.c.user_id))
        .where(tokens_table.c.token_hash == key)
    ))
    token = rows[0] if rows else None
    if token is None or token["revoked_at"] is not None or (token["expires_at"] is not None and token["expires_at"] <= now):
        raise _invalid_token()
    return CachedToken(token["token_id"], _viewer_from(rows), token["expires_at"], token["last_used_at"])


def _invalid_token() -> AuthenticationError:
    return AuthenticationError("the bearer token is not valid: it is unknown, revoked or expired")
