"""Resource limits applied to one plugin's Lua runtime and to each call into it."""
from __future__ import annotations

from dataclasses import dataclass


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
