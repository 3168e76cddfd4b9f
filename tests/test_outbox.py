"""The outbox: side effects written with their change, delivered after it commits, at least once,
retried with backoff to a dead letter, at most `per_plugin` of a plugin at once, never twice at
the same time; admins see and retry deliveries over GraphQL."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from modula.db import outbox
from modula.db.core_tables import outbox as outbox_table
from modula.outbox.policy import DeliveryPolicy
from modula.outbox.worker import OutboxWorker
from modula_testing import deliver_outbox, running_app, token_client
from outbox_fixtures import Receiver, write_relay

BUNDLED = Path(__file__).resolve().parents[1] / "plugins"
RELAY = 'mutation($url: String!, $labels: [String!]!, $fail: Boolean) { relay(url: $url, labels: $labels, fail: $fail) }'
FAST_RETRIES = {"outbox_backoff_seconds": 0.05, "outbox_backoff_max_seconds": 0.2, "outbox_max_attempts": 50}


async def _rows(app) -> list[dict]:
    async with app.state.database.session() as session:
        return await session.fetch_all(sa.select(outbox_table).order_by(outbox_table.c.id))


def test_backoff_doubles_up_to_its_cap_and_ends_in_a_dead_letter():
    policy = DeliveryPolicy(max_attempts=6, backoff_seconds=1.0, backoff_max_seconds=10.0)
    assert [policy.retry_in(attempts) for attempts in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, None]


async def test_queued_requests_commit_with_the_change_and_vanish_with_its_rollback(database_url, tmp_path):
    write_relay(tmp_path / "plugins")
    receiver = Receiver().start()
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
                token_client(app, "admin", roles=["admin"]) as admin:
            failed = await admin.execute(RELAY, {"url": receiver.url, "labels": ["x", "y"], "fail": True})
            assert "refused after queueing" in failed["errors"][0]["message"]
            assert await _rows(app) == [] and await admin.count("relay_sent") == 0
            assert (await admin.data(RELAY, {"url": receiver.url, "labels": ["a", "b"]}))["relay"] == 2
            rows = await _rows(app)
            assert [row["kind"] for row in rows] == ["http", "http"] and {row["plugin"] for row in rows} == {"relay"}
            assert {row["status"] for row in rows} == {"pending"} and receiver.labels() == []
            assert await deliver_outbox(app) == {"pending": 0, "delivered": 2, "dead": 0}
            assert receiver.labels() == ["a", "b"]
            # A generated mutation's change queues the table's after_commit hook with it.
            await admin.data('mutation($url: String!) { insertRelaySent(objects: [{label: "c", url: $url}]) { affectedRows } }',
                             {"url": receiver.url})
            assert [row["kind"] for row in await _rows(app)][2:] == ["hook"]
            assert await deliver_outbox(app) == {"pending": 0, "delivered": 4, "dead": 0}  # the hook, then its request
            assert receiver.labels() == ["a", "b", "insert:c"]
    finally:
        receiver.stop()


async def test_luas_own_insert_queues_the_tables_after_commit_hook_as_generated_mutations_do(database_url, tmp_path):
    write_relay(tmp_path / "plugins")
    receiver = Receiver().start()
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
                token_client(app, "admin", roles=["admin"]) as admin:
            await admin.data('mutation($url: String!) { relayInsert(url: $url, label: "d") }', {"url": receiver.url})
            assert [row["kind"] for row in await _rows(app)] == ["hook"]
            assert await deliver_outbox(app) == {"pending": 0, "delivered": 2, "dead": 0}  # the hook, then its request
            assert receiver.labels() == ["insert:d"]
    finally:
        receiver.stop()


async def test_enqueue_to_a_host_the_manifest_does_not_allow_is_refused_and_nothing_is_written(database_url, tmp_path):
    write_relay(tmp_path / "plugins")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
            token_client(app, "admin", roles=["admin"]) as admin:
        body = await admin.execute(RELAY, {"url": "https://evil.example.org/steal", "labels": ["a"]})
        assert "http.enqueue: host 'evil.example.org' is not allowed" in body["errors"][0]["message"]
        assert await _rows(app) == [] and await admin.count("relay_sent") == 0


async def test_a_receiver_that_is_down_then_refuses_gets_every_event_once_it_is_back(database_url, tmp_path):
    shutil.copytree(BUNDLED / "webhooks", tmp_path / "plugins" / "webhooks")
    manifest = tmp_path / "plugins" / "webhooks" / "plugin.json"
    manifest.write_text(manifest.read_text().replace('"hooks.example.com"', '"127.0.0.1"'))
    receiver = Receiver()  # not listening yet: connections are refused
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins", outbox_worker=True,
                               outbox_poll_seconds=0.02, **FAST_RETRIES) as app, \
                token_client(app, "admin", roles=["admin"]) as admin:
            from cms_fixtures import make_content, make_datatype, make_route
            await admin.data('mutation($url: String!) { insertWebhooksSubscriptions(objects: [{event: "content.created", url: $url}]) '
                             '{ affectedRows } }', {"url": receiver.url})
            route, datatype = await make_route(admin), await make_datatype(admin)
            nodes = [await make_content(admin, route, datatype) for _ in range(3)]
            await _until(lambda: _failed_http_attempts(app), lambda n: n >= 3)
            receiver.status = 503
            receiver.start()
            await _until(lambda: _value(receiver.refused), lambda n: n >= 3)
            receiver.status = 204
            await _until(lambda: _value(len(receiver.bodies)), lambda n: n >= 3)
            await asyncio.sleep(0.3)  # nothing more arrives: each event once
            assert sorted(body["data"]["id"] for body in receiver.bodies) == sorted(node["id"] for node in nodes)
            assert {body["event"] for body in receiver.bodies} == {"content.created"}
            http = [row for row in await _rows(app) if row["kind"] == "http"]
            assert len(http) == 3 and {row["status"] for row in http} == {"delivered"}
            assert all(row["attempts"] >= 2 for row in http)
    finally:
        receiver.stop()


async def test_content_changes_reach_after_commit_hooks_and_a_refused_change_queues_nothing(database_url, tmp_path):
    shutil.copytree(BUNDLED / "webhooks", tmp_path / "plugins" / "webhooks")
    manifest = tmp_path / "plugins" / "webhooks" / "plugin.json"
    manifest.write_text(manifest.read_text().replace('"hooks.example.com"', '"127.0.0.1"'))
    receiver = Receiver().start()
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
                token_client(app, "admin", roles=["admin"]) as admin:
            from cms_fixtures import field_ids, make_content, make_datatype, make_route
            for event in ("content.created", "content.updated", "content.deleted"):
                await admin.data('mutation($e: String!, $url: String!) { insertWebhooksSubscriptions(objects: '
                                 '[{event: $e, url: $url}]) { affectedRows } }', {"e": event, "url": receiver.url})
            route, datatype = await make_route(admin), await make_datatype(admin)
            refused = await admin.execute('mutation($input: CreateContentInput!) { createContent(input: $input) { id } }',
                                          {"input": {"routeId": route["id"], "datatypeId": datatype["id"],
                                                     "fields": [{"fieldId": 999999, "value": "x"}]}})
            assert refused["errors"] and await _rows(app) == [] and await admin.count("content_data") == 0
            node = await make_content(admin, route, datatype)
            title = field_ids(datatype)["Title"]
            await admin.data('mutation($id: Int!, $f: Int!) { updateContent(id: $id, fields: [{fieldId: $f, value: "New"}]) { id } }',
                             {"id": node["id"], "f": title})
            await admin.data('mutation($id: Int!) { deleteContent(id: $id) { deletedIds } }', {"id": node["id"]})
            hooks = await _rows(app)
            assert [json.loads(row["payload"])["change"] for row in hooks] == ["insert", "update", "delete"]
            assert await deliver_outbox(app) == {"pending": 0, "delivered": 6, "dead": 0}
            assert sorted(body["event"] for body in receiver.bodies) == ["content.created", "content.deleted", "content.updated"]
            assert {body["data"]["id"] for body in receiver.bodies} == {node["id"]}
    finally:
        receiver.stop()


async def test_a_delivery_out_of_attempts_is_dead_until_an_admin_retries_it(database_url, tmp_path):
    write_relay(tmp_path / "plugins")
    receiver = Receiver().start()
    receiver.status = 503
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins", **{**FAST_RETRIES, "outbox_max_attempts": 3}) as app, \
                token_client(app, "admin", roles=["admin"]) as admin, token_client(app, "ed", roles=["editor"]) as editor:
            await admin.data(RELAY, {"url": receiver.url, "labels": ["a"]})
            assert await deliver_outbox(app) == {"pending": 0, "delivered": 0, "dead": 1}
            [dead] = (await admin.data("{ deliveries(status: DEAD) { id kind target attempts lastError } }"))["deliveries"]
            assert dead["kind"] == "http" and dead["target"] == f"POST {receiver.url}" and dead["attempts"] == 3
            assert dead["lastError"] == f"POST {receiver.url} answered 503" and receiver.refused == 3

            denied = await editor.execute("mutation($id: Int!) { retryDelivery(id: $id) { status } }", {"id": dead["id"]})
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert (await editor.execute("{ deliveries { id } }"))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            missing = await admin.execute("mutation { retryDelivery(id: 999999) { status } }")
            assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND" and missing["errors"][0]["path"] == ["retryDelivery"]
            assert [row["status"] for row in await _rows(app) if row["id"] == dead["id"]] == ["dead"]

            receiver.status = 204
            retried = await admin.data("mutation($id: Int!) { retryDelivery(id: $id) { status attempts } }", {"id": dead["id"]})
            assert retried["retryDelivery"] == {"status": "PENDING", "attempts": 0}
            assert await deliver_outbox(app) == {"pending": 0, "delivered": 1, "dead": 0}
            assert receiver.labels() == ["a"]
            again = await admin.execute("mutation($id: Int!) { retryDelivery(id: $id) { status } }", {"id": dead["id"]})
            assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # delivered: nothing to retry
    finally:
        receiver.stop()


async def test_a_bad_status_argument_is_refused_with_where(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
            token_client(app, "admin", roles=["admin"]) as admin:
        body = await admin.execute('{ deliveries(status: LOST) { id } }')
        assert "'LOST' does not exist in 'DeliveryStatus'" in body["errors"][0]["message"]
        assert body["errors"][0]["locations"] == [{"line": 1, "column": 22}]
        body = await admin.execute('{ deliveries(limit: -1) { id } }')
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT" and "limit" in body["errors"][0]["message"]


async def test_one_plugin_runs_at_most_its_limit_at_once_while_others_go_on(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with app.state.database.session() as session:
            for plugin in ["busy"] * 6 + ["other"] * 2:
                await outbox.enqueue(session, plugin, "http", {"n": 1})
        running: dict[str, int] = {"busy": 0, "other": 0}
        most: dict[str, int] = {"busy": 0, "other": 0}
        others_done = asyncio.Event()
        delivered_others = []

        async def deliver(entry):
            plugin = entry["plugin"]
            running[plugin] += 1
            most[plugin] = max(most[plugin], running[plugin])
            if plugin == "busy":
                # The first ones hold their places until the other plugin's have run: they can
                # only have run beside them, in places of their own.
                await asyncio.wait_for(others_done.wait(), 5)
                await asyncio.sleep(0.01)
            else:  # both of the other plugin's run at once, beside the busy ones
                delivered_others.append(entry["id"])
                if len(delivered_others) == 2:
                    others_done.set()
                await asyncio.wait_for(others_done.wait(), 5)
            running[plugin] -= 1

        worker = OutboxWorker(app.state.database, deliver, DeliveryPolicy(per_plugin=2))
        assert await worker.step() == 8
        await worker.drain()
        assert most == {"busy": 2, "other": 2} and worker.failures == {}
        assert {row["status"] for row in await _rows(app)} == {"delivered"}


async def test_a_leased_entry_is_not_claimed_again_until_its_lease_runs_out(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with app.state.database.session() as session:
            entry_id = await outbox.enqueue(session, "p", "http", {})
            [first] = await outbox.claim(session, "w1", 10, 1.0)
            assert first["id"] == entry_id and first["attempts"] == 1
            assert await outbox.claim(session, "w2", 10, 1.0) == []
            await asyncio.sleep(1.1)  # w1 was killed: its lease runs out
            [second] = await outbox.claim(session, "w2", 10, 30)
            assert second["attempts"] == 2 and second["locked_by"] == "w2"
            assert not await outbox.renew(session, entry_id, "w1", 30)  # w1 cannot take it back
            await outbox.delivered(session, entry_id, "w1")  # nor record an outcome
            [row] = await _rows(app)
            assert row["status"] == "pending" and row["locked_by"] == "w2"
            await outbox.delivered(session, entry_id, "w2")
            [row] = await _rows(app)
            assert row["status"] == "delivered" and row["delivered_at"] is not None


async def test_a_malformed_entry_is_dead_at_once(database_url, tmp_path):
    write_relay(tmp_path / "plugins")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with app.state.database.session() as session:
            await outbox.enqueue(session, "relay", "http", {"method": "POST"})  # no url
        assert await deliver_outbox(app) == {"pending": 0, "delivered": 0, "dead": 1}
        [row] = await _rows(app)
        assert row["attempts"] == 1 and row["last_error"] == "the queued request is malformed"


async def test_plugin_sql_can_neither_read_nor_write_the_outbox_table(database_url, tmp_path):
    write_relay(tmp_path / "plugins")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, \
            token_client(app, "admin", roles=["admin"]) as admin:
        for sql in ("SELECT count(*) AS n FROM outbox",
                    "INSERT INTO outbox (plugin, kind, payload, next_attempt_at, created_at) "
                    "VALUES ('shop', 'http', '{}', '2026-01-01', '2026-01-01')"):
            body = await admin.execute('mutation($sql: String!) { relayRaw(sql: $sql) }', {"sql": sql})
            assert body["errors"] and "outbox" in body["errors"][0]["message"], body
        assert await _rows(app) == []


async def _failed_http_attempts(app) -> int:
    return sum(row["attempts"] for row in await _rows(app) if row["kind"] == "http" and row["last_error"])


async def _value(value):
    return value


async def _until(read, done, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        assert loop.time() < deadline, f"still {value!r} after {timeout} s"
        await asyncio.sleep(0.02)


# --- PostgreSQL: replicas share the work ------------------------------------------------------


async def test_postgresql_claims_skip_rows_another_replica_holds_locked(database_url, dialect, tmp_path):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: its write transaction is the claim's lock")
    from modula.db.connection import Database

    other = Database(database_url)
    await other.connect()
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
            async with app.state.database.session() as session:
                ids = [await outbox.enqueue(session, "p", "http", {"n": n}) for n in range(10)]
            async with other.session() as holder, holder.transaction():
                held = await holder.fetch_all(sa.select(outbox_table.c.id).where(outbox_table.c.id.in_(ids[:4]))
                                              .with_for_update())
                assert len(held) == 4
                async with app.state.database.session() as session:
                    claimed = await asyncio.wait_for(outbox.claim(session, "w", 10, 30), 5)  # no waiting on the lock
            assert [row["id"] for row in claimed] == ids[4:]
    finally:
        await other.disconnect()


async def test_postgresql_two_workers_deliver_every_entry_once_and_never_one_twice_at_a_time(database_url, dialect, tmp_path):
    if dialect != "postgresql":
        pytest.skip("several replicas share an outbox on PostgreSQL")
    from modula.db.connection import Database

    second = Database(database_url)
    await second.connect()
    try:
        async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
            async with app.state.database.session() as session:
                ids = [await outbox.enqueue(session, f"p{n % 3}", "http", {"n": n}) for n in range(60)]
            runs: dict[int, list[str]] = {}
            in_flight: set[int] = set()
            overlaps = []

            def deliverer(name):
                async def deliver(entry):
                    if entry["id"] in in_flight:
                        overlaps.append(entry["id"])
                    in_flight.add(entry["id"])
                    runs.setdefault(entry["id"], []).append(name)
                    await asyncio.sleep(0.01)
                    in_flight.discard(entry["id"])
                return deliver

            policy = DeliveryPolicy(batch=8, poll_seconds=0.01)
            workers = [OutboxWorker(app.state.database, deliverer("a"), policy, name="a"),
                       OutboxWorker(second, deliverer("b"), policy, name="b")]
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            try:
                await _until(lambda: _value(sum(w.delivered for w in workers)), lambda n: n >= len(ids))
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            assert sorted(runs) == ids and all(len(names) == 1 for names in runs.values())
            assert overlaps == []
            assert workers[0].delivered > 0 and workers[1].delivered > 0  # both took a share
            assert {row["status"] for row in await _rows(app)} == {"delivered"}
    finally:
        await second.disconnect()
