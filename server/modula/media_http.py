"""Serving media: `GET /media/<id>/<filename>` (and `/media/<id>/<size>/<filename>` for a named image
size) streams the stored bytes with their stored type and length.

Caching: the ETag is the content hash (strong: the bytes under a URL never change); a URL that
carries the hash (`?v=`, as the API hands them out) is `immutable` for a year, `public` when an
anonymous visitor may read it and `private` otherwise; without it, caches revalidate.
If-None-Match answers 304; a single `Range: bytes=` answers 206 (416 when it is past the end),
honouring If-Range, so video and audio seek. A type a browser could run as a page (HTML, SVG,
anything not known to be inert) is sent as an attachment under `Content-Security-Policy: sandbox`,
and `X-Content-Type-Options: nosniff` always, so an upload cannot script the site.

Who may read: a viewer granted `read` on `media`, or one who may read a content node that uses the
item. Anyone else gets 404, as for an item that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from modula.auth.viewer import AuthenticationError, Viewer, anonymous_viewer, resolve_viewer
from modula.cms import media
from modula.media.names import content_disposition
from modula.media.sniffing import served_inline
from modula.schema.guards import viewer_sees_content

YEAR = 31536000
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def media_endpoint(request: Request) -> Response:
    state = request.app.state
    media_id = request.path_params["media_id"]
    size_name = request.path_params.get("size")
    async with state.database.session() as session:
        try:
            viewer = await resolve_viewer(session, request, settings=state.settings, cache=state.schemas.viewers)
        except AuthenticationError as exc:
            return JSONResponse({"error": exc.message}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        row = await media.find_media(session, media_id)
        if row is None or row["name"] != request.path_params["filename"] or row["content_hash"] is None:
            return _not_found()
        if not await _readable(session, viewer, row):
            return _not_found()
        # Shared caches may keep what any visitor may read, and nothing else.
        anonymous_may = not viewer.is_authenticated or await _readable(session, await anonymous_viewer(session), row)
        if size_name is not None:
            dimension = await media.find_dimension(session, media_id, size_name)
            if dimension is None or dimension["content_hash"] is None:
                return _not_found()
            digest, size, media_type = dimension["content_hash"], dimension["size_bytes"], dimension["mime_type"]
        else:
            digest, size, media_type = row["content_hash"], row["size_bytes"], row["mime_type"]

    media_type = media_type or "application/octet-stream"
    etag = f'"{digest}"'
    hashed = request.query_params.get("v") == digest[:16]
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": (f"{'public' if anonymous_may else 'private'}, max-age={YEAR}, immutable" if hashed
                          else f"{'public' if anonymous_may else 'private'}, no-cache"),
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(row["name"], inline=served_inline(media_type)),
    }
    if not served_inline(media_type):
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)

    start, end, status = 0, size, 200
    wanted = request.headers.get("range")
    if wanted is not None and request.headers.get("if-range", etag) == etag:
        found = _byte_range(wanted, size)
        if found is False:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        if found is not None:
            start, end, status = found[0], found[1], 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    headers["Content-Type"] = media_type
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_bytes(state, digest, start, end), status_code=status, headers=headers)


async def _bytes(state, digest: str, start: int, end: int) -> AsyncIterator[bytes]:
    async for piece in state.media_storage.read(state.database, digest, start, end):
        yield piece


async def _readable(session, viewer: Viewer, row: dict) -> bool:
    if viewer.can("read", "media"):
        return True
    return any(viewer_sees_content(viewer, node) for node in await media.content_using(session, row["id"]))


def _not_found() -> Response:
    return JSONResponse({"error": "no such media"}, status_code=404)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _byte_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end) of a single `bytes=` range, None to ignore the header (several ranges, another
    unit, nonsense: the whole file is sent), False when it cannot be satisfied (416)."""
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        return (max(size - suffix, 0), size) if suffix and size else False
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if first >= size:
        return False
    if last < first:
        return None
    return first, min(last, size - 1) + 1


