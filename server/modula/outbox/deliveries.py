"""What delivering one outbox entry means: an `http` entry is the plugin's queued request (sent
only to hosts its manifest allows *now*, answered with a 2xx), a `hook` entry runs the plugin's
`after_commit` hooks on the change it records. Anything else fails the attempt."""

from __future__ import annotations

import json
from typing import Any

from modula.lua.declarations import HookDecl
from modula.plugins.calls import PluginCall
from modula.plugins.errors import PluginError
from modula.plugins.host import PluginHost


class DeliveryFailed(Exception):
    """This attempt did not deliver; `permanent` when no later attempt could (a malformed entry)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def after_commit_hooks(plugin, table: str) -> list[HookDecl]:
    return [hook for hook in plugin.declarations.hooks if hook.event == "after_commit" and hook.table == table]


class Deliverer:
    """Delivers entries through the plugins this process has loaded."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    async def __call__(self, entry: dict[str, Any]) -> None:
        plugin = self.host.loaded.get(entry["plugin"])
        if plugin is None:
            raise DeliveryFailed(f"plugin {entry['plugin']} is not loaded")
        try:
            payload = json.loads(entry["payload"])
        except ValueError:
            raise DeliveryFailed("the payload is not JSON", permanent=True) from None
        if not isinstance(payload, dict):
            raise DeliveryFailed("the payload is not an object", permanent=True)
        if entry["kind"] == "http":
            await self._http(plugin, payload)
        elif entry["kind"] == "hook":
            await self._hooks(plugin, payload, entry)
        else:
            raise DeliveryFailed(f"unknown kind {entry['kind']!r}", permanent=True)

    async def _http(self, plugin, payload: dict) -> None:
        method, url, headers, body = (payload.get(key) for key in ("method", "url", "headers", "body"))
        timeout = payload.get("timeout", 10.0)
        if (not isinstance(method, str) or not isinstance(url, str) or not isinstance(headers, dict)
                or not all(isinstance(v, str) for v in headers.values())
                or not (body is None or isinstance(body, str)) or not isinstance(timeout, (int, float))):
            raise DeliveryFailed("the queued request is malformed", permanent=True)
        call = PluginCall(plugin, None, http_client=self.host.http_client(plugin.manifest))
        try:
            response = await call.http_request(method, url, headers, body, float(timeout))
        except PluginError as exc:
            raise DeliveryFailed(exc.message) from None
        if not 200 <= response["status"] < 300:
            raise DeliveryFailed(f"{method} {url} answered {response['status']}")

    async def _hooks(self, plugin, payload: dict, entry: dict) -> None:
        table, change, row = payload.get("table"), payload.get("change"), payload.get("row")
        if not isinstance(table, str) or not isinstance(change, str) or not isinstance(row, dict):
            raise DeliveryFailed("the recorded change is malformed", permanent=True)
        ctx = {"plugin": plugin.name, "event": "after_commit", "table": table, "change": change,
               "delivery": entry["id"], "attempt": entry["attempts"]}
        for hook in after_commit_hooks(plugin, table):
            try:
                await self.host.call_plugin(plugin, hook.handler, row, ctx)
            except PluginError as exc:
                raise DeliveryFailed(exc.message) from None
