"""File names as stored and put in URLs: a client's name is a label, never a path."""

from __future__ import annotations

import unicodedata

MAX_NAME = 120  # characters
_UNSAFE = set('/\\:*?"<>|%#&;')


def safe_filename(raw: str | None) -> str:
    """The last segment of `raw` with control and format characters dropped, characters that mean
    something in a path or URL replaced by `_`, no leading dots, and at most MAX_NAME characters
    (the extension kept); "file" when nothing is left."""
    text = unicodedata.normalize("NFC", raw or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join("_" if c in _UNSAFE else c for c in text if unicodedata.category(c)[0] not in ("C",))
    kept = " ".join(kept.split()).lstrip(".").strip()
    if len(kept) > MAX_NAME:
        stem, dot, extension = kept.rpartition(".")
        extension = extension[:16] if dot and stem else ""
        kept = kept[:MAX_NAME - len(extension) - 1].rstrip() + "." + extension if extension else kept[:MAX_NAME]
    return kept or "file"
