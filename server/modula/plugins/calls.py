"""What a running Lua handler may ask of the server: confined SQL, inserts, transactions, HTTP, logs.

One `PluginCall` serves one handler run. Its SQL goes through the database's confinement for
that plugin (an authorizer on SQLite, the plugin's own login role on PostgreSQL), so a plugin
reaches only its own tables and the core tables its manifest may read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from modula.db.introspection import TableSpec
from modula.plugins.errors import PluginError

MAX_HTTP_TIMEOUT = 30.0
MAX_HTTP_BODY = 1_000_000
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class PluginCall:
    """Implements `modula.lua.host.Host` for one handler run of one plugin."""

    def __init__(self, plugin, sql, *, http_client: httpx.AsyncClient | None = None) -> None:
        self.plugin = plugin  # LoadedPlugin
        self.sql = sql  # the confined SQL runner for this call
        self._http = http_client
        self._tx_open = False
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
        quoted = ", ".join(_quote(name) for name in names)
        marks = ", ".join("?" for _ in names)
        sql = (f"INSERT INTO {_quote(table)} ({quoted}) VALUES ({marks}) RETURNING *" if names
               else f"INSERT INTO {_quote(table)} DEFAULT VALUES RETURNING *")
        params = [_to_column(spec.column(name).type, values[name]) for name in names]
        rows = await self.sql.query(sql, params)
        return rows[0]

    async def begin(self) -> int:
        if self._tx_open:
            raise PluginError(self.plugin.name, "a transaction is already open: commit or roll it back first")
        await self.sql.begin()
        self._tx_open = True
        return 1

    async def commit(self, tx: int) -> None:
        self._require_tx()
        self._tx_open = False
        await self.sql.commit()

    async def rollback(self, tx: int) -> None:
        self._require_tx()
        self._tx_open = False
        await self.sql.rollback()

    def _require_tx(self) -> None:
        if not self._tx_open:
            raise PluginError(self.plugin.name, "no transaction is open")

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
        if not _host_allowed(parts.hostname.lower(), self.plugin.manifest.http_hosts):
            raise PluginError(self.plugin.name, f"http.request: host {parts.hostname} is not listed in plugin.json permissions.http")
        if not all(isinstance(k, str) and _HEADER_NAME.match(k) and isinstance(v, str) for k, v in (headers or {}).items()):
            raise PluginError(self.plugin.name, "http.request: headers must be a table of string names and values")
        limit = min(max(float(timeout or 10.0), 0.1), MAX_HTTP_TIMEOUT)
        client = self._http or httpx.AsyncClient()
        try:
            response = await client.request(method.upper(), url, headers=headers or {}, content=body,
                                            timeout=limit, follow_redirects=False)
        except httpx.TimeoutException:
            raise PluginError(self.plugin.name, f"http.request to {parts.hostname} timed out after {limit:g} s") from None
        except httpx.HTTPError as exc:
            raise PluginError(self.plugin.name, f"http.request to {parts.hostname} failed: {type(exc).__name__}") from None
        finally:
            if self._http is None:
                await client.aclose()
        return {"status": response.status_code, "headers": dict(response.headers),
                "body": response.text[:MAX_HTTP_BODY]}

    def log(self, level: str, message: str) -> None:
        getattr(self._log, {"warn": "warning"}.get(level, level), self._log.info)("%s", message)


def _quote(identifier: str) -> str:
    """Identifiers here come from introspection; quoting keeps them identifiers whatever they hold."""
    return '"' + identifier.replace('"', '""') + '"'


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for pattern in allowed:
        pattern = pattern.split(":")[0]
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


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
