"""Load for the peer benchmarks: wrk with graphql.lua (or, without wrk, a small asyncio client), the
CPU each server and its PostgreSQL backends used meanwhile, and the one-client sequential latency
on one kept-alive connection against a new connection per request.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from peer_data import PRODUCTS
from peer_servers import Server, cpu_seconds, descendants

LUA = Path(__file__).resolve().parent / "graphql.lua"


def variables(operation: str, rnd: random.Random) -> dict:
    """The same variables graphql.lua sends."""
    if operation == "q1":
        low = rnd.randint(1, 900)
        return {"min": low, "max": low + 100}
    if operation == "q2":
        return {"id": rnd.randint(1, PRODUCTS)}
    return {"name": "bench insert", "price": 0.5, "cat": "zz_bench"}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


class CpuMeter:
    """CPU seconds of a server's processes (with its workers) and of the PostgreSQL backends serving
    its database, between start() and stop()."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _snapshot(self) -> tuple[dict[int, float], dict[int, float]]:
        own = [self.server.pid, *descendants(self.server.pid)]
        return {pid: cpu_seconds([pid]) for pid in own}, {pid: cpu_seconds([pid]) for pid in postgres_backends(self.server)}

    def start(self) -> None:
        self.before = self._snapshot()
        self.machine_before = machine_jiffies()
        self.client_before = client_cpu_seconds()
        self.started = time.perf_counter()

    def stop(self) -> dict:
        after = self._snapshot()
        wall = time.perf_counter() - self.started
        (total0, idle0), (total1, idle1) = self.machine_before, machine_jiffies()
        server = sum(cpu - self.before[0].get(pid, 0.0) for pid, cpu in after[0].items())
        backends = sum(cpu - self.before[1].get(pid, 0.0) for pid, cpu in after[1].items())
        client = client_cpu_seconds() - self.client_before
        busy = (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(1, total1 - total0))
        return {"server_cpu_s": round(server, 2), "postgres_cpu_s": round(backends, 2),
                "load_generator_cpu_s": round(client, 2), "wall_s": round(wall, 2), "server_processes": len(after[0]),
                "machine_busy_cores": round(busy, 2),
                # what else the machine did meanwhile (other servers idle, other people's work), in cores
                "other_cores": round(max(0.0, busy - (server + backends + client) / wall), 2)}


def client_cpu_seconds() -> float:
    """CPU used by this process and its finished children (wrk)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_jiffies() -> tuple[int, int]:
    """(all, idle) CPU time of the machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def postgres_backends(server: Server) -> list[int]:
    """Backend pids connected to the server's database (none on SQLite)."""
    if not server.database.startswith("postgresql"):
        return []
    database = urlsplit(server.database).path.lstrip("/")

    async def query() -> list[int]:
        import asyncpg

        connection = await asyncpg.connect(server.database)
        try:
            rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                                          "pg_backend_pid()", database)
            return [row["pid"] for row in rows]
        finally:
            await connection.close()

    return asyncio.run(query())


def run_wrk(server: Server, operation: str, seconds: float, connections: int) -> dict:
    env = {"DOCUMENT": server.queries[operation], "VARIABLES": operation, "AUTH_TOKEN": server.token,
           "PRODUCTS": str(PRODUCTS)}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(LUA),
               server.url]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    match = re.search(r"WRKJSON (\{.*\})", done.stdout)
    if not match:
        raise RuntimeError(f"wrk failed against {server.name}: {done.stdout}{done.stderr}")
    result = json.loads(match.group(1))
    result["errors"] = result.pop("bad_responses") + result.pop("socket_errors") + result.pop("timeouts")
    if done.stderr.strip():
        result["first_bad_responses"] = done.stderr.strip()[:600]
    return result


async def _python_load(server: Server, operation: str, seconds: float, connections: int) -> dict:
    import httpx

    rnd = random.Random(42)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=server.headers()) as client:

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post(server.url, json={"query": server.queries[operation],
                                                               "variables": variables(operation, rnd)})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or b'"errors"' in response.content:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "seconds": round(elapsed, 3), "rps": round(len(latencies) / elapsed, 1),
            "p50_us": round(percentile(latencies, 50) * 1e6), "p99_us": round(percentile(latencies, 99) * 1e6),
            "ok": len(latencies) - errors, "errors": errors}


def run_load(server: Server, operation: str, seconds: float, connections: int) -> dict:
    """wrk when installed, else the Python client (which needs a core itself: lower numbers)."""
    if have_wrk():
        return run_wrk(server, operation, seconds, connections)
    return asyncio.run(_python_load(server, operation, seconds, connections))


def measure(server: Server, operation: str, warmup: float, seconds: float, connections: int) -> dict:
    """A warm-up run, then a measured one with the CPU its processes used."""
    if warmup > 0:
        run_load(server, operation, warmup, connections)
    meter = CpuMeter(server)
    meter.start()
    result = run_load(server, operation, seconds, connections)
    result.update(meter.stop())
    result["cpu_ms_per_request"] = round(1000 * (result["server_cpu_s"] + result["postgres_cpu_s"])
                                         / max(1, result["requests"]), 3)
    return result


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def interleaved_latency(server: Server, operation: str, requests: int) -> dict:
    """One client, one request at a time, taking turns: a request on one kept-alive connection,
    then the same request on a new connection (connecting is timed too, as a client pays it), so
    that the machine's drift during the probe hits both alike. p50/p99 in microseconds."""
    parts = urlsplit(server.url)
    rnd = random.Random(7)
    kept = None
    latencies: dict[str, list[float]] = {"kept_alive": [], "new_connection": []}
    errors = dict.fromkeys(latencies, 0)

    def one(how: str, body: str, connection: http.client.HTTPConnection | None, warm: bool) -> http.client.HTTPConnection:
        started = time.perf_counter()
        if connection is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.request("POST", parts.path, body, server.headers())
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b'"errors"' in data:
            errors[how] += 1
        if warm:
            latencies[how].append(elapsed)
        return connection

    for i in range(20 + requests):  # 20 warm-up rounds
        body = json.dumps({"query": server.queries[operation], "variables": variables(operation, rnd)})
        kept = one("kept_alive", body, kept, i >= 20)
        one("new_connection", body, None, i >= 20).close()
    kept.close()
    out = {}
    for how, measured in latencies.items():
        measured.sort()
        out[how] = {"requests": requests, "p50_us": round(percentile(measured, 50) * 1e6),
                    "p99_us": round(percentile(measured, 99) * 1e6), "errors": errors[how]}
    return out