"""Test fixtures: a fresh database per test on SQLite and PostgreSQL, and an in-process GraphQL client.

PostgreSQL tests run when MODULA_TEST_POSTGRES_URL points at a server (each test gets its own
database, dropped afterwards). Without it they are skipped on a developer machine and fail in CI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from modula_testing import GraphQLClient, create_test_database, drop_test_database, migrated_session, running_app, token_client

POSTGRES_URL = os.environ.get("MODULA_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes():
    """In-process tests hash with argon2id at its lowest cost (about 5 ms instead of 100-170 ms per
    hash or check; every signed-in client makes two). Servers the tests start as processes, and
    every real deployment, keep argon2-cffi's defaults (modula/auth/passwords.py)."""
    from argon2 import PasswordHasher

    from modula.auth import passwords
    served, passwords.HASHER = passwords.HASHER, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    passwords._dummy_hash.cache_clear()
    yield
    passwords.HASHER = served
    passwords._dummy_hash.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request) -> str:
    if request.param == "postgresql" and not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("MODULA_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("set MODULA_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test to run PostgreSQL tests")
    return request.param


def _run(coroutine):
    """Run a coroutine to its end from a session fixture, which may be set up while a test's event
    loop is running (hence its own thread and loop)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


async def _migrate(url: str) -> None:
    async with migrated_session(url):
        pass


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A migrated SQLite file that each test's database starts as a copy of: migrating anew for
    every test cost about 0.1 s each."""
    path = tmp_path_factory.mktemp("template") / "modula.db"
    _run(_migrate(f"sqlite:///{path}"))
    assert not path.with_name("modula.db-wal").exists(), "the template's WAL was not checkpointed on close"
    return path


@pytest.fixture(scope="session")
def migrated_postgres():
    """The name of a migrated PostgreSQL database that each test's database is created from
    (CREATE DATABASE ... TEMPLATE): about 0.2 s less per test than migrating an empty one."""
    name = f"modula_template_{uuid.uuid4().hex[:12]}"
    url = _run(create_test_database(POSTGRES_URL, name))
    try:
        _run(_migrate(url))
        yield name
    finally:
        _run(drop_test_database(POSTGRES_URL, name))


class PostgresCopies:
    """Copies of the migrated template, made one test ahead and dropped behind, in a thread of
    their own: CREATE DATABASE takes about 0.2 s and DROP 0.1 s, mostly waiting on the disk, which
    then overlaps the tests' own work instead of adding to it (about 5 of the suite's minutes)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-copies")  # one at a time, in order
        self.ahead: list = []

    def _create(self) -> Future:
        name = f"modula_test_{uuid.uuid4().hex[:12]}"
        return self.thread.submit(asyncio.run, create_test_database(POSTGRES_URL, name, template=self.template))

    def take(self) -> str:
        """The URL of a database of the caller's own (made while the test before it ran)."""
        ready = self.ahead.pop(0) if self.ahead else self._create()
        self.ahead.append(self._create())
        return ready.result()

    def give_back(self, url: str) -> None:
        """Drop the database once the thread is free (the next copy is already made)."""
        self.thread.submit(asyncio.run, drop_test_database(POSTGRES_URL, make_url(url).database))

    def close(self) -> None:
        for ready in self.ahead:
            self.give_back(ready.result())
        self.thread.shutdown(wait=True)


@pytest.fixture(scope="session")
def postgres_copies(migrated_postgres):
    copies = PostgresCopies(migrated_postgres)
    yield copies
    copies.close()


@pytest.fixture
async def database_url(dialect: str, tmp_path: Path, request):
    """A database of the test's own, already migrated (a copy of a migrated template)."""
    if dialect == "sqlite":
        path = tmp_path / "modula.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite:///{path}"
        return
    copies = request.getfixturevalue("postgres_copies")
    url = copies.take()
    try:
        yield url
    finally:
        copies.give_back(url)


@pytest.fixture
async def app(database_url: str, tmp_path: Path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        yield app


@pytest.fixture
async def client(app) -> GraphQLClient:
    """An administrator's client (a real API token); tests of permissions make their own."""
    async with token_client(app, "admin", roles=["admin"]) as client:
        yield client


@pytest.fixture
async def anonymous(app) -> GraphQLClient:
    async with GraphQLClient.for_app(app) as client:
        yield client
