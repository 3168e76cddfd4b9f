"""Password hashes: argon2id through argon2-cffi, rehashed when the hashing parameters change."""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults (RFC 9106's low-memory profile) and argon2id. Changing them here makes
# every stored hash "need a rehash": the next successful login stores a hash with the new ones.
HASHER = PasswordHasher()

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing a megabyte-long "password" would be a cheap way to burn our CPU


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or HASHER).hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches. A missing hash is checked against a dummy hash instead, so a
    login for a user who does not exist takes as long as one with a wrong password."""
    try:
        return HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    """verify_password off the event loop: a verification takes tens of milliseconds of CPU."""
    return await asyncio.to_thread(verify_password, stored_hash, password)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))
