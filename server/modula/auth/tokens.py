"""API tokens for machines: the secret is shown once at creation, only its hash is kept; tokens
can expire and be revoked, and record when they were last used."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from modula.auth.digests import digest, new_secret
from modula.db.connection import Session
from modula.db.core_tables import tokens
from modula.db.types import utcnow
from modula.errors import Problems, not_found

# Recognisable in logs, configuration files and secret scanners.
TOKEN_PREFIX = "mdl_"

# Everything but the hash: what listings return.
PUBLIC_COLUMNS = [tokens.c.id, tokens.c.user_id, tokens.c.name, tokens.c.expires_at, tokens.c.last_used_at,
                  tokens.c.revoked_at, tokens.c.created_at]


async def create_token(session: Session, user_id: int, *, name: str,
                       expires_at: dt.datetime | None = None) -> tuple[str, dict[str, Any]]:
    """A new token for `user_id`: returns the secret (its only appearance) and the stored row."""
    now = utcnow()
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.timezone.utc)
    problems = Problems()
    if not name.strip() or len(name) > 255:
        problems.add("INVALID_VALUE", "a token needs a name of 1 to 255 characters", ("name",))
    if expires_at is not None and expires_at <= now:
        problems.add("INVALID_VALUE", "the expiry must be in the future", ("expiresAt",))
    problems.raise_if_any()
    secret = new_secret(TOKEN_PREFIX)
    async with session.transaction():
        row = await session.fetch_one(
            tokens.insert()
            .values(user_id=user_id, name=name.strip(), token_hash=digest(secret), expires_at=expires_at, created_at=now)
            .returning(*PUBLIC_COLUMNS)
        )
    return secret, row


async def list_tokens(session: Session, user_id: int) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(*PUBLIC_COLUMNS).where(tokens.c.user_id == user_id).order_by(tokens.c.id))


async def revoke_token(session: Session, token_id: int, *, user_id: int | None) -> None:
    """Revoke a token of `user_id` (None: any user's, for admins). Revoking twice is harmless; a
    token of someone else is NOT_FOUND, as if it did not exist."""
    async with session.transaction():
        owner_match = sa.true() if user_id is None else tokens.c.user_id == user_id
        found = await session.fetch_one(
            sa.select(tokens.c.id, tokens.c.revoked_at).where(tokens.c.id == token_id, owner_match)
        )
        if found is None:
            raise not_found("API token", token_id, ("id",))
        if found["revoked_at"] is None:
            await session.execute(tokens.update().where(tokens.c.id == token_id).values(revoked_at=utcnow()))


async def touch_token(session: Session, token_id: int, *, now: dt.datetime) -> None:
    """Record use; one autocommitted statement, like sessions.touch_session."""
    await session.execute(tokens.update().where(tokens.c.id == token_id).values(last_used_at=now))
