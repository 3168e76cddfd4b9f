"""Replicas that need nothing but the database: real `modula serve` processes on one database, one
with a plugins folder and two without, serve the same SDL at every generation through install,
reload and remove; replicas started at the same instant on a fresh database all come up with
every bundled plugin."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from modula.auth.tokens import create_token
from modula.auth.users import create_user
from modula_testing import create_test_database, drop_test_database, migrated_session
from serve_processes import NO_DATABASE_ENV, Served, launch, stop, wait_for, wait_ready
from test_plugins import write_plugin

POSTGRES_URL = os.environ.get("MODULA_TEST_POSTGRES_URL")
BUNDLED = Path(__file__).resolve().parents[1] / "plugins"
# PostgreSQL replicas follow by LISTEN/NOTIFY alone here (the poll, their fallback, waits a
# minute); SQLite ones by the poll, their only mechanism.
FOLLOW = {"postgresql": {"MODULA_FOLLOW_INTERVAL": "60"}, "sqlite": {"MODULA_FOLLOW_INTERVAL": "0.05"}}

NOTES = """
plugin.define_table({name = "notes_items", fields = {
    {name = "item_id", type = "integer", primary_key = true},
    {name = "title", type = "text", not_null = true},
}})
plugin.query{name = "notesCount", returns = "Int!",
             handler = function(args, ctx) return #query("SELECT item_id FROM notes_items") end}
"""
GREETER = "plugin.query{{name = 'greeting', returns = 'String', handler = function() return '{word}' end}}\n"


def modula(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120, env={**os.environ, **NO_DATABASE_ENV, "DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    return result


def admin_token(database_url: str) -> str:
    """A real API token of a new administrator, made in the database before any replica starts."""
    async def make() -> str:
        async with migrated_session(database_url) as session:
            user = await create_user(session, username="operator", email="operator@example.com", password=None,
                                     roles=["admin"])
            secret, _ = await create_token(session, user["id"], name="replicas")
            return secret

    return asyncio.run(make())


def moved_on(replicas: list[Served], since: int, check, what: str) -> None:
    """Wait until every replica serves a generation after `since` (cheap: /health), then until they
    agree on one generation and its SDL, which passes `check`."""
    wait_for(lambda: all(replica.generation() > since for replica in replicas), what)
    wait_for(lambda: converged(replicas, check), what)


def converged(replicas: list[Served], check) -> bool:
    """Every replica at one generation, serving one SDL that passes `check`."""
    generations = {replica.generation() for replica in replicas}
    if len(generations) != 1:
        return False
    sdls = {replica.sdl() for replica in replicas}
    return len(sdls) == 1 and check(sdls.pop()) and {replica.generation() for replica in replicas} == generations


def test_replicas_without_a_plugins_folder_serve_the_same_sdl_through_install_reload_and_remove(database_url, dialect,
                                                                                                tmp_path):
    folder = tmp_path / "a" / "plugins"
    write_plugin(folder, "notes", NOTES)
    empty = [tmp_path / "b" / "plugins", tmp_path / "c" / "plugins"]
    for path in empty:
        path.mkdir(parents=True)
    token = admin_token(database_url)
    env = {"DATABASE_URL": database_url, **FOLLOW[dialect]}
    first = wait_ready(launch(tmp_path, "--plugins-dir", str(folder), env=env))
    others = [launch(tmp_path, "--plugins-dir", str(path), env=env) for path in empty]
    replicas = [first, *map(wait_ready, others)]
    try:
        assert converged(replicas, lambda sdl: "notesCount: Int" in sdl)
        inserted = others[0].post('mutation { insertNotesItem(object: {title: "from b"}) { itemId } }', token=token)
        assert "errors" not in inserted, inserted

        write_plugin(tmp_path / "src", "greeter", GREETER.format(word="hello"))
        since = first.generation()
        modula("plugins", "install", str(tmp_path / "src" / "greeter"), "--plugins-dir", str(folder),
               cwd=tmp_path, database_url=database_url)
        moved_on(replicas, since, lambda sdl: "greeting: String" in sdl, "the install did not reach every replica")
        assert [r.post("{ greeting notesCount }", token=token)["data"] for r in replicas] == [{"greeting": "hello", "notesCount": 1}] * 3

        (folder / "greeter" / "init.lua").write_text(GREETER.format(word="reloaded"))
        since = first.generation()
        reloaded = first.post('mutation { reloadPlugin(name: "greeter") { schemaGeneration } }', token=token)
        assert "errors" not in reloaded, reloaded
        moved_on(replicas, since, lambda sdl: "greeting" in sdl, "the reload did not reach every replica")
        assert [r.post("{ greeting }", token=token)["data"] for r in replicas] == [{"greeting": "reloaded"}] * 3

        since = first.generation()
        modula("plugins", "remove", "notes", "--plugins-dir", str(folder), cwd=tmp_path, database_url=database_url)
        moved_on(replicas, since, lambda sdl: "notes" not in sdl.lower() and "greeting" in sdl,
                 "the removal did not reach every replica")
        for replica in replicas:
            refused = replica.post('mutation { insertNotesItem(object: {title: "after removal"}) { itemId } }', token=token)
            assert "insertNotesItem" in refused["errors"][0]["message"]

        robot = first.post('mutation { createApiToken(name: "robot") { token id } }', token=token)["data"]["createApiToken"]
        secret, token_id = robot["token"], robot["id"]
        wait_for(lambda: all(r.post("{ me { username } }", token=secret).get("data") for r in others),
                 "the new token did not reach every replica")
        first.post("mutation($id: Int!) { revokeApiToken(id: $id) }", {"id": token_id}, token=token)
        wait_for(lambda: all(r.get_status("/graphql", secret) == 401 for r in others),
                 "a replica still accepts the revoked token")
    finally:
        outputs = [stop(replica) for replica in replicas]
    assert all("Traceback" not in out for out in outputs), outputs
    listed = modula("plugins", "list", cwd=tmp_path, database_url=database_url).stdout
    assert "notes" not in listed
    assert f"greeter          1.0.0      enabled    sha256:" in listed and f"from {(folder / 'greeter').resolve()}" in listed
    exported = tmp_path / "exported"
    modula("plugins", "export", "greeter", str(exported), cwd=tmp_path, database_url=database_url)
    assert (exported / "init.lua").read_text() == GREETER.format(word="reloaded")
    assert json.loads((exported / "plugin.json").read_text())["name"] == "greeter"


@pytest.fixture
def fresh_database(dialect, tmp_path, request):
    """`fresh(migrated)` makes a new database without plugins and returns its URL: empty, or a copy
    of the migrated template (a fresh PostgreSQL database costs seconds of migrations on this
    machine). All are dropped after the test."""
    made: list[str] = []

    def fresh(migrated: bool) -> str:
        if dialect == "sqlite":
            path = tmp_path / f"fresh-{uuid.uuid4().hex[:8]}.db"
            if migrated:
                shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
            return f"sqlite:///{path}"
        name = f"modula_test_{uuid.uuid4().hex[:12]}"
        made.append(name)
        template = request.getfixturevalue("migrated_postgres") if migrated else None
        return asyncio.run(create_test_database(POSTGRES_URL, name, template=template))

    yield fresh
    for name in made:
        asyncio.run(drop_test_database(POSTGRES_URL, name))


def test_three_replicas_started_at_once_on_a_fresh_database_all_serve_every_bundled_plugin(dialect, fresh_database, tmp_path):
    bundled = sorted(p.name for p in BUNDLED.iterdir() if (p / "plugin.json").is_file())
    replicas = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("replica_startup.py"))], cwd=tmp_path,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    rounds = []
    try:
        # Ten rounds on PostgreSQL, where the race was; three on SQLite, where BEGIN IMMEDIATE is the lock.
        for round in range(10 if dialect == "postgresql" else 3):
            url = fresh_database(migrated=round > 0)  # the first also races the migrations
            for replica in replicas:  # the same database to all three at once
                replica.stdin.write(url + "\n")
                replica.stdin.flush()
            rounds.append([json.loads(replica.stdout.readline()) for replica in replicas])
    finally:
        for replica in replicas:
            replica.stdin.close()
            replica.wait(timeout=30)
    for started in rounds:
        assert [s.get("error") for s in started] == [None] * 3, started
        assert [(sorted(s["plugins"]), s["failures"]) for s in started] == [(bundled, {})] * 3
        assert len({(s["generation"], s["sdl"]) for s in started}) == 1, started
