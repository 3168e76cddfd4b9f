"""Turns one request yielded by a Lua handler into a checked call on the plugin host."""
from __future__ import annotations

import fnmatch
import time
from typing import Any
from urllib.parse import urlsplit

from .host import Host
from .values import ConversionError, ConversionTimeout, LuaValues

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_HTTP_TIMEOUT = 10.0


class RequestRefused(Exception):
    """The plugin asked for something malformed or not allowed; the message goes back to Lua."""


class HostRequest:
    """One pending request from a handler, with the open transactions of its call."""

    def __init__(self, values: LuaValues, host: Host, open_txs: set[int],
                 http_hosts: tuple[str, ...]) -> None:
        self._values = values
        self._deadline: float | None = None
        self._host = host
        self._open_txs = open_txs
        self._http_hosts = http_hosts

    async def serve(self, op: str, args: tuple, remaining: float) -> Any:
        """Await the host method for ``op``; the result is plain Python, ready for ``to_lua``."""
        self._deadline = time.monotonic() + remaining
        if op in ("query", "query_one", "exec"):
            sql, params, tx = _arg(args, 0), _arg(args, 1), self._tx(_arg(args, 2), op)
            if not isinstance(sql, bytes):
                raise RequestRefused(f"{op}: sql must be a string")
            method = getattr(self._host, op)
            return await method(sql.decode("utf-8", "replace"), self._params(op, params), tx)
        if op == "insert":
            table, values, tx = _arg(args, 0), _arg(args, 1), self._tx(_arg(args, 2), op)
            if not isinstance(table, bytes):
                raise RequestRefused("insert: table must be a string")
            row = self._from_lua(op, values)
            if not isinstance(row, dict):
                raise RequestRefused("insert: values must be a table of column = value")
            return await self._host.insert(table.decode("utf-8", "replace"), row, tx)
        if op == "begin":
            tx = await self._host.begin()
            self._open_txs.add(tx)
            return tx
        if op == "rollback":
            tx = self._tx(_arg(args, 0), op)
            self._open_txs.discard(tx)
            return await self._host.rollback(tx)
        if op == "commit":
            tx = self._tx(_arg(args, 0), op)
            self._open_txs.discard(tx)
            try:
                return await self._host.commit(tx)
            except Exception:
                await _quietly(self._host.rollback(tx))
                raise
        if op == "http":
            return await self._http(self._from_lua("http.request", _arg(args, 0)), remaining)
        raise RequestRefused(f"unknown request {op!r}")

    def _tx(self, tx: Any, op: str) -> int | None:
        if tx is None:
            return None
        if tx not in self._open_txs:
            raise RequestRefused(f"{op}: the transaction is already finished or not from this call")
        return tx

    def _params(self, op: str, params: Any) -> list | dict:
        value = self._from_lua(op, params)
        if value is None or value == {}:
            return []
        if not isinstance(value, (list, dict)):
            raise RequestRefused(f"{op}: params must be an array (for ?) or a table of named params")
        return value

    def _from_lua(self, op: str, value: Any) -> Any:
        try:
            return self._values.from_lua(value, self._deadline)
        except ConversionTimeout:
            raise
        except ConversionError as error:
            raise RequestRefused(f"{op}: {error}") from None

    async def _http(self, spec: Any, remaining: float) -> dict:
        if not isinstance(spec, dict):
            raise RequestRefused("http.request expects a table")
        method = str(spec.get("method", "GET")).upper()
        if method not in HTTP_METHODS:
            raise RequestRefused(f"http.request: unsupported method {method!r}")
        url = spec.get("url")
        if not isinstance(url, str):
            raise RequestRefused("http.request: url must be a string")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestRefused("http.request: url must be an absolute http(s) URL")
        if not host_allowed(url, self._http_hosts):
            raise RequestRefused(f"http.request: host {parts.hostname!r} is not allowed "
                                 "for this plugin")
        headers = spec.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise RequestRefused("http.request: headers must map names to strings")
        body = spec.get("body")
        if body is not None and not isinstance(body, str):
            raise RequestRefused("http.request: body must be a string")
        timeout = spec.get("timeout", DEFAULT_HTTP_TIMEOUT)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise RequestRefused("http.request: timeout must be a positive number of seconds")
        return await self._host.http_request(method, url, headers, body,
                                             min(float(timeout), remaining))


def host_allowed(url: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """Whether `url`'s host is in the manifest's list: "api.example.com", "*.example.com"
    (subdomains), optionally with a port ("api.example.com:8443"; without one, any port)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    host = parts.hostname.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return False
    for entry in allowed:
        pattern, _, wanted_port = entry.lower().partition(":")
        if wanted_port and int(wanted_port) != port:
            continue
        if fnmatch.fnmatchcase(host, pattern):
            return True
    return False


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        pass


def _arg(args: tuple, index: int) -> Any:
    return args[index] if index < len(args) else None
