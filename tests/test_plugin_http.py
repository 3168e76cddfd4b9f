"""A plugin's outgoing HTTP, against a real server on 127.0.0.1: the response is capped while it
streams, and addresses that are not public are reached only when the manifest names them, checked
on the address the host resolves to (once) and connected to."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from pathlib import Path

import pytest

from modula.plugins import outbound_http
from modula.plugins.calls import MAX_HTTP_BODY

FETCH = """
plugin.query{name = "fetch", args = {url = "String!"}, returns = "JSON", handler = function(args)
  local ok, response = pcall(http.request, {url = args.url, timeout = 5})
  if not ok then return {error = response} end
  return {status = response.status, size = #response.body, body = string.sub(response.body, 1, 40)}
end}
"""


class LocalServer:
    """An HTTP/1.1 server whose every response is `body_size` bytes of "x" in 64 KiB chunks
    (chunked, or with a Content-Length when `declared`); it counts what it managed to send."""

    def __init__(self, body_size: int, *, declared: int | None = None) -> None:
        self.body_size = body_size
        self.declared = declared
        self.sent = 0
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            length = f"content-length: {self.declared}" if self.declared is not None else "transfer-encoding: chunked"
            writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{length}\r\n\r\n".encode())
            left, chunk = self.body_size, b"x" * 65536
            while left > 0:
                piece = chunk[:left]
                writer.write(piece if self.declared is not None else b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                self.sent, left = self.sent + len(piece), left - len(piece)
            if self.declared is None:
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self):
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self


async def fetch(app, tmp_path: Path, allowed: list[str], url: str, *, name: str = "fetcher") -> dict:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "plugin.json").write_text(json.dumps({"name": name, "version": "1.0.0", "api": 1,
                                                    "permissions": {"http": allowed}}))
    (folder / "init.lua").write_text(FETCH)
    plugin = await app.state.plugins.install(folder)
    handler = next(op.handler for op in plugin.declarations.operations if op.name == "fetch")
    return await app.state.plugins.call(name, handler, {"url": url}, {})


async def test_a_response_past_the_cap_is_refused_while_it_streams(app, tmp_path):
    async with LocalServer(64 * MAX_HTTP_BODY).running() as server:
        result = await fetch(app, tmp_path, ["127.0.0.1"], f"http://127.0.0.1:{server.port}/big")
    assert f"the response from 127.0.0.1 is larger than {MAX_HTTP_BODY} bytes" in result["error"]
    assert server.sent < 16 * MAX_HTTP_BODY  # the rest was never read (the kernel's buffers took some)


async def test_a_declared_length_past_the_cap_is_refused_before_the_body_is_read(app, tmp_path):
    async with LocalServer(65536, declared=MAX_HTTP_BODY + 1).running() as server:
        result = await fetch(app, tmp_path, ["127.0.0.1"], f"http://127.0.0.1:{server.port}/")
    assert "is larger than" in result["error"]


async def test_a_response_within_the_cap_arrives_whole_from_a_named_address(app, tmp_path):
    async with LocalServer(MAX_HTTP_BODY).running() as server:
        result = await fetch(app, tmp_path, [f"127.0.0.1:{server.port}"], f"http://127.0.0.1:{server.port}/")
    assert result == {"status": 200, "size": MAX_HTTP_BODY, "body": "x" * 40}


def resolving_to(monkeypatch, address: str) -> list[str]:
    """Every name resolves to `address`; returns the names looked up."""
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [address]

    monkeypatch.setattr(outbound_http, "resolve", resolve)
    return lookups


async def test_a_name_resolving_to_loopback_is_refused_unless_the_address_is_named(app, tmp_path, monkeypatch):
    lookups = resolving_to(monkeypatch, "127.0.0.1")
    async with LocalServer(10).running() as server:
        refused = await fetch(app, tmp_path, ["*.rebind.test"], f"http://api.rebind.test:{server.port}/")
        assert server.sent == 0
        reached = await fetch(app, tmp_path, ["*.rebind.test", "127.0.0.1"], f"http://api.rebind.test:{server.port}/",
                              name="fetcher2")
    assert "api.rebind.test resolves to 127.0.0.1, a loopback address; name it in permissions.http" in refused["error"]
    # Reached through the address the host checked: the system resolver knows no rebind.test.
    assert reached == {"status": 200, "size": 10, "body": "x" * 10}
    assert lookups == ["api.rebind.test", "api.rebind.test"]  # once per connection


@pytest.mark.parametrize("address, kind", [("169.254.169.254", "link-local"), ("10.1.2.3", "private"),
                                           ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"),
                                           ("fe80::1", "link-local"), ("100.64.0.1", "non-public")])
async def test_non_public_addresses_are_refused_without_connecting(app, tmp_path, monkeypatch, address, kind):
    resolving_to(monkeypatch, address)
    result = await fetch(app, tmp_path, ["*.rebind.test"], "http://meta.rebind.test/latest/")
    assert "meta.rebind.test resolves to " in result["error"]
    assert f"{address.removeprefix('::ffff:')}, a {kind} address; name it in permissions.http" in result["error"]


async def test_localhost_in_the_manifest_names_loopback(app, tmp_path):
    async with LocalServer(10).running() as server:
        result = await fetch(app, tmp_path, [f"localhost:{server.port}"], f"http://localhost:{server.port}/")
    assert result == {"status": 200, "size": 10, "body": "x" * 10}


def test_what_a_manifest_names():
    named = outbound_http.named_addresses(["api.example.com", "*.example.org", "10.0.0.5:8080", "[::1]:81", "localhost"])
    assert [str(n) for n in named] == ["10.0.0.5/32", "::1/128", "127.0.0.0/8", "::1/128"]
    assert outbound_http.refusal(ipaddress.ip_address("10.0.0.5"), named) is None
    assert "private" in outbound_http.refusal(ipaddress.ip_address("10.0.0.6"), named)
