"""The `modula` command as a user runs it: migrate, schema export, and serve on a fresh SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SNAPSHOT = Path(__file__).resolve().parents[1] / "graphql" / "schema.graphql"


def _modula(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schema_export_prints_the_sdl(tmp_path):
    result = _modula("schema", "export", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SNAPSHOT.read_text()


def test_migrate_creates_the_default_sqlite_file_in_the_working_directory(tmp_path):
    env = {"DATABASE_URL": "", "MODULA_DATABASE_URL": ""}
    result = _modula("migrate", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    from modula.db.migrations import pending_files

    assert f"applied {len(pending_files('sqlite'))} migration(s)" in result.stdout
    assert (tmp_path / "modula.db").exists()
    again = _modula("migrate", cwd=tmp_path, env=env)
    assert "up to date" in again.stdout


def test_bad_database_url_is_one_clear_line(tmp_path):
    result = _modula("migrate", "--database-url", "mysql://nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("modula: error: unsupported database URL scheme")
    assert "Traceback" not in result.stderr


def test_serve_starts_on_a_fresh_sqlite_file_and_answers(tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": "", "MODULA_DATABASE_URL": ""}
    server = subprocess.Popen([sys.executable, "-m", "modula.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ routes { id } }"}, timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "server did not start within 30 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["data"] == {"routes": []}
        assert (tmp_path / "modula.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)
