"""A process killed with SIGKILL in the middle of delivering the outbox loses nothing: after a
restart, every queued request reaches the receiver (at least once)."""

from __future__ import annotations

import signal
import subprocess
import sys

import sqlalchemy as sa

from modula.db.core_tables import outbox
from modula_testing import deliver_outbox, running_app
from outbox_fixtures import Receiver, write_relay

LABELS = [f"event-{n}" for n in range(6)]

CHILD = r"""
import asyncio, json, sys
from pathlib import Path
from modula.testing import running_app, token_client

url, plugins, receiver, labels = sys.argv[1], Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])

async def main():
    async with running_app(url, plugins_dir=plugins, outbox_worker=True, outbox_poll_seconds=0.02,
                           outbox_lease_seconds=1.0) as app:
        async with token_client(app, "admin", roles=["admin"]) as client:
            await client.data('mutation($url: String!, $labels: [String!]!) { relay(url: $url, labels: $labels) }',
                              {"url": receiver, "labels": labels})
            await asyncio.sleep(60)  # the worker delivers; the receiver kills this process on the first request

asyncio.run(main())
"""


async def test_deliveries_cut_short_by_kill_9_are_all_delivered_after_a_restart(database_url, tmp_path):
    import json

    write_relay(tmp_path / "plugins")
    receiver = Receiver().start()
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, database_url, str(tmp_path / "plugins"), receiver.url,
                                  json.dumps(LABELS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        receiver.kill_pid = child.pid  # the first request that arrives kills its sender mid-delivery
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == -signal.SIGKILL, stderr
        assert receiver.kill_pid is None  # it was killed by a delivery, not before one

        async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
            async with app.state.database.session() as session:
                before = await session.fetch_all(sa.select(outbox).order_by(outbox.c.id))
            assert len(before) == len(LABELS)
            # Left leased by the dead process (the one it was sending at least; concurrent ones may have made it).
            assert any(row["status"] == "pending" and row["locked_until"] is not None for row in before)
            assert (await deliver_outbox(app, timeout=30))["delivered"] == len(LABELS)
            async with app.state.database.session() as session:
                after = await session.fetch_all(sa.select(outbox).order_by(outbox.c.id))
        assert sorted(set(receiver.labels())) == sorted(LABELS)  # every event, none lost
        assert max(row["attempts"] for row in after) >= 2  # the one cut short was tried again
    finally:
        receiver.stop()
