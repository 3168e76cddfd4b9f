"""Turns one request yielded by a Lua handler into a checked call on the plugin host.

A request is read and checked on the plugin's Lua thread (``prepare``: its arguments are Lua
values) and awaited on the event loop (the returned ``Pending``: plain Python only).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from .host import Host
from .values import ConversionError, ConversionTimeout, LuaValues

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_HTTP_TIMEOUT = 10.0


class RequestRefused(Exception):
    """The plugin asked for something malformed or not allowed; the message goes back to Lua."""


Pending = Callable[[float], Awaitable[Any]]
"""A checked request, awaited on the loop with the seconds left in the call's budget."""


class HostRequest:
    """The requests of one handler call, with the transactions it has open."""

    def __init__(self, values: LuaValues, host: Host, open_txs: set[int],
                 http_hosts: tuple[str, ...], deadline: float) -> None:
        self._values = values
        self._deadline = deadline
        self._host = host
        self._open_txs = open_txs
        self._http_hosts = http_hosts

    def prepare(self, op: str, args: tuple) -> Pending:
        """Read and check ``op``'s Lua arguments (on the Lua thread); the result, awaited on the
        loop, calls the host and returns plain Python, ready for ``to_lua``."""
        host = self._host
        if op in ("query", "query_one", "exec"):
            sql, params, tx = _arg(args, 0), _arg(args, 1), self._tx(_arg(args, 2), op)
            if not isinstance(sql, bytes):
                raise RequestRefused(f"{op}: sql must be a string")
            method, text, plain = getattr(host, op), sql.decode("utf-8", "replace"), self._params(op, params)
            return lambda remaining: method(text, plain, tx)
        if op == "insert":
            table, values, tx = _arg(args, 0), _arg(args, 1), self._tx(_arg(args, 2), op)
            if not isinstance(table, bytes):
                raise RequestRefused("insert: table must be a string")
            row = self._from_lua(op, values)
            if not isinstance(row, dict):
                raise RequestRefused("insert: values must be a table of column = value")
            name = table.decode("utf-8", "replace")
            return lambda remaining: host.insert(name, row, tx)
        if op == "begin":
            return lambda remaining: self._begin()
        if op == "rollback":
            tx = self._tx(_arg(args, 0), op)
            return lambda remaining: self._rollback(tx)
        if op == "commit":
            tx = self._tx(_arg(args, 0), op)
            return lambda remaining: self._commit(tx)
        if op == "http":
            method, url, headers, body, timeout = self._http(self._from_lua("http.request", _arg(args, 0)))
            return lambda remaining: host.http_request(method, url, headers, body, min(timeout, remaining))
        if op == "enqueue":
            method, url, headers, body, timeout = self._http(self._from_lua("http.enqueue", _arg(args, 0)), "http.enqueue")
            return lambda remaining: host.http_enqueue(method, url, headers, body, timeout)
        raise RequestRefused(f"unknown request {op!r}")

    async def _begin(self) -> int:
        tx = await self._host.begin()
        self._open_txs.add(tx)
        return tx

    async def _rollback(self, tx: int) -> None:
        self._open_txs.discard(tx)
        return await self._host.rollback(tx)

    async def _commit(self, tx: int) -> None:
        self._open_txs.discard(tx)
        try:
            return await self._host.commit(tx)
        except Exception:
            await _quietly(self._host.rollback(tx))
            raise

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

    def _http(self, spec: Any, name: str = "http.request") -> tuple[str, str, dict, str | None, float]:
        if not isinstance(spec, dict):
            raise RequestRefused(f"{name} expects a table")
        method = str(spec.get("method", "GET")).upper()
        if method not in HTTP_METHODS:
            raise RequestRefused(f"{name}: unsupported method {method!r}")
        url = spec.get("url")
        if not isinstance(url, str):
            raise RequestRefused(f"{name}: url must be a string")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestRefused(f"{name}: url must be an absolute http(s) URL")
        if not host_allowed(url, self._http_hosts):
            raise RequestRefused(f"{name}: host {parts.hostname!r} is not allowed "
                                 "for this plugin")
        headers = spec.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise RequestRefused(f"{name}: headers must map names to strings")
        body = spec.get("body")
        if body is not None and not isinstance(body, str):
            raise RequestRefused(f"{name}: body must be a string")
        timeout = spec.get("timeout", DEFAULT_HTTP_TIMEOUT)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise RequestRefused(f"{name}: timeout must be a positive number of seconds")
        return method, url, headers, body, float(timeout)


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
