"""The background worker that delivers the outbox: claims due entries under a lease, runs each
(at most `per_plugin` of one plugin at once), and records the outcome: delivered, due again
after an exponential backoff, or dead after the last attempt.

An entry is never run by two workers at the same time: before it runs, its lease is renewed (a
worker whose lease ran out meanwhile drops it), and the run is cut off before the lease ends.
Leases are compared with each process's clock, so replicas' clocks must agree to well within
`lease_seconds`. A worker killed mid-delivery leaves its entries leased; they are due again
once the lease runs out, so every entry is delivered at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from modula.db import outbox
from modula.db.connection import Database
from modula.outbox.deliveries import DeliveryFailed
from modula.outbox.policy import DeliveryPolicy

log = logging.getLogger("modula.outbox")

Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class OutboxWorker:
    def __init__(self, database: Database, deliver: Deliver, policy: DeliveryPolicy | None = None,
                 *, name: str | None = None) -> None:
        self.database = database
        self.deliver = deliver
        self.policy = policy or DeliveryPolicy()
        self.name = name or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.failures: dict[str, int] = {}  # by plugin: attempts that failed in this process (for /metrics)
        self.delivered = 0
        self._running: set[asyncio.Task] = set()
        self._per_plugin: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the table now (something was just queued here)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; a failing claim (the database is away) is retried."""
        try:
            while True:
                try:
                    claimed = await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox: claiming deliveries failed")
                    claimed = 0
                if not claimed:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.policy.poll_seconds)
                    self._wake.clear()
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def step(self) -> int:
        """Claim what is due (as many as there are free places) and start delivering it."""
        free = self.policy.batch - len(self._running)
        if free <= 0:
            return 0
        async with self.database.session() as session:
            entries = await outbox.claim(session, self.name, free, self.policy.lease_seconds)
        for entry in entries:
            task = asyncio.create_task(self._attempt(entry))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(entries)

    async def drain(self) -> None:
        """Wait for the deliveries started so far (tests)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _attempt(self, entry: dict[str, Any]) -> None:
        slots = self._per_plugin.setdefault(entry["plugin"], asyncio.Semaphore(self.policy.per_plugin))
        async with slots:
            async with self.database.session() as session:
                if not await outbox.renew(session, entry["id"], self.name, self.policy.lease_seconds):
                    return  # waited past the lease: another worker may have it now
            try:
                async with asyncio.timeout(self.policy.lease_seconds * 0.8):
                    await self.deliver(entry)
            except (DeliveryFailed, TimeoutError) as exc:
                permanent = isinstance(exc, DeliveryFailed) and exc.permanent
                await self._failed(entry, str(exc) or "timed out", permanent)
                return
            except asyncio.CancelledError:
                raise  # shutting down: the lease runs out and another attempt follows
            except Exception as exc:  # a bug, not the receiver: still counted, retried, reported
                log.exception("outbox: delivery %s failed", entry["id"])
                await self._failed(entry, f"{type(exc).__name__}: {exc}", False)
                return
            async with self.database.session() as session:
                await outbox.delivered(session, entry["id"], self.name)
            self.delivered += 1

    async def _failed(self, entry: dict[str, Any], error: str, permanent: bool) -> None:
        self.failures[entry["plugin"]] = self.failures.get(entry["plugin"], 0) + 1
        retry_in = None if permanent else self.policy.retry_in(entry["attempts"])
        if retry_in is None:
            log.warning("outbox: delivery %s of plugin %s is dead after %d attempt(s): %s",
                        entry["id"], entry["plugin"], entry["attempts"], error)
        else:
            log.info("outbox: delivery %s of plugin %s failed (attempt %d), again in %.1f s: %s",
                     entry["id"], entry["plugin"], entry["attempts"], retry_in, error)
        async with self.database.session() as session:
            await outbox.failed(session, entry["id"], self.name, error, retry_in)
