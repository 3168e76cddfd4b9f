"""What a file is, judged from its first bytes, never from the name or type the client declared;
and which types a browser may show inline without letting the file script the site."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import filetype

HEAD_BYTES = 8192  # how much of a file the sniffers look at

_HTML = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|script|iframe|h1|div|p|a|table)[\s>/]",
                   re.IGNORECASE | re.DOTALL)
_SVG = re.compile(rb"<svg[\s>]", re.IGNORECASE)
_XML = re.compile(rb"^\s*<\?xml", re.IGNORECASE)

# Types a browser renders without running anything: shown inline. Any other type (HTML, SVG, XML,
# anything unknown) is served as an attachment under `Content-Security-Policy: sandbox`.
INLINE_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp", "image/x-icon",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime", "audio/mpeg", "audio/ogg", "audio/wav",
    "audio/x-wav", "audio/webm", "audio/flac", "audio/x-flac", "audio/mp4", "audio/aac", "application/pdf",
    "text/plain",
})


def sniff(head: bytes) -> str:
    """The media type of a file whose first bytes (up to HEAD_BYTES) are `head`."""
    binary = filetype.guess_mime(head) if head else None
    if binary:
        return binary
    start = head.lstrip(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
    if _HTML.match(start):
        return "text/html"
    if _SVG.search(start) and (start.lstrip().startswith(b"<svg") or _XML.match(start) or b"<!DOCTYPE svg" in start):
        return "image/svg+xml"
    if _XML.match(start):
        return "application/xml"
    if _is_text(start):
        return "text/plain"
    return "application/octet-stream"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut by the end of the head
    return True


def allowed(media_type: str, patterns: tuple[str, ...]) -> bool:
    """Whether `media_type` matches one of the allowed patterns (`image/*`, `application/pdf`)."""
    return any(fnmatchcase(media_type, pattern.lower()) for pattern in patterns)


def served_inline(media_type: str) -> bool:
    return media_type in INLINE_TYPES
