"""Resource limits applied to one plugin's Lua runtime and to each call into it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modula.config import Settings


@dataclass(frozen=True)
class Limits:
    """Budgets for a plugin runtime.

    ``instructions`` and ``seconds`` apply to each call into the plugin (the init.lua run, each
    handler run); ``seconds`` is wall-clock and covers the whole call, host awaits included.
    ``memory_bytes`` caps the whole Lua state of the plugin. ``max_string_op_input`` is the
    longest subject the pattern functions (find, match, gmatch, gsub) accept and the longest
    result ``string.rep`` builds; ``pattern_steps`` bounds the estimated worst-case work of one
    pattern call (see ``prelude`` for the estimate).
    """

    instructions: int = 50_000_000
    memory_bytes: int = 64 * 1024 * 1024
    seconds: float = 5.0
    max_string_op_input: int = 1_000_000
    pattern_steps: int = 50_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The budgets the server is configured with (``lua_*`` settings, ``MODULA_LUA_*``)."""
        return cls(instructions=settings.lua_instructions, memory_bytes=settings.lua_memory_bytes,
                   seconds=settings.lua_seconds,
                   max_string_op_input=settings.lua_max_string_op_input,
                   pattern_steps=settings.lua_pattern_steps)
