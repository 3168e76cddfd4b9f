"""`modula serve` as real subprocesses for tests: started on free ports (several at the same
instant if asked), waited for until they answer, read over HTTP, stopped by pid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from graphql import build_client_schema, get_introspection_query, print_schema

NO_DATABASE_ENV = {"DATABASE_URL": "", "MODULA_DATABASE_URL": "", "MODULA_PLUGINS_DIR": ""}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    process: subprocess.Popen
    base: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=10)

    def post(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{self.base}/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers, timeout=10).json()

    def get_status(self, path: str, token: str) -> int:
        """The status of a POST of `{ __typename }` to `path` with the bearer token."""
        return httpx.post(f"{self.base}{path}", json={"query": "{ __typename }"},
                          headers={"authorization": f"Bearer {token}"}, timeout=10).status_code

    def generation(self) -> int:
        return self.get("/health").json()["schemaGeneration"]

    def sdl(self) -> str:
        """The served schema as SDL, printed from what introspection tells a client."""
        body = self.post(get_introspection_query(descriptions=True))
        return print_schema(build_client_schema(body["data"]))


def launch(cwd: Path, *args: str, env: dict | None = None) -> Served:
    """Start `modula serve` without waiting for it (see `wait_ready`)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "modula.cli", "serve", "--port", str(port), *args], cwd=cwd,
                               env={**os.environ, **NO_DATABASE_ENV, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return Served(process, f"http://127.0.0.1:{port}")


def wait_ready(served: Served, seconds: float = 60) -> Served:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(f"{served.base}/health", timeout=2).raise_for_status()
            return served
        except httpx.TransportError:
            assert served.process.poll() is None, served.process.stdout.read()
            assert time.monotonic() < deadline, f"server did not start within {seconds} s"
            time.sleep(0.05)


def stop(served: Served) -> str:
    """SIGTERM, then its output (SIGKILL if it does not stop within 20 s)."""
    if served.process.poll() is None:
        served.process.terminate()
    try:
        out, _ = served.process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        out, _ = served.process.communicate()
    return out


def wait_for(condition, what: str, seconds: float = 30, interval: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(interval)
