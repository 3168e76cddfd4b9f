"""Test fixtures: a fresh database per test on SQLite and PostgreSQL, and an in-process GraphQL client.

PostgreSQL tests run when MODULA_TEST_POSTGRES_URL points at a server (each test gets its own
database, dropped afterwards). Without it they are skipped on a developer machine and fail in CI.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from modula_testing import GraphQLClient, create_test_database, drop_test_database, running_app, token_client

POSTGRES_URL = os.environ.get("MODULA_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request) -> str:
    if request.param == "postgresql" and not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("MODULA_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("set MODULA_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test to run PostgreSQL tests")
    return request.param


@pytest.fixture
async def database_url(dialect: str, tmp_path: Path):
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'modula.db'}"
        return
    name = f"modula_test_{uuid.uuid4().hex[:12]}"
    url = await create_test_database(POSTGRES_URL, name)
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
