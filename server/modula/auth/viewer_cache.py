"""Viewers kept in memory: credential digest -> the viewer with its grants, so a request with a
known token or session resolves its viewer without a statement.

What may go stale is bounded by the auth generation (sql/*/0009_auth_generation.sql), a counter
the database moves in the same transaction as any change to who a viewer is or what they may do.
The process that makes such a change forgets its entries at once (`clear`); every process looks
at the counter in the poll that follows the schema generation (run at once on PostgreSQL when
the counter's NOTIFY arrives) and forgets everything when it moved (`sync`). Expiry is not a change the counter sees: it is checked against the clock at every
use. Entries are only ever added with the data read after the last forgetting (see `epoch`).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import auth_state

if TYPE_CHECKING:
    from modula.auth.viewer import Viewer

# Enough for every live credential of a large site; beyond it the least recently used go (and
# cost one statement when they come back), so memory stays bounded whatever clients send.
MAX_ENTRIES = 10_000


@dataclass
class CachedToken:
    token_id: int
    viewer: Viewer
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None  # as this process last wrote or read it


@dataclass
class CachedSession:
    session_id: int
    viewer: Viewer
    expires_at: dt.datetime  # as this process last wrote or read it; the database may be later
    last_access_at: dt.datetime


class ViewerCache:
    """The viewers of one server process, by the digest of their credential's secret."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.tokens: OrderedDict[str, CachedToken] = OrderedDict()
        self.sessions: OrderedDict[str, CachedSession] = OrderedDict()
        self.anonymous: Viewer | None = None
        # The auth generation the entries are known to be current with; None until first synced.
        self.generation: int | None = None
        # Moves at every forgetting. A lookup notes it before reading the database and may store
        # what it read only if it has not moved since: a read that raced a change stays out.
        self.epoch = 0

    def clear(self) -> None:
        """Forget every viewer (this process just changed who a viewer is or what they may do)."""
        self.tokens.clear()
        self.sessions.clear()
        self.anonymous = None
        self.epoch += 1

    def sync(self, generation: int) -> bool:
        """Take in the database's auth generation; forget everything when it moved. True then."""
        if generation == self.generation:
            return False
        self.clear()
        self.generation = generation
        return True

    def token(self, key: str) -> CachedToken | None:
        return _get(self.tokens, key)

    def session(self, key: str) -> CachedSession | None:
        return _get(self.sessions, key)

    def keep_token(self, key: str, entry: CachedToken, epoch: int) -> None:
        if epoch == self.epoch:
            _put(self.tokens, key, entry, self.max_entries)

    def keep_session(self, key: str, entry: CachedSession, epoch: int) -> None:
        if epoch == self.epoch:
            _put(self.sessions, key, entry, self.max_entries)

    def keep_anonymous(self, viewer: Viewer, epoch: int) -> None:
        if epoch == self.epoch:
            self.anonymous = viewer

    def forget_token(self, key: str) -> None:
        self.tokens.pop(key, None)

    def forget_session(self, key: str) -> None:
        self.sessions.pop(key, None)


def _get(entries: OrderedDict, key: str):
    entry = entries.get(key)
    if entry is not None:
        entries.move_to_end(key)
    return entry


def _put(entries: OrderedDict, key: str, entry, max_entries: int) -> None:
    entries[key] = entry
    entries.move_to_end(key)
    while len(entries) > max_entries:
        entries.popitem(last=False)


async def current_auth_generation(session: Session) -> int:
    return int(await session.fetch_value(sa.select(auth_state.c.generation).where(auth_state.c.id == 1)))
