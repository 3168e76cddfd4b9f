"""File names as stored and put in URLs and headers: a client's name is a label, never a path."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

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


def content_disposition(name: str, *, inline: bool) -> str:
    """The Content-Disposition header for a stored name (RFC 6266): `filename*=UTF-8''…`, the name
    percent-encoded (RFC 8187, formerly 5987), which browsers prefer, after `filename="…"`, an ASCII
    fallback for older clients (accents dropped, other non-ASCII, quotes and backslashes as `_`)."""
    return (f"{'inline' if inline else 'attachment'}; filename=\"{ascii_fallback(name)}\"; "
            f"filename*=UTF-8''{quote(name, safe='')}")


def ascii_fallback(name: str) -> str:
    """`name` in printable ASCII that needs no escaping inside a quoted string: "café ünï.jpg" is "cafe uni.jpg"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in plain) or "file"
