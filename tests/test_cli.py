"""The `modula` command as a user runs it: --help on every command, errors as one line plus the
fix (the traceback only with --debug), progress on stderr, migrate, schema export and serve."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

SNAPSHOT = Path(__file__).resolve().parents[1] / "graphql" / "schema.graphql"
SHOP = Path(__file__).resolve().parents[1] / "plugins" / "shop"

# Commands run in a fresh folder on its ./modula.db unless a test gives --database-url.
NO_DATABASE_ENV = {"DATABASE_URL": "", "MODULA_DATABASE_URL": "", "MODULA_PLUGINS_DIR": ""}


def _modula(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, input=stdin, env={**os.environ, **NO_DATABASE_ENV, **(env or {})})


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
    assert "applying migration 0001_core_tables ..." in result.stderr.splitlines()  # progress, not the result
    assert (tmp_path / "modula.db").exists()
    again = _modula("migrate", cwd=tmp_path, env=env)
    assert "up to date" in again.stdout


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


# --- help --------------------------------------------------------------------------------------

def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the parser, found by walking its subparsers."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _command_paths(sub, (*path, name))
    return found


def _help_description(help_text: str) -> str:
    """The text between the usage block and the first argument section."""
    after_usage = help_text.split("\n\n", 1)[1]
    return after_usage.split("positional arguments:")[0].split("options:")[0].strip()


def test_every_command_and_subcommand_has_help_with_a_description(tmp_path):
    from modula.cli import build_parser

    paths = _command_paths(build_parser())
    assert ("content", "import") in paths and ("plugins", "install") in paths and len(paths) > 15
    for path in paths:
        result = _modula(*path, "--help", cwd=tmp_path)
        assert result.returncode == 0, (path, result.stderr)
        assert result.stdout.startswith(f"usage: modula {' '.join(path)}".rstrip()), path
        assert _help_description(result.stdout), f"`modula {' '.join(path)} --help` has no description"


def test_every_argument_has_a_help_text():
    from modula.cli import build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    for parser in parsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog}: {action.dest} has no help text"


# --- errors: one line plus the fix -------------------------------------------------------------

def _assert_clear_error(result: subprocess.CompletedProcess, message: str, fix: str) -> None:
    """Exit 1; stderr ends with `modula: error: ...` and `  fix: ...`, each a single line; no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    *_, error, fix_line = result.stderr.rstrip("\n").split("\n")
    assert error.startswith("modula: error: ") and message in error, result.stderr
    assert fix_line.startswith("  fix: ") and fix in fix_line, result.stderr


def _postgres_url() -> str:
    url = os.environ.get("MODULA_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("MODULA_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("set MODULA_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test to run PostgreSQL tests")
    return url


def _plugin(folder: Path, name: str, manifest: dict | None, init_lua: str | None) -> Path:
    plugin = folder / name
    plugin.mkdir(parents=True)
    if manifest is not None:
        (plugin / "plugin.json").write_text(json.dumps(manifest))
    if init_lua is not None:
        (plugin / "init.lua").write_text(init_lua)
    return plugin


def test_unsupported_database_url_scheme(tmp_path):
    result = _modula("migrate", "--database-url", "mysql://root@localhost/cms", cwd=tmp_path)
    _assert_clear_error(result, "unsupported database URL scheme 'mysql'", "sqlite:///path/to/modula.db or postgresql://")


def test_text_that_is_no_database_url(tmp_path):
    result = _modula("users", "list", "--database-url", "modula.db", cwd=tmp_path)
    _assert_clear_error(result, "it is not a database URL: 'modula.db'", "sqlite:///path/to/modula.db")


def test_sqlite_file_in_a_missing_folder(tmp_path):
    result = _modula("migrate", "--database-url", f"sqlite:///{tmp_path}/no/such/folder/modula.db", cwd=tmp_path)
    _assert_clear_error(result, "cannot open the SQLite database", f"create the folder {tmp_path}/no/such/folder")


def test_a_file_that_is_not_an_sqlite_database(tmp_path):
    (tmp_path / "notes.txt").write_text("these are my notes, not a database\n" * 100)
    result = _modula("users", "list", "--database-url", f"sqlite:///{tmp_path}/notes.txt", cwd=tmp_path)
    _assert_clear_error(result, "notes.txt is not an SQLite database", "give the path of a Modula database")


def test_postgresql_on_a_port_where_nothing_listens(tmp_path):
    server = make_url(_postgres_url())
    port = _free_port()
    url = server.set(port=port).render_as_string(hide_password=False)
    result = _modula("migrate", "--database-url", url, cwd=tmp_path)
    _assert_clear_error(result, f"cannot reach PostgreSQL at {server.host}:{port}: connection refused",
                        "start PostgreSQL there, or correct the host and port")


def test_postgresql_database_that_does_not_exist(tmp_path):
    url = make_url(_postgres_url()).set(database="modula_no_such_database").render_as_string(hide_password=False)
    result = _modula("migrate", "--database-url", url, cwd=tmp_path)
    _assert_clear_error(result, "has no database 'modula_no_such_database'", "createdb")


def test_postgresql_user_that_does_not_exist_and_the_password_is_not_shown(tmp_path):
    url = make_url(_postgres_url()).set(username="modula_no_such_user", password="s3cret-pw")
    result = _modula("migrate", "--database-url", url.render_as_string(hide_password=False), cwd=tmp_path)
    _assert_clear_error(result, "refused the login of 'modula_no_such_user'", "correct the user name and password")
    assert "s3cret-pw" not in result.stderr


def test_a_wrong_postgresql_password_is_explained_as_a_refused_login():
    # The test server trusts every local login, so a wrong password cannot be provoked there;
    # this is the error asyncpg raises for one.
    import asyncpg

    from modula.cli_errors import database_problem

    refused = asyncpg.InvalidPasswordError('password authentication failed for user "cms"')
    problem = database_problem(refused, "postgresql://cms:wrong@db.example:5432/cms")
    assert problem.message == ("PostgreSQL at db.example:5432 refused the login of 'cms': "
                               'password authentication failed for user "cms"')
    assert problem.fix.startswith("correct the user name and password in the database URL")


def test_with_debug_after_the_subcommand_the_traceback_is_shown_too(tmp_path):
    result = _modula("migrate", "--database-url", "mysql://root@localhost/cms", "--debug", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "modula: error: unsupported database URL scheme 'mysql'" in result.stderr
    assert "  fix: " in result.stderr


def test_with_debug_before_the_subcommand_the_traceback_is_shown_too(tmp_path):
    result = _modula("--debug", "plugins", "install", "missing", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "modula: error: plugin folder missing" in result.stderr


def test_install_of_a_plugin_folder_that_does_not_exist(tmp_path):
    result = _modula("plugins", "install", "shopp", cwd=tmp_path)
    _assert_clear_error(result, "plugin folder shopp does not exist", "modula plugins new NAME")


def test_install_of_a_folder_without_plugin_json(tmp_path):
    _plugin(tmp_path, "notes", None, "")
    result = _modula("plugins", "install", "notes", cwd=tmp_path)
    _assert_clear_error(result, "notes has no plugin.json", "give the folder that holds plugin.json and init.lua")


def test_install_of_a_plugin_with_a_bad_manifest(tmp_path):
    _plugin(tmp_path, "notes", {"name": "notes", "version": ""}, "")
    result = _modula("plugins", "install", "notes", cwd=tmp_path)
    _assert_clear_error(result, "notes/plugin.json: plugin notes: version must be a non-empty string",
                        "correct plugin.json; `modula plugins check FOLDER`")


def test_install_of_a_plugin_with_a_lua_syntax_error_names_file_and_line_and_keeps_the_old_folder(tmp_path):
    good = _plugin(tmp_path / "v1", "notes", {"name": "notes", "version": "1.0.0"}, "-- nothing yet\n")
    assert _modula("plugins", "install", str(good), cwd=tmp_path).returncode == 0
    _plugin(tmp_path / "v2", "notes", {"name": "notes", "version": "2.0.0"}, "local x = 1\nlocal y = = 2\n")
    result = _modula("plugins", "install", "v2/notes", cwd=tmp_path)
    _assert_clear_error(result, "v2/notes/init.lua:2: plugin notes: unexpected symbol near '='",
                        "correct init.lua at that line")
    assert (tmp_path / "plugins" / "notes" / "init.lua").read_text() == "-- nothing yet\n"  # v1 is still installed


def test_install_of_a_plugin_whose_graphql_does_not_build_keeps_folder_and_registry_in_step(tmp_path):
    _plugin(tmp_path / "src", "notes", {"name": "notes", "version": "1.0.0"},
            'plugin.query{ name = "notesThing", returns = "Nope!", handler = function() end }\n')
    result = _modula("plugins", "install", "src/notes", cwd=tmp_path)
    _assert_clear_error(result, "notesThing: unknown output type Nope (its tables are in place)",
                        "correct init.lua in the plugins directory, then `modula plugins reload notes`")
    assert (tmp_path / "plugins" / "notes" / "init.lua").is_file()  # installed, so its folder is where serve looks
    listed = _modula("plugins", "list", cwd=tmp_path)
    assert "notes            1.0.0      enabled" in listed.stdout, listed.stdout


def test_install_reports_each_step_on_stderr_and_the_result_on_stdout(tmp_path):
    result = _modula("plugins", "install", str(SHOP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("installed shop 1.0.0: tables shop_categories")
    steps = [line.split(":")[0] for line in result.stderr.splitlines() if not line.startswith("applying migration")]
    assert steps == ["manifest read", "init.lua loaded", "tables", "introspected", "schema checked"]
    assert "tables: 5 created, 0 upgraded" in result.stderr
    again = _modula("plugins", "reload", "shop", cwd=tmp_path)
    assert again.returncode == 0 and "tables: already up to date" in again.stderr


def test_reload_and_remove_of_a_plugin_that_is_not_installed(tmp_path):
    for action in ("reload", "remove"):
        result = _modula("plugins", action, "shop", cwd=tmp_path)
        _assert_clear_error(result, "no plugin named 'shop' is installed", "`modula plugins list` shows the installed plugins")


def test_users_create_with_a_taken_username(tmp_path):
    first = _modula("users", "create", "--username", "ada", "--email", "ada@example.com", cwd=tmp_path, stdin="a long secret\n")
    assert first.returncode == 0, first.stderr
    result = _modula("users", "create", "--username", "ada", "--email", "other@example.com", cwd=tmp_path,
                     stdin="a long secret\n")
    _assert_clear_error(result, "a user with the username 'ada' already exists", "choose another --username")


def test_users_create_with_a_role_that_does_not_exist(tmp_path):
    result = _modula("users", "create", "--username", "ada", "--email", "ada@example.com", "--role", "boss",
                     cwd=tmp_path, stdin="a long secret\n")
    _assert_clear_error(result, "--role: no role named 'boss'", "give roles that exist")


def test_serve_on_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _modula("serve", "--port", str(port), cwd=tmp_path)
    _assert_clear_error(result, f"port {port} on 127.0.0.1 is already in use", "choose another port with --port")
    assert not (tmp_path / "modula.db").exists()  # refused before touching the database


def test_serve_with_an_unreachable_database_stops_with_one_line(tmp_path):
    result = _modula("serve", "--port", str(_free_port()), "--database-url", f"sqlite:///{tmp_path}/no/folder/x.db",
                     cwd=tmp_path)
    _assert_clear_error(result, "cannot open the SQLite database", "create the folder")


def test_import_of_a_file_that_does_not_exist(tmp_path):
    result = _modula("content", "import", "pages.jsonl", cwd=tmp_path)
    _assert_clear_error(result, "import file pages.jsonl does not exist", "give the path of a JSON Lines file")


def test_an_unexpected_error_says_how_to_see_the_traceback(tmp_path):
    from modula.cli_errors import explain

    error = explain(KeyError("routes"))
    assert error.message == "'routes'" and "--debug" in error.fix
