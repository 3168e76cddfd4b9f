"""Page sizes: a default when none is asked for, a maximum that is an error to exceed (not a silent cut)."""

from __future__ import annotations

import base64

from modula.config import Settings
from modula.errors import ModulaError


def page(settings: Settings, limit: int | None, offset: int | None, *, names: tuple[str, str] = ("limit", "offset")) -> tuple[int, int]:
    size = min(settings.default_page_size, settings.max_page_size) if limit is None else limit
    if size < 0:
        raise ModulaError("INVALID_VALUE", f"{names[0]} must be 0 or more", (names[0],))
    if size > settings.max_page_size:
        raise ModulaError("PAGE_SIZE_EXCEEDED", f"{names[0]} may be at most {settings.max_page_size}", (names[0],))
    if offset is not None and offset < 0:
        raise ModulaError("INVALID_VALUE", f"{names[1]} must be 0 or more", (names[1],))
    return size, offset or 0


# Cursors are opaque to clients; inside they are positions in the ordered result.
def cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode()


def position(cursor_text: str | None, argument: str = "after") -> int:
    """The position just after the row `cursor_text` names (0 without a cursor)."""
    if cursor_text is None:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor_text.encode()).decode().partition(":")
        if kind == "pos" and number.isdigit():
            return int(number) + 1
    except ValueError:
        pass
    raise ModulaError("INVALID_CURSOR", "not a cursor this API gave out", (argument,))
