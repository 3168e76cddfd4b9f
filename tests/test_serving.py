"""`modula serve` as an operator runs it: TCP_NODELAY on kept-alive connections, --workers N
processes on one port (a dead worker is started again, SIGTERM stops them all), the access log
only when asked for."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modula.serving import listen

NO_DATABASE_ENV = {"DATABASE_URL": "", "MODULA_DATABASE_URL": "", "MODULA_PLUGINS_DIR": ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_accepted_connections_get_tcp_nodelay_from_the_event_loop():
    listening = listen("127.0.0.1", _free_port())
    nodelay: asyncio.Future = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            sock = transport.get_extra_info("socket")
            nodelay.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        assert await asyncio.wait_for(nodelay, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _serve(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "modula.cli", "serve", "--port", str(port), *args], cwd=tmp_path,
                              env={**os.environ, **NO_DATABASE_ENV, **(env or {})},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/health", timeout=2).raise_for_status()
            return server, base
        except httpx.TransportError:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> str:
    if server.poll() is None:
        server.terminate()
    try:
        out, _ = server.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
        pytest.fail(f"serve did not stop on SIGTERM: {out}")
    return out


def _wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_workers_share_the_port_a_dead_one_is_restarted_and_sigterm_stops_all(tmp_path):
    server, base = _serve(tmp_path, "--workers", "2")
    try:
        _wait_for(lambda: len(_children(server.pid)) == 2, "two workers did not start")
        workers = _children(server.pid)
        with httpx.Client() as client:
            for _ in range(20):
                assert client.post(f"{base}/graphql", json={"query": "{ routes { id } }"}).json()["data"] == {"routes": []}
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(_children(server.pid) - {victim}) == 2, "the killed worker was not replaced")
        _wait_for(lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, "no worker answers")
        survivors = _children(server.pid)
    finally:
        out = _stop(server)
    assert server.returncode == 0, out
    assert "2 workers" in out
    for pid in survivors:
        _wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
                  f"worker {pid} outlived the supervisor", 10)


def test_workers_must_be_at_least_one(tmp_path):
    result = subprocess.run([sys.executable, "-m", "modula.cli", "serve", "--port", str(_free_port()), "--workers", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, **NO_DATABASE_ENV})
    assert result.returncode == 1
    assert "modula: error: --workers must be 1 or more, not 0" in result.stderr
    assert not (tmp_path / "modula.db").exists()


@pytest.mark.parametrize("asked", [False, True])
def test_the_access_log_is_written_only_when_asked_for(tmp_path, asked):
    server, base = _serve(tmp_path, *(["--access-log"] if asked else []))
    try:
        httpx.post(f"{base}/graphql", json={"query": "{ routes { id } }"})
    finally:
        out = _stop(server)
    assert (re.search(r" INFO modula\.request: POST /graphql 200 [\d.]+ ms \[request [0-9a-f]{32}\]", out) is not None) is asked, out
    assert "HTTP/1.1" not in out  # uvicorn's own line is replaced by the app's
