"""What a running Lua handler may ask of the server: confined SQL, inserts, transactions, HTTP, logs.

One `PluginCall` serves one handler run. Its SQL goes through the database's confinement for
that plugin (an authorizer on SQLite, the plugin's own login role on PostgreSQL), so a plugin
reaches only its own tables and the core tables its manifest may read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from modula.db import outbox
from modula.db.introspection import TableSpec
from modula.db.names import quote_ident
from modula.lua.host_requests import host_allowed
from modula.plugins.errors import PluginError

MAX_HTTP_TIMEOUT = 30.0
MAX_HTTP_BODY = 1_000_000


class PluginCall:
    """Implements `modula.lua.host.Host` for one handler run of one plugin."""

    def __init__(self, plugin, sql, *, http_client: httpx.AsyncClient) -> None:
        self.plugin = plugin  # LoadedPlugin
        self.sql = sql  # the confined SQL runner for this call
        self._http = http_client
        self._log = logging.getLogger(f"modula.plugin.{plugin.name}")

    # SQL -------------------------------------------------------------------------------
    async def query(self, sql: str, params, tx: int | None) -> list[dict]:
        return await self.sql.query(sql, params)

    async def query_one(self, sql: str, params, tx: int | None) -> dict | None:
        rows = await self.sql.query(sql, params)
        return rows[0] if rows else None

    async def exec(self, sql: str, params, tx: int | None) -> dict:
        return await self.sql.exec(sql, params)

    async def insert(self, table: str, values: dict, tx: int | None) -> dict:
        spec = self._own_table(table)
        unknown = sorted(set(values) - {c.name for c in spec.columns})
        if unknown:
            raise PluginError(self.plugin.name, f"insert into {table}: unknown column(s) {', '.join(unknown)}")
        names = list(values)
        quoted = ", ".join(quote_ident(name) for name in names)
        marks = ", ".join("?" for _ in names)
        sql = (f"INSERT INTO {quote_ident(table)} ({quoted}) VALUES ({marks}) RETURNING *" if names
               else f"INSERT INTO {quote_ident(table)} DEFAULT VALUES RETURNING *")
        params = [_to_column(spec.column(name).type, values[name]) for name in names]
        rows = await self.sql.query(sql, params)
        return rows[0]

    # One transaction at a time: the confined runner keeps that state and refuses a second one.
    async def begin(self) -> int:
        await self.sql.begin()
        return 1

    async def commit(self, tx: int) -> None:
        await self.sql.commit()

    async def rollback(self, tx: int) -> None:
        await self.sql.rollback()

    def _own_table(self, table: str) -> TableSpec:
        spec = self.plugin.tables.get(table)
        if spec is None:
            raise PluginError(self.plugin.name, f"insert: {table!r} is not one of this plugin's tables")
        return spec

    # HTTP ------------------------------------------------------------------------------
    async def http_request(self, method: str, url: str, headers: dict, body: str | None, timeout: float) -> dict:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PluginError(self.plugin.name, f"http.request: {url!r} is not an http(s) URL")
        if not host_allowed(url, self.plugin.manifest.http_hosts):
            raise PluginError(self.plugin.name, f"http.request: host {parts.hostname} is not listed in plugin.json permissions.http")
        limit = min(max(float(timeout or 10.0), 0.1), MAX_HTTP_TIMEOUT)
        try:
            response = await self._http.request(method.upper(), url, headers=headers or {}, content=body,
                                            timeout=limit, follow_redirects=False)
        except httpx.TimeoutException:
            raise PluginError(self.plugin.name, f"http.request to {parts.hostname} timed out after {limit:g} s") from None
        except httpx.HTTPError as exc:
            raise PluginError(self.plugin.name, f"http.request to {parts.hostname} failed: {type(exc).__name__}") from None
        return {"status": response.status_code, "headers": dict(response.headers),
                "body": response.text[:MAX_HTTP_BODY]}

    async def http_enqueue(self, method: str, url: str, headers: dict, body: str | None, timeout: float) -> int:
        """Queue the request in the outbox, in this call's transaction when one is open (the
        caller's, or one the plugin began); the outbox worker sends it after that commits."""
        parts = urlsplit(url)
        if not host_allowed(url, self.plugin.manifest.http_hosts):
            raise PluginError(self.plugin.name, f"http.enqueue: host {parts.hostname} is not listed in plugin.json permissions.http")
        request = {"method": method.upper(), "url": url, "headers": headers or {}, "body": body,
                   "timeout": min(max(float(timeout or 10.0), 0.1), MAX_HTTP_TIMEOUT)}
        return await outbox.enqueue(self.sql.session, self.plugin.name, "http", request)

    def log(self, level: str, message: str) -> None:
        getattr(self._log, {"warn": "warning"}.get(level, level), self._log.info)("%s", message)


def _to_column(column_type: str, value: Any) -> Any:
    """Lua values arrive as plain Python; give each column type what the driver expects."""
    if value is None:
        return None
    if column_type == "json":
        return json.dumps(value)
    if column_type == "datetime" and isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if column_type == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if column_type == "boolean" and isinstance(value, int):
        return bool(value)
    return value
