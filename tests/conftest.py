"""Test fixtures: a fresh database per test on SQLite and PostgreSQL, and an in-process GraphQL client.

PostgreSQL tests run when MODULA_TEST_POSTGRES_URL points at a server (each test gets its own
database, dropped afterwards). Without it they are skipped on a developer machine and fail in CI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

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


@pytest.fixture
async def database_url(dialect: str, tmp_path: Path, request):
    """A database of the test's own, already migrated (a copy of a migrated template)."""
    if dialect == "sqlite":
        path = tmp_path / "modula.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite:///{path}"
        return
    name = f"modula_test_{uuid.uuid4().hex[:12]}"
    url = await create_test_database(POSTGRES_URL, name, template=request.getfixturevalue("migrated_postgres"))
    try:
        yield url
    finally:
        await drop_test_database(POSTGRES_URL, name)


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
