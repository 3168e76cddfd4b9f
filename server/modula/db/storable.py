"""Values both databases store alike, checked before they reach either: numbers that are finite
(neither stores Infinity or NaN the same way, and JSON has no word for them) and text without NUL
(PostgreSQL refuses it, SQLite keeps it) or lone surrogates (not UTF-8: neither driver encodes it)."""

from __future__ import annotations

import json
import math
from typing import Any

_MAX_DEPTH = 100


def problem(value: Any) -> str | None:
    """What is wrong with one value for storing, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}, not a finite number"
    if isinstance(value, str):
        if "\x00" in value:
            return "holds a NUL character (\\u0000), which text cannot store"
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"holds a lone surrogate (\\u{ord(value[exc.start]):04x}) at character {exc.start}, which is not Unicode text"
    return None


def unstorable(value: Any, path: tuple = ()) -> tuple[tuple, str] | None:
    """The path of the first value inside `value` (dicts, lists, leaves) that cannot be stored,
    with what is wrong with it; None when every one can. Keys are checked like values."""
    if _plainly_storable(value):
        return None
    pending: list[tuple[tuple, Any]] = [(path, value)]
    while pending:
        here, item = pending.pop()
        if len(here) - len(path) > _MAX_DEPTH:
            return here, "is nested too deeply"
        if isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                found = problem(key)
                if found is not None:
                    return here, f"has a key that {found}"
                pending.append(((*here, key), inner))
        elif isinstance(item, list):
            pending.extend(((*here, index), inner) for index, inner in reversed(list(enumerate(item))))
        else:
            found = problem(item)
            if found is not None:
                return here, found
    return None


def _plainly_storable(value: Any) -> bool:
    """True when JSON's encoder, at C speed, shows every value storable: it refuses non-finite
    numbers (allow_nan=False), escapes NUL as \\u0000 and leaves lone surrogates for UTF-8 to
    refuse; fewer brackets than _MAX_DEPTH bound the depth. False means "look closer": the walk
    above then finds the value and says what is wrong (or finds nothing: a text holding the six
    characters \\u0000, a deep but fine value)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, check_circular=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return "\\u0000" not in text and text.count("[") + text.count("{") <= _MAX_DEPTH
