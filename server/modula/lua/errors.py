"""The error a plugin call or plugin load ends with, as a value with a code a client can act on."""
from __future__ import annotations

import re

CODES = ("LUA_ERROR", "BUDGET_EXCEEDED", "MEMORY_EXCEEDED", "TIMEOUT", "HOST_ERROR")

_LOCATION = re.compile(r"^([\w./-]+\.lua:\d+): (.*)$", re.DOTALL)


class LuaPluginError(Exception):
    """A plugin failed: ``code`` is one of ``CODES``; ``location`` is "init.lua:12" when known."""

    def __init__(self, plugin: str, message: str, code: str = "LUA_ERROR",
                 location: str | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown plugin error code {code!r}")
        if location is None:
            location, message = split_location(message)
        self.plugin = plugin
        self.message = message
        self.code = code
        self.location = location
        where = f" at {location}" if location else ""
        super().__init__(f"plugin {plugin!r}{where}: {message}")


def split_location(message: str) -> tuple[str | None, str]:
    """Split Lua's "init.lua:12: message" into its location and the bare message."""
    match = _LOCATION.match(message)
    if match is None:
        return None, message
    return match.group(1), match.group(2)
