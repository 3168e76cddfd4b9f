"""SQLite: the fast path's statements run on the event loop's thread (db/inline.py) when they fit
its budget; one that does not, or that meets a writer of another connection, moves to a worker
thread and its answer is the same, written once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from modula.db import connection
from test_fast_path import shop  # noqa: F401 - the fixture

Q2 = "query q2($id:Int!){ fpProduct(productId:$id){ productId name fpAttributes { key value } } }"
INSERT = "mutation($n: String!) { insertFpProduct(object: {name: $n, price: 1, category: \"c\"}) { productId name } }"


@pytest.fixture
def sqlite_shop(shop, dialect):  # noqa: F811
    if dialect != "sqlite":
        pytest.skip("SQLite's loop-thread connection")
    return shop


async def _count(admin, name: str) -> int:
    rows = await admin.data("query($n: String!) { fpProducts(where: {name: {eq: $n}}) { productId } }", {"n": name})
    return len(rows["fpProducts"])


async def test_a_warmed_read_runs_on_the_loop_thread(sqlite_shop):
    app, admin, _ = sqlite_shop
    inline = app.state.database.inline
    await admin.execute(Q2, {"id": 1})
    before = (inline.statements, inline.moved)
    answer = await admin.data(Q2, {"id": 1})
    assert answer["fpProduct"]["name"] == "apple" and len(answer["fpProduct"]["fpAttributes"]) == 3
    assert (inline.statements, inline.moved) == (before[0] + 1, before[1])


async def test_a_statement_over_the_budget_moves_to_a_thread_with_the_same_answer(sqlite_shop):
    app, admin, _ = sqlite_shop
    inline = app.state.database.inline
    expected = await admin.data(Q2, {"id": 1})
    inline.budget_seconds = 0  # every statement is interrupted at its first progress check ...
    inline.check_every(1)  # ... which comes at its first step
    moved = inline.moved
    assert await admin.data(Q2, {"id": 1}) == expected
    inserted = await admin.data(INSERT, {"n": "over budget"})
    assert inline.moved >= moved + 2
    assert inserted["insertFpProduct"]["name"] == "over budget"
    assert await _count(admin, "over budget") == 1  # the interrupted insert left nothing behind
    inline.budget_seconds = 10.0
    ran_here = inline.statements
    assert await admin.data(Q2, {"id": 1}) == expected  # it overran once: straight to a thread since
    assert inline.statements == ran_here


async def test_a_write_that_meets_another_writer_waits_on_a_thread_not_on_the_loop(sqlite_shop, tmp_path):
    app, admin, _ = sqlite_shop
    inline = app.state.database.inline
    await admin.execute(INSERT, {"n": "warm"})
    path = app.state.database.url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction, say
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        ticks = 0

        async def ticking() -> None:  # the loop stays free while the insert waits
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(ticking())
        moved = inline.moved
        inserted = await admin.data(INSERT, {"n": "after the other writer"})
        ticker.cancel()
    finally:
        release.join()
        other.close()
    assert inserted["insertFpProduct"]["name"] == "after the other writer"
    assert inline.moved == moved + 1 and ticks >= 10
    assert await _count(admin, "after the other writer") == 1


async def test_loop_thread_writes_are_checkpointed_off_the_loop(sqlite_shop, monkeypatch):
    app, admin, _ = sqlite_shop
    monkeypatch.setattr(connection, "INLINE_WRITES_PER_CHECKPOINT", 3)
    seen: list[str] = []
    stop = app.state.database.observe(seen.append)
    try:
        for n in range(3):
            await admin.data(INSERT, {"n": f"c{n}"})
        for _ in range(100):
            if any("wal_checkpoint" in sql for sql in seen):
                break
            await asyncio.sleep(0.01)
    finally:
        stop()
    assert any("wal_checkpoint(PASSIVE)" in sql for sql in seen), seen


# --- short transactions on the loop's connection (Session.transaction(short=True)) ------------


@pytest.fixture
async def sqlite_database(database_url, dialect):
    if dialect != "sqlite":
        pytest.skip("SQLite's loop-thread connection")
    from modula.db.migrations import migrate
    from test_database_pool import connected

    async with connected(database_url) as database:
        async with database.session() as session:
            await migrate(session)
        yield database


async def _slugs(database) -> list[str]:
    async with database.session() as session:
        return [row[0] for row in await session.fetch_native("SELECT slug FROM routes ORDER BY slug", [])]


async def test_a_short_transaction_is_seen_by_no_other_reader_before_it_commits(sqlite_database):
    from test_database_pool import add_row

    database, inline = sqlite_database, sqlite_database.inline
    async with database.session() as writer:
        async with writer.transaction(short=True):
            await add_row(writer, "pending")
            assert inline.owner is writer
            moved = inline.moved
            assert await _slugs(database) == []  # another session: on a thread, before the commit
            assert inline.moved == moved + 1
        assert inline.owner is None
    assert await _slugs(database) == ["pending"]


async def test_a_short_transaction_that_fails_leaves_nothing_and_frees_the_connection(sqlite_database):
    from test_database_pool import add_row

    database, inline = sqlite_database, sqlite_database.inline
    async with database.session() as writer:
        with pytest.raises(RuntimeError):
            async with writer.transaction(short=True):
                await add_row(writer, "doomed")
                raise RuntimeError("a check after the insert")
        assert inline.owner is None and not inline.connection.in_transaction
        async with writer.transaction(short=True):  # the write lock is free again
            await add_row(writer, "next")
    assert await _slugs(database) == ["next"]


async def test_a_short_transaction_that_meets_another_writer_runs_on_a_thread(sqlite_database):
    from test_database_pool import add_row

    database, inline = sqlite_database, sqlite_database.inline
    other = sqlite3.connect(database.url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction, say
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        before = inline.statements
        async with database.session() as writer, writer.transaction(short=True):
            assert inline.owner is None  # the loop's connection was not taken: the file was locked
            await add_row(writer, "after the other writer")
        assert inline.statements == before
    finally:
        release.join()
        other.close()
    assert await _slugs(database) == ["after the other writer"]
