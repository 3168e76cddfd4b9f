"""Explicit conversion of values between Python and a plugin's Lua state, in both directions.

Python to Lua: None is nil (a dict key with None is left out, so SQL NULL columns are absent
from rows; None inside a list becomes ``json.null`` to keep the sequence intact); bool, int
(within 64 bits) and float keep their type; larger ints become strings; Decimal becomes an
integer when integral and within 64 bits, else a float when the float reads back as the same
Decimal, else a string; str is UTF-8; bytes pass through as Lua strings; date, time and
datetime become ISO 8601 strings; dicts and lists/tuples become tables (lists 1-based).

Lua to Python: nil and ``json.null`` are None; integers stay int, floats float; strings are
str when valid UTF-8, else bytes; a table whose keys are exactly 1..n is a list, a table with
only string keys is a dict, the empty table is ``{}`` (an empty dict: the caller knows the
declared type and may read it as an empty list); mixed or other keys, functions, coroutines
and userdata are refused. Tables are read raw, so plugin metamethods never run here.

Python to Lua runs with the plugin's memory cap lifted (see ``PluginRuntime``), so ``to_lua``
checks the cap itself after every table it builds and stops with ``LuaMemoryError`` once the
state is over it. Lua to Python has a byte budget (the plugin's memory cap by default): a Lua
table may name one string many times, and each mention becomes its own Python copy.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lupa import lua54

from modula.db import column_values

MAX_DEPTH = 100
# What one value or table entry costs in a conversion's byte budget besides its string bytes:
# about what Python spends on an object, so the budget bounds the host's memory and time.
ITEM_COST = 64
_INT64 = (lua54.LUA_MININTEGER, lua54.LUA_MAXINTEGER)


class ConversionError(Exception):
    """A value cannot cross between Python and Lua; the message says which and why."""


class ConversionTimeout(ConversionError):
    """Converting a value ran past the deadline of the call it belongs to."""


class LuaValues:
    """Converts values for one Lua runtime; ``null`` is that runtime's ``json.null`` sentinel."""

    def __init__(self, lua: lua54.LuaRuntime, is_null: Any, null: Any, *,
                 over_cap: Callable[[], bool] = lambda: False,
                 max_plain_bytes: int = 64 * 1024 * 1024) -> None:
        self._lua = lua
        self._is_null = is_null
        self.null = null
        self._over_cap = over_cap
        self._max_plain_bytes = max_plain_bytes

    def to_lua(self, value: Any, depth: int = 0, keep_null: bool = False) -> Any:
        """Convert for Lua; with ``keep_null`` every None becomes ``json.null`` (json.decode)."""
        kind = type(value)
        if kind is str:
            return value.encode("utf-8")
        if kind is int:
            return value if _INT64[0] <= value <= _INT64[1] else str(value).encode()
        if kind is float or kind is bool:
            return value
        if value is None:
            return self.null if keep_null else None
        if depth > MAX_DEPTH:
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if _INT64[0] <= value <= _INT64[1] else str(value).encode()
        if isinstance(value, float):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, Decimal):
            return (format(value, "f") if value.is_finite() else str(value)).encode()
        if isinstance(value, dt.datetime):
            return column_values.iso_z(value).encode()
        if isinstance(value, (dt.date, dt.time)):
            return value.isoformat().encode()
        if isinstance(value, dict):
            return self._checked(self._lua.table_from({
                str(key).encode("utf-8"): self.to_lua(item, depth + 1, keep_null)
                for key, item in value.items() if item is not None or keep_null
            }))
        if isinstance(value, (list, tuple)):
            return self._checked(self._lua.table_from([
                self.null if item is None else self.to_lua(item, depth + 1, keep_null)
                for item in value
            ]))
        raise ConversionError(f"cannot pass a Python {type(value).__name__} to Lua")

    def _checked(self, table: Any) -> Any:
        if self._over_cap():
            del table  # the traceback must not keep it (and its memory) alive
            raise lua54.LuaMemoryError("not enough memory")
        return table

    def from_lua(self, value: Any, deadline: float | None = None) -> Any:
        """Convert for the host; refuses a value whose plain form exceeds the byte budget or
        whose conversion runs past `deadline` (a `time.monotonic()` value)."""
        return self._plain(value, 0, _Budget(self._max_plain_bytes, deadline))

    def _plain(self, value: Any, depth: int, budget: _Budget) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            budget.spend(ITEM_COST)
            return value
        if isinstance(value, bytes):
            budget.spend(ITEM_COST + len(value))
            return lua_string(value)
        kind = lua54.lua_type(value)
        if kind != "table":
            raise ConversionError(f"cannot pass a Lua {kind or type(value).__name__} to the host")
        if depth >= MAX_DEPTH:
            raise ConversionError(f"table nested deeper than {MAX_DEPTH} levels (is it cyclic?)")
        # Items are converted as they are read, so the budget stops a table that names one big
        # string (or one big table) many times before its copies fill the host's memory.
        items = []
        for key, item in value.items():
            budget.spend(ITEM_COST + (len(key) if isinstance(key, bytes) else 0))
            items.append((key, self._plain(item, depth + 1, budget)))
        if not items:
            return None if self._is_null(value) else {}
        if all(type(key) is int for key, _ in items):
            items.sort(key=lambda pair: pair[0])
            if items[0][0] != 1 or items[-1][0] != len(items):
                raise ConversionError("array table has holes or indices outside 1..n")
            return [item for _, item in items]
        result = {}
        for key, item in items:
            if not isinstance(key, bytes):
                raise ConversionError(
                    "table mixes array indices and string keys" if type(key) is int
                    else f"table key of type {lua54.lua_type(key) or type(key).__name__} "
                         "is not allowed (use strings)")
            name = lua_string(key)
            if isinstance(name, bytes):
                raise ConversionError("table keys must be valid UTF-8 strings")
            result[name] = item
        return result


class _Budget:
    """What one ``from_lua`` conversion may still produce, in (estimated) bytes and time."""

    def __init__(self, limit: int, deadline: float | None) -> None:
        self.limit = limit
        self.left = limit
        self.deadline = deadline
        self.items = 0

    def spend(self, cost: int) -> None:
        self.left -= cost
        if self.left < 0:
            raise ConversionError(f"value larger than {self.limit} bytes once converted "
                                  "(does a table name the same string or table many times?)")
        self.items += 1
        if self.deadline is not None and self.items % 64 == 0 and time.monotonic() > self.deadline:
            raise ConversionTimeout("converting the value ran past the call's time budget")


def lua_string(raw: bytes) -> str | bytes:
    """A Lua string as str when it is valid UTF-8, else the raw bytes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
