"""Secrets handed to clients (session cookies, API tokens) and the only thing stored of them: a hash.

A SHA-256 digest is enough here (unlike passwords): the secrets are 256 random bits, so there is
nothing to guess, and a stolen table of digests opens no session.
"""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str = "") -> str:
    """A fresh random secret (256 bits, URL-safe), optionally prefixed so scanners can spot it."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The hex SHA-256 of a secret: what the database stores and looks up."""
    return hashlib.sha256(secret.encode()).hexdigest()
