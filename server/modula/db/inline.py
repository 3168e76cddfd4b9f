"""Short SQLite statements on the event loop's own thread, under a time budget: a statement that
would hold the loop longer is interrupted (nothing of it stays) and runs on a worker thread.

Why: an aiosqlite call is two thread switches and a wake-up of the loop, more than a short
statement costs SQLite itself. The budget bounds how long any request can hold the loop; a busy
database (another process writing) is never waited for here (busy timeout 0), the worker thread's
connection waits instead. This connection never checkpoints the WAL (that can fsync): its writes
are checkpointed by the caller through a pooled connection, off the loop.

A short write transaction (one whose statements are all index lookups, such as the core's coupled
content writes) may take the connection for its whole length (`begin`): its statements then run
here without a budget, and every other statement goes to a worker thread until it ends. An
interrupted write would roll the whole transaction back, so it is never interrupted; the
transactions that ask for this are the ones that cannot run long.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

# The loop is held at most about this long by one statement before it moves to a thread.
DEFAULT_BUDGET_SECONDS = 0.002
# SQLite calls the progress handler every this many virtual machine steps (a few microseconds).
_STEPS = 1000
# Statements that overran the budget go straight to a thread afterwards; this many are remembered.
_SLOW_REMEMBERED = 256
_MOVE_ELSEWHERE = (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class InlineSQLite:
    """One stdlib sqlite3 connection used only from the event loop's thread, in autocommit."""

    def __init__(self, path: str, *, uri: bool = False, budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> None:
        self.budget_seconds = budget_seconds
        self.statements = 0  # run here
        self.moved = 0  # interrupted or busy: the caller ran them on a worker thread
        self._deadline = 0.0
        self._slow: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self.owner: object | None = None  # the session whose transaction holds the connection
        self._connection = sqlite3.connect(path, uri=uri, isolation_level=None)
        for pragma in ("PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 0", "PRAGMA synchronous = NORMAL",
                       "PRAGMA wal_autocheckpoint = 0"):
            self._connection.execute(pragma)
        self.check_every(_STEPS)

    def check_every(self, steps: int) -> None:
        """Look at the clock every `steps` virtual machine steps (tests make it 1)."""
        self._connection.set_progress_handler(self._over_budget, steps)

    def _over_budget(self) -> int:
        return 1 if time.perf_counter() > self._deadline else 0

    def try_run(self, sql: str, args: Sequence[Any]) -> list[tuple] | None:
        """The statement's rows, or None when it must run elsewhere (over budget, or the file is
        locked by a writer); an interrupted or refused statement changed nothing. Other errors
        (constraints, SQL) are raised as sqlite3 raises them. A statement that once overran the
        budget is not tried here again (while it is among the last few hundred that did)."""
        if sql in self._slow or self.owner is not None:
            self.moved += 1
            return None
        self._deadline = time.perf_counter() + self.budget_seconds
        try:
            cursor = self._connection.execute(sql, args)
            try:
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
            if code in _MOVE_ELSEWHERE:
                if code == sqlite3.SQLITE_INTERRUPT:
                    self._slow[sql] = None
                    if len(self._slow) > _SLOW_REMEMBERED:
                        del self._slow[next(iter(self._slow))]
                self.moved += 1
                return None
            raise
        self.statements += 1
        return rows

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for the statements of the transaction that holds it (see `begin`)."""
        return self._connection

    def begin(self, owner: object) -> bool:
        """BEGIN IMMEDIATE for `owner`'s transaction; False (and nothing begun) when the connection
        is taken or another process is writing: the transaction then runs on a worker thread,
        whose connection waits for the file. The caller holds the process's write lock."""
        if self.owner is not None:
            return False
        self._deadline = math.inf  # statements of a held transaction are never interrupted
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._deadline = 0.0
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _MOVE_ELSEWHERE:
                return False
            raise
        self.owner = owner
        self.statements += 1
        return True

    def end(self, verb: str) -> None:
        """COMMIT or ROLLBACK the held transaction and give the connection back; the transaction
        has ended even when COMMIT fails (it is rolled back then)."""
        try:
            self._connection.execute(verb)
        except sqlite3.Error:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise
        finally:
            self.owner = None
            self._deadline = 0.0
            self.statements += 1

    def close(self) -> None:
        self._connection.close()
