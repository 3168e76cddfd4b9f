"""The HTTP client a plugin's `http.request` goes out through: each host name is resolved once,
every address it resolves to is checked, and the connection goes to the address that was checked
(a second lookup could answer differently: DNS rebinding). Addresses that are not public
(loopback, private, link-local, unspecified, shared, reserved) are refused unless the plugin's
manifest names them: the address itself in `permissions.http`, or `localhost` for loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address the plugin may not reach; the message says which and why."""


def named_addresses(entries: typing.Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The addresses a manifest's `permissions.http` names outright: IP literals ("10.0.0.5",
    "10.0.0.5:8080", "[::1]:8080") and `localhost` (all of loopback)."""
    named = []
    for entry in entries:
        entry = entry.strip().lower()
        host = entry[1:].partition("]")[0] if entry.startswith("[") else entry.partition(":")[0]
        if host == "localhost":
            named.extend(_LOOPBACK)
            continue
        try:
            named.append(ipaddress.ip_network(host))
        except ValueError:
            continue
    return tuple(named)


def refusal(address: Address, named: tuple) -> str | None:
    """Why `address` may not be reached, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_global or any(address in network for network in named):
        return None
    kind = ("loopback" if address.is_loopback else "link-local" if address.is_link_local
            else "unspecified" if address.is_unspecified else "multicast" if address.is_multicast
            else "private" if address.is_private else "non-public")
    return f"{address}, a {kind} address; name it in permissions.http to allow it"


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, once)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to checked addresses; TLS still verifies the host name (httpcore passes it)."""

    def __init__(self, named: tuple) -> None:
        self._named = named
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable | None = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        for text in addresses:
            why = refusal(ipaddress.ip_address(text.partition("%")[0]), self._named)
            if why is not None:
                raise AddressRefused(f"{host} resolves to {why}")
        failure: Exception = httpcore.ConnectError(f"{host} does not resolve")
        for address in addresses:  # as the system would: the next address when one does not answer
            try:
                return await self._network.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                       socket_options=socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable | None = None) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("plugins cannot reach unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, named: tuple) -> None:
        super().__init__(trust_env=False)
        # httpx's transport builds its pool without a way to pass a network backend: replace it.
        self._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                                  network_backend=_CheckedBackend(named))


def client_for(http_hosts: typing.Iterable[str]) -> httpx.AsyncClient:
    """A client for plugins whose manifest lists `http_hosts` (it connects only where they may).
    Proxies from the environment are not used: the check must see where the connection goes."""
    return httpx.AsyncClient(transport=_CheckedTransport(named_addresses(http_hosts)), trust_env=False)
