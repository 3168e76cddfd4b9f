"""Login sessions: a random secret in an HttpOnly cookie, its SHA-256 in the sessions table, and
an expiry that slides forward while the session is used."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modula.auth.digests import digest, new_secret
from modula.config import Settings
from modula.db.connection import Session
from modula.db.core_tables import sessions
from modula.db.types import utcnow

COOKIE_NAME = "modula_session"


@dataclass(frozen=True)
class Cookie:
    """A Set-Cookie a resolver asks the HTTP layer to send (an empty value with max_age 0 clears it)."""

    name: str
    value: str
    max_age: int
    secure: bool

    def apply(self, response: Any) -> None:
        response.set_cookie(self.name, self.value, max_age=self.max_age, path="/", secure=self.secure,
                            httponly=True, samesite="lax")


def session_ttl(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.session_ttl_seconds)


def cookie_is_secure(request: Any, settings: Settings) -> bool:
    """Secure cookies over HTTPS; the `secure_cookies` setting forces it either way (behind a
    TLS-terminating proxy the app itself sees plain HTTP)."""
    if settings.secure_cookies is not None:
        return settings.secure_cookies
    return request is not None and request.url.scheme == "https"


def session_cookie(secret: str, request: Any, settings: Settings) -> Cookie:
    return Cookie(COOKIE_NAME, secret, settings.session_ttl_seconds, cookie_is_secure(request, settings))


def cleared_cookie(request: Any, settings: Settings) -> Cookie:
    return Cookie(COOKIE_NAME, "", 0, cookie_is_secure(request, settings))


async def create_session(session: Session, user_id: int, *, ttl: dt.timedelta, ip: str | None = None,
                         user_agent: str | None = None) -> tuple[str, dict[str, Any]]:
    """Start a session for `user_id`: returns the secret (for the cookie, never stored) and the row.
    The user's expired sessions are deleted on the way, so the table does not grow forever."""
    secret = new_secret()
    now = utcnow()
    async with session.transaction():
        await session.execute(sessions.delete().where(sessions.c.user_id == user_id, sessions.c.expires_at <= now))
        row = await session.insert(sessions, {
            "user_id": user_id,
            "token_hash": digest(secret),
            "expires_at": now + ttl,
            "last_access_at": now,
            "ip": ip,
            "user_agent": (user_agent or "")[:1000] or None,
            "created_at": now,
        })
    return secret, row


async def end_session(session: Session, secret: str) -> bool:
    """Delete the session the secret opens; False when there was none."""
    async with session.transaction():
        return await session.execute(sessions.delete().where(sessions.c.token_hash == digest(secret))) > 0


async def touch_session(session: Session, session_id: int, *, now: dt.datetime, ttl: dt.timedelta) -> None:
    """Record use and slide the expiry. One autocommitted statement: a lost update only delays
    the expiry by a minute, and the request's own statements stay few."""
    await session.execute(
        sessions.update().where(sessions.c.id == session_id).values(last_access_at=now, expires_at=now + ttl)
    )



async def list_sessions(session: Session, user_id: int) -> list[dict[str, Any]]:
    """The user's unexpired sessions, newest first (with their token hash, to tell the current one)."""
    return await session.fetch_all(
        sa.select(sessions).where(sessions.c.user_id == user_id, sessions.c.expires_at > utcnow())
        .order_by(sessions.c.created_at.desc(), sessions.c.id.desc()))


async def revoke_session(session: Session, session_id: int, *, user_id: int | None) -> bool:
    """End one session; only the user's own unless `user_id` is None (an administrator). False
    when there is no such session (or it is another user's)."""
    condition = [sessions.c.id == session_id]
    if user_id is not None:
        condition.append(sessions.c.user_id == user_id)
    async with session.transaction():
        return await session.execute(sessions.delete().where(*condition)) > 0


async def end_other_sessions(session: Session, user_id: int, *, keep: str | None) -> int:
    """End every session of the user but the one `keep` (a cookie's secret) opens."""
    condition = [sessions.c.user_id == user_id]
    if keep:
        condition.append(sessions.c.token_hash != digest(keep))
    async with session.transaction():
        return await session.execute(sessions.delete().where(*condition))
