"""What a running Lua handler may ask of the server: confined SQL, inserts, transactions, HTTP, logs.

One `PluginCall` serves one handler run. Its SQL goes through the database's confinement for
that plugin (an authorizer on SQLite, the plugin's own login role on PostgreSQL), so a plugin
reaches only its own tables and the core tables its manifest may read.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from modula.db import column_values
from modula.db.crud import crud_for
from modula.db import outbox
from modula.db.introspection import TableSpec
from modula.db.names import quote_ident
from modula.logs import current_request_id
from modula.lua.host_requests import host_allowed
from modula.plugins import outbound_http
from modula.plugins.data import TableHooks, coerce_row
from modula.plugins.errors import PluginError

LUA_LEVELS = {"info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
MAX_HTTP_TIMEOUT = 30.0
MAX_HTTP_BODY = 1_000_000


class PluginCall:
    """Implements `modula.lua.host.Host` for one handler run of one plugin."""

    def __init__(self, plugin, sql, *, http_client: httpx.AsyncClient, hooks: TableHooks | None = None) -> None:
        self.plugin = plugin  # LoadedPlugin
        self.sql = sql  # the confined SQL runner for this call
        self._hooks = hooks  # run by `insert` as by the generated mutations
        self._http = http_client
        self._log = logging.getLogger(f"modula.plugin.{plugin.name}")
        # Made on the loop, read on the Lua thread (where the request's context variable is not set).
        self._request_id = current_request_id()

    # SQL -------------------------------------------------------------------------------
    async def query(self, sql: str, params, tx: int | None) -> list[dict]:
        rows = await self.sql.query(sql, params)
        if self.sql.session.dialect != "sqlite":
            return rows
        return [{name: column_values.for_lua_from_sqlite(value) for name, value in row.items()} for row in rows]

    async def query_one(self, sql: str, params, tx: int | None) -> dict | None:
        rows = await self.query(sql, params, tx)
        return rows[0] if rows else None

    async def exec(self, sql: str, params, tx: int | None) -> dict:
        return await self.sql.exec(sql, params)

    async def insert(self, table: str, values: dict, tx: int | None) -> dict:
        """One row through the table API: typed like the generated insert's, through the table's
        `before_insert` and `after_insert` hooks, returned as stored."""
        spec = self._own_table(table)
        unknown = sorted(set(values) - {c.name for c in spec.columns})
        if unknown:
            raise PluginError(self.plugin.name, f"insert into {table}: unknown column(s) {', '.join(unknown)}")
        row = coerce_row(spec, values, (table,))
        if self._hooks is not None:
            row = await self._hooks.before(spec, "before_insert", row, (table,))
        names = list(row)
        quoted = ", ".join(quote_ident(name) for name in names)
        marks = ", ".join("?" for _ in names)
        sql = (f"INSERT INTO {quote_ident(table)} ({quoted}) VALUES ({marks}) RETURNING *" if names
               else f"INSERT INTO {quote_ident(table)} DEFAULT VALUES RETURNING *")
        params = [column_values.for_raw_sql(spec.column(name).type, row[name]) for name in names]
        stored = crud_for(spec).decode_row((await self.sql.query(sql, params))[0])
        if self._hooks is not None:
            await self._hooks.after(spec, "after_insert", stored, (table,), queue=self._queue_after_commit)
        return stored

    async def _queue_after_commit(self, payload: dict) -> None:
        """The row's after_commit hooks, queued in this call's transaction when one is open."""
        await outbox.enqueue(self.sql.session, self.plugin.name, "hook", payload)

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
        """The response, its body read while it streams and refused past `MAX_HTTP_BODY` bytes."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PluginError(self.plugin.name, f"http.request: {url!r} is not an http(s) URL")
        if not host_allowed(url, self.plugin.manifest.http_hosts):
            raise PluginError(self.plugin.name, f"http.request: host {parts.hostname} is not listed in plugin.json permissions.http")
        limit = min(max(float(timeout or 10.0), 0.1), MAX_HTTP_TIMEOUT)
        # Uncompressed unless the plugin asks: the cap then bounds what crosses the network too.
        sent = dict(headers or {})
        if not any(name.lower() == "accept-encoding" for name in sent):
            sent["accept-encoding"] = "identity"
        try:
            async with self._http.stream(method.upper(), url, headers=sent, content=body, timeout=limit,
                                         follow_redirects=False) as response:
                content = await self._capped_body(response, parts.hostname)
        except httpx.TimeoutException:
            raise PluginError(self.plugin.name, f"http.request to {parts.hostname} timed out after {limit:g} s") from None
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, outbound_http.AddressRefused):
                raise PluginError(self.plugin.name, f"http.request: {exc}") from None
            raise PluginError(self.plugin.name, f"http.request to {parts.hostname} failed: {type(exc).__name__}") from None
        return {"status": response.status_code, "headers": dict(response.headers),
                "body": content.decode(response.encoding or "utf-8", errors="replace")}

    async def _capped_body(self, response: httpx.Response, host: str) -> bytes:
        too_large = PluginError(self.plugin.name, f"http.request: the response from {host} is larger than "
                                                  f"{MAX_HTTP_BODY} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_HTTP_BODY:
            raise too_large
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_HTTP_BODY:
                raise too_large  # leaving the `stream` block closes the connection: nothing more is read
            chunks.append(chunk)
        return b"".join(chunks)

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
        """`log.info/warn/error` and `print`: a line of the server log, under `modula.plugin.NAME`,
        with the plugin, its level and the request's id."""
        self._log.log(LUA_LEVELS.get(level, logging.INFO), "%s", message,
                      extra={"plugin": self.plugin.name, "plugin_level": level, "request_id": self._request_id})

