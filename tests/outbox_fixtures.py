"""A real HTTP receiver on 127.0.0.1 for outbox tests (down, refusing, accepting, or killing the
sender on its first request), and a plugin that queues requests to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RELAY_LUA = r"""
plugin.define_table({ name = "relay_sent", fields = {
    {name = "sent_id", type = "integer", primary_key = true},
    {name = "label", type = "text"},
    {name = "url", type = "text"},
}})

-- Queues one POST per label and records the labels, all in one transaction; `fail` rolls it back.
plugin.mutation{
    name = "relay", args = { url = "String!", labels = "[String!]!", fail = "Boolean" }, returns = "Int!",
    handler = function(args, ctx)
        return transaction(function(tx)
            for _, label in ipairs(args.labels) do
                tx:exec("INSERT INTO relay_sent (label) VALUES (?)", {label})  -- raw SQL: no hooks
                http.enqueue{method = "POST", url = args.url, body = json.encode({label = label}),
                             headers = {["content-type"] = "application/json"}, timeout = 5}
            end
            if args.fail then error("refused after queueing") end
            return #args.labels
        end)
    end,
}

-- One row through the table API (Lua's insert): its after_commit hook is queued with it.
plugin.mutation{
    name = "relayInsert", args = { url = "String!", label = "String!" }, returns = "Int!",
    handler = function(args, ctx) return insert("relay_sent", {label = args.label, url = args.url}).sent_id end,
}

-- Raw SQL, to show what the plugin may not touch.
plugin.mutation{
    name = "relayRaw", args = { sql = "String!" }, returns = "Int!",
    handler = function(args, ctx) exec(args.sql, {}) return 1 end,
}

-- Runs in the outbox worker once a change to relay_sent through the table API (a generated mutation,
-- or Lua's insert) committed; raw SQL, as in relay above, fires no hook. A row with a url announces
-- itself there.
plugin.on("after_commit", "relay_sent", function(row, ctx)
    if row.url then
        http.enqueue{method = "POST", url = row.url, body = json.encode({label = ctx.change .. ":" .. row.label})}
    end
end)
"""


def write_relay(plugins_dir: Path) -> Path:
    folder = plugins_dir / "relay"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.json").write_text(json.dumps({"name": "relay", "version": "1.0.0", "api": 1,
                                                    "permissions": {"http": ["127.0.0.1"]}}))
    (folder / "init.lua").write_text(RELAY_LUA)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """Records every POST body. `status` is what it answers (503: refusing); `kill_pid`, when
    set, is SIGKILLed on the next request, which then gets no answer. Until `start()` nothing
    listens on `port` (connections are refused: the receiver is down)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.status = 204
        self.kill_pid: int | None = None
        self.bodies: list[dict] = []  # accepted ones
        self.refused = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:
                    return  # the sender died while sending: nothing was received
                body = json.loads(raw)
                with receiver.lock:
                    pid, receiver.kill_pid = receiver.kill_pid, None
                    status = receiver.status
                    if pid is None and status < 300:
                        receiver.bodies.append(body)
                    elif pid is None:
                        receiver.refused += 1
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    return  # the sender is gone mid-delivery: no answer
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def labels(self) -> list[str]:
        with self.lock:
            return sorted(body["label"] for body in self.bodies)
