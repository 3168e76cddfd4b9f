"""The server log as an operator reads it: plugin lines (`log.*`, `print`) with the plugin, its level
and the request id; a request id echoed or made per request; plugin loads, reloads and unloads
logged as they happen; `--log-format json` one object per line, text the default."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modula.logs import JsonFormatter, RequestContext, TextFormatter, logging_config, request_id_from
from serve_processes import launch, stop, wait_ready
from test_plugins import write_plugin

CHATTY = """
plugin.define_table{name = "chatty_notes", fields = {{name = "note_id", type = "integer", primary_key = true}}}
plugin.query{name = "chattyHello", returns = "String", handler = function(args, ctx)
  log.info("hello", 1)
  log.warn("careful")
  log.error("bad")
  print("printed", true)
  return "hi"
end}
"""


def plugin_records(caplog, plugin: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == f"modula.plugin.{plugin}"]


def lifecycle(caplog, plugin: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "modula.plugins" and getattr(r, "plugin", None) == plugin
            and getattr(r, "version", None)]


async def test_plugin_log_lines_carry_plugin_level_and_the_request_id(app, client, tmp_path, caplog):
    write_plugin(tmp_path / "plugins", "chatty", CHATTY)
    await app.state.schemas.load_plugin("chatty")
    caplog.set_level(logging.INFO, logger="modula")
    response = await client.http.post("/graphql", json={"query": "{ chattyHello }"})
    assert response.json()["data"] == {"chattyHello": "hi"}
    request_id = response.headers["x-request-id"]
    records = plugin_records(caplog, "chatty")
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "hello 1"), ("WARNING", "careful"), ("ERROR", "bad"), ("INFO", "printed true")]
    assert {r.plugin for r in records} == {"chatty"}
    assert [r.plugin_level for r in records] == ["info", "warn", "error", "info"]
    assert {r.request_id for r in records} == {request_id}


async def test_what_init_lua_logs_while_loadplugin_loads_it_carries_that_request(app, client, tmp_path, caplog):
    write_plugin(tmp_path / "plugins", "chatty", 'log.warn("loading", 2)\n' + CHATTY)
    caplog.set_level(logging.INFO, logger="modula")
    response = await client.http.post("/graphql", json={"query": 'mutation { loadPlugin(name: "chatty") { loadedPlugins } }'})
    assert response.json()["data"] == {"loadPlugin": {"loadedPlugins": ["chatty"]}}
    [line] = plugin_records(caplog, "chatty")
    assert (line.levelname, line.getMessage(), line.plugin, line.plugin_level, line.request_id) == (
        "WARNING", "loading 2", "chatty", "warn", response.headers["x-request-id"])


async def test_a_request_id_is_echoed_when_plain_and_made_otherwise(app, client):
    echoed = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "abc-123.x"})
    assert echoed.headers["x-request-id"] == "abc-123.x"
    assert echoed.headers.get_list("x-request-id") == ["abc-123.x"]  # one header, not the endpoint's and the app's
    for unfit in ("has space", "x" * 129, "semi;colon"):
        made = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": unfit})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"]), made.headers
    first, second = [await client.http.get("/health") for _ in range(2)]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]  # every route gets one
    assert request_id_from("trace-42") == "trace-42" and request_id_from(None) != request_id_from(None)


async def test_plugin_loads_reloads_and_unloads_are_logged_with_name_and_version(app, client, database_url, tmp_path,
                                                                                  caplog):
    from modula_testing import running_app

    caplog.set_level(logging.INFO, logger="modula")
    folder = write_plugin(tmp_path / "plugins", "chatty", CHATTY)
    await app.state.schemas.load_plugin("chatty")
    assert lifecycle(caplog, "chatty")[-1].startswith("plugin chatty 1.0.0 installed from ")

    # another process on the same database loads it at start, from the registry
    caplog.clear()
    async with running_app(database_url, plugins_dir=tmp_path / "empty") as replica:
        assert "chatty" in replica.state.plugins.loaded
        assert [m for m in lifecycle(caplog, "chatty") if "from the registry" in m] == [
            f"plugin chatty 1.0.0 loaded from the registry (generation {replica.state.plugins.loaded['chatty'].installed_generation})"]

        caplog.clear()
        manifest = json.loads((folder / "plugin.json").read_text())
        (folder / "plugin.json").write_text(json.dumps({**manifest, "version": "1.1.0"}))
        await app.state.schemas.reload_plugin("chatty")
        assert lifecycle(caplog, "chatty")[-1].startswith("plugin chatty 1.1.0 installed over 1.0.0 (reloaded) from ")
        await replica.state.schemas.poll()
        assert lifecycle(caplog, "chatty")[-1].startswith("plugin chatty 1.1.0 reloaded (1.0.0 -> 1.1.0) from the registry")

        caplog.clear()
        await app.state.schemas.unload_plugin("chatty")
        assert lifecycle(caplog, "chatty") == ["plugin chatty 1.1.0 unloaded (disabled in the registry)"]
        await replica.state.schemas.poll()
        assert lifecycle(caplog, "chatty")[-1].startswith("plugin chatty 1.1.0 unloaded: the registry no longer has it")
        assert "chatty" not in replica.state.plugins.loaded


def _record(name: str, message: str, level: int = logging.INFO, **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestContext().filter(record)
    return record


def test_json_lines_carry_the_request_and_the_plugin_fields():
    request = json.loads(JsonFormatter().format(_record(
        "modula.request", "POST /graphql 200 3.2 ms", request_id="r1", operation="Shop", method="POST",
        path="/graphql", status=200, duration_ms=3.2)))
    assert request["level"] == "info" and request["logger"] == "modula.request"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", request["time"])
    assert {k: request[k] for k in ("request_id", "operation", "status", "duration_ms", "message")} == {
        "request_id": "r1", "operation": "Shop", "status": 200, "duration_ms": 3.2,
        "message": "POST /graphql 200 3.2 ms"}
    line = json.loads(JsonFormatter().format(_record("modula.plugin.shop", "hello", logging.WARNING, plugin="shop",
                                                     plugin_level="warn", request_id="r2")))
    assert (line["level"], line["plugin"], line["plugin_level"], line["request_id"]) == ("warning", "shop", "warn", "r2")
    bare = json.loads(JsonFormatter().format(_record("modula", "started")))
    assert set(bare) == {"time", "level", "logger", "message"}  # no empty fields


def test_text_is_the_default_and_names_the_request():
    from modula.config import Settings

    assert Settings().log_format == "text" and Settings.from_env({"MODULA_LOG_FORMAT": "JSON"}).log_format == "json"
    line = TextFormatter().format(_record("modula.plugin.shop", "hello", plugin="shop", request_id="r3"))
    assert line.endswith(" INFO modula.plugin.shop: hello [request r3]")
    assert logging_config("text")["formatters"]["modula"]["()"] == "modula.logs.TextFormatter"
    with pytest.raises(ValueError, match="not one of text, json"):
        logging_config("xml")


def _serve(tmp_path: Path, *args: str) -> tuple[list[str], str]:
    """Serve a chatty plugin on a new SQLite file, ask it one query, stop: (its log lines, the request id)."""
    import httpx

    write_plugin(tmp_path / "plugins", "chatty", CHATTY)
    database = f"sqlite:///{tmp_path / 'm.db'}"  # a new file: the server migrates it, and reports that too
    served = wait_ready(launch(tmp_path, "--database-url", database, "--plugins-dir", str(tmp_path / "plugins"), *args))
    try:
        created = subprocess.run([sys.executable, "-m", "modula.cli", "users", "create", "--username", "ada", "--email",
                                  "ada@example.com", "--admin", "--database-url", database], input="a long password 1\n",
                                 cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        with httpx.Client(base_url=served.base, timeout=10) as http:
            login = http.post("/graphql", json={"query": 'mutation { login(username: "ada", password: "a long password 1") '
                                                         "{ id } }"})
            assert login.json().get("data"), login.text
            response = http.post("/graphql", json={"query": "query Hello { chattyHello }"},
                                 headers={"X-Request-ID": "req-7"})
        assert response.json()["data"] == {"chattyHello": "hi"}, response.text
    finally:
        output = stop(served)
    return output.splitlines(), response.headers["x-request-id"]


def test_serve_log_format_json_is_one_object_per_line(tmp_path):
    lines, request_id = _serve(tmp_path, "--log-format", "json", "--access-log")
    assert request_id == "req-7"
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert [line for line in lines if line.strip() and not line.startswith("{")] == [
        next(line for line in lines if line.startswith("Modula serving GraphQL at"))]  # stdout's one result line
    assert {"logger": "modula.migrations", "message": "applying migration 0001_core_tables ..."}.items() <= entries[0].items()
    plugin = [e for e in entries if e["logger"] == "modula.plugin.chatty"]
    assert [(e["level"], e["message"], e["plugin"], e["request_id"]) for e in plugin] == [
        ("info", "hello 1", "chatty", "req-7"), ("warning", "careful", "chatty", "req-7"),
        ("error", "bad", "chatty", "req-7"), ("info", "printed true", "chatty", "req-7")]
    requests = [e for e in entries if e["logger"] == "modula.request" and e["path"] == "/graphql"]
    assert len(requests) == 2 and "operation" not in requests[0]  # the login: an anonymous operation
    request = requests[1]
    assert (request["request_id"], request["operation"], request["status"], request["method"]) == (
        "req-7", "Hello", 200, "POST")
    assert isinstance(request["duration_ms"], float)
    loaded = [e for e in entries if e["logger"] == "modula.plugins" and e.get("plugin") == "chatty"]
    assert [e["message"] for e in loaded][0] == "plugin chatty 1.0.0: create table chatty_notes"
    assert loaded[1]["version"] == "1.0.0" and loaded[1]["message"].startswith("plugin chatty 1.0.0 installed from ")
    assert loaded[1]["generation"] >= 1


def test_serve_logs_text_by_default(tmp_path):
    lines, _ = _serve(tmp_path, "--access-log")
    assert not any(line.startswith("{") for line in lines)
    assert any(re.search(r" WARNING modula\.plugin\.chatty: careful \[request req-7\]$", line) for line in lines), lines
    assert any(re.search(r" INFO modula\.request: POST /graphql 200 [\d.]+ ms Hello \[request req-7\]$", line)
               for line in lines), lines
    assert any(" INFO modula.plugins: plugin chatty 1.0.0 installed from " in line for line in lines), lines


def test_serve_refuses_an_unknown_log_format(tmp_path):
    result = subprocess.run([sys.executable, "-m", "modula.cli", "serve", "--port", "1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MODULA_LOG_FORMAT": "xml", "DATABASE_URL": ""})
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["modula: error: unknown log format 'xml'",
                                          "  fix: give --log-format (or MODULA_LOG_FORMAT) one of text, json"]
