"""Serving media under /media/: the headers a browser and a cache see (type, length, ETag, caching),
conditional and range requests, types that must never run as a page, and who may read what."""

from __future__ import annotations

import pytest
import os

from cms_fixtures import field_ids, make_datatype, make_route
from media_fixtures import PREFLIGHT, admin, backend, media_app, png, s3_server, storage_settings, upload  # noqa: F401
from modula_testing import GraphQLClient

SET_STATUS = "mutation($id: Int!, $s: ContentStatus!) { updateContent(id: $id, fields: [], status: $s) { id status } }"


async def test_the_original_is_served_with_its_type_length_and_a_strong_etag(admin, media_app, backend):
    # An MP4's ftyp box, then bytes: past the database backend's first chunk there.
    body = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(1024 * 1024 + 300_000)
    media = await upload(admin, "clip.mp4", body, "application/octet-stream")
    assert media["mimeType"] == "video/mp4"
    served = await admin.http.get(media["url"])
    assert served.status_code == 200 and served.content == body
    assert served.headers["content-type"] == "video/mp4"
    assert served.headers["content-length"] == str(len(body))
    assert served.headers["etag"] == f'"{media["contentHash"]}"'
    assert served.headers["cache-control"] == "private, max-age=31536000, immutable"  # only grantees may read it
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["accept-ranges"] == "bytes"
    unhashed = await admin.http.get(media["url"].split("?")[0])
    assert unhashed.headers["cache-control"] == "private, no-cache"


async def test_conditional_and_range_requests(admin, media_app, backend):
    body = b"".join(b"line %07d\n" % n for n in range(100_000))  # 1.3 MB: past the database backend's first chunk
    media = await upload(admin, "data.txt", body, "text/plain")
    assert media["mimeType"] == "text/plain"
    url, etag = media["url"], f'"{media["contentHash"]}"'

    not_modified = await admin.http.get(url, headers={"if-none-match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["etag"] == etag
    changed = await admin.http.get(url, headers={"if-none-match": '"something-else"'})
    assert changed.status_code == 200

    start = 1024 * 1024 - 10
    part = await admin.http.get(url, headers={"range": f"bytes={start}-{start + 19}"})
    assert part.status_code == 206 and part.content == body[start:start + 20]
    assert part.headers["content-range"] == f"bytes {start}-{start + 19}/{len(body)}"
    assert part.headers["content-length"] == "20"
    tail = await admin.http.get(url, headers={"range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == body[-5:]
    open_ended = await admin.http.get(url, headers={"range": f"bytes={len(body) - 3}-"})
    assert open_ended.content == body[-3:]
    past_the_end = await admin.http.get(url, headers={"range": f"bytes={len(body)}-"})
    assert past_the_end.status_code == 416 and past_the_end.headers["content-range"] == f"bytes */{len(body)}"
    stale = await admin.http.get(url, headers={"range": "bytes=0-9", "if-range": '"an-older-version"'})
    assert stale.status_code == 200 and stale.content == body
    head = await admin.http.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(body)) and head.content == b""


@pytest.mark.parametrize("backend", ["filesystem"])  # one backend is enough
async def test_a_named_size_is_served_like_the_original(admin, media_app):
    media = await upload(admin, "cat.png", png(400, 300))
    thumbnail = next(d for d in media["dimensions"] if d["name"] == "thumbnail")
    served = await admin.http.get(thumbnail["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content[:8] == b"\x89PNG\r\n\x1a\n" and "immutable" in served.headers["cache-control"]
    assert (await admin.http.get(f"/media/{media['id']}/huge/cat.png")).status_code == 404


async def test_a_webp_size_is_made_once_on_upload_and_served_as_webp(database_url, tmp_path):
    import io

    from PIL import Image

    from modula_testing import running_app, token_client

    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_dir=tmp_path / "m", upload_dir=tmp_path / "u",
                           media_sizes=("thumbnail:150x150:crop", "thumbnail-webp:150x150:crop:webp", "full-webp:4000x4000:webp")) as app, \
            token_client(app, "admin", roles=["admin"]) as client:
        media = await upload(client, "cat.png", png(400, 300))
        sizes = {d["name"]: d for d in media["dimensions"]}
        assert set(sizes) == {"thumbnail", "thumbnail-webp", "full-webp"}
        assert (sizes["thumbnail-webp"]["width"], sizes["thumbnail-webp"]["height"]) == (150, 150)
        assert (sizes["full-webp"]["width"], sizes["full-webp"]["height"]) == (400, 300)  # never larger than the original
        for name in ("thumbnail-webp", "full-webp"):
            served = await client.http.get(sizes[name]["url"])
            assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
            with Image.open(io.BytesIO(served.content)) as image:
                assert image.format == "WEBP" and image.size == (sizes[name]["width"], sizes[name]["height"])
        assert (await client.http.get(sizes["thumbnail"]["url"])).headers["content-type"] == "image/png"
        assert await client.count("media_dimensions") == 3


async def test_svg_and_html_are_never_served_as_a_page(database_url, tmp_path):
    from modula_testing import running_app, token_client

    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_dir=tmp_path / "m", upload_dir=tmp_path / "u",
                           media_types=("image/*", "text/html")) as app, \
            token_client(app, "admin", roles=["admin"]) as client:
        svg = await upload(client, "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                           "image/svg+xml")
        html = await upload(client, "page.png", b"<!DOCTYPE html><script>alert(document.cookie)</script>", "image/png")
        png_media = await upload(client, "cat.png", png())
        for media, media_type in ((svg, "image/svg+xml"), (html, "text/html")):
            served = await client.http.get(media["url"])
            assert served.headers["content-type"].startswith(media_type)
            assert served.headers["content-disposition"].startswith("attachment;")
            assert served.headers["content-security-policy"].startswith("sandbox")
        inline = await client.http.get(png_media["url"])
        assert inline.headers["content-disposition"].startswith("inline;")
        assert "content-security-policy" not in inline.headers


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_media_is_readable_through_the_content_that_uses_it(admin, media_app):
    media = await upload(admin, "cover.png", png())
    url = media["url"]
    route = await make_route(admin)
    datatype = await make_datatype(admin, fields=[{"label": "Title", "type": "text"}, {"label": "Cover", "type": "media"}])
    ids = field_ids(datatype)
    async with GraphQLClient.for_app(media_app) as anonymous:
        assert (await anonymous.http.get(url)).status_code == 404  # used by nothing: only media grantees

        created = await admin.data(
            "mutation($input: CreateContentInput!) { createContent(input: $input) { id } }",
            {"input": {"routeId": route["id"], "datatypeId": datatype["id"], "status": "DRAFT",
                       "fields": [{"fieldId": ids["Title"], "value": "Hi"}, {"fieldId": ids["Cover"], "value": str(media["id"])}]}})
        node = created["createContent"]["id"]
        assert (await anonymous.http.get(url)).status_code == 404  # a draft uses it

        await admin.data(SET_STATUS, {"id": node, "s": "PUBLISHED"})
        served = await anonymous.http.get(url)
        assert served.status_code == 200 and served.headers["cache-control"] == "public, max-age=31536000, immutable"
        # Anyone may read it now, so the administrator's copy may be cached publicly too.
        assert (await admin.http.get(url)).headers["cache-control"].startswith("public")
        assert (await anonymous.http.get(url.replace("cover.png", "other.png"))).status_code == 404


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_a_non_ascii_or_quoted_name_is_served_with_an_rfc_6266_disposition(admin, media_app):
    import json

    from media_fixtures import UPLOAD, raw_multipart

    accented = await upload(admin, "café ünï.png", png())
    assert accented["name"] == "café ünï.png"
    served = await admin.http.get(accented["url"])
    assert served.status_code == 200
    assert served.headers["content-disposition"] == \
        "inline; filename=\"cafe uni.png\"; filename*=UTF-8''caf%C3%A9%20%C3%BCn%C3%AF.png"

    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}}).encode()
    body, headers = raw_multipart([("operations", None, operations), ("map", None, b'{"0": ["variables.file"]}'),
                                   ("0", "it's \\\"ok\\\" 猫.png", png())])
    quoted = (await admin.http.post("/graphql", content=body, headers=headers)).json()["data"]["uploadMedia"]
    assert quoted["name"] == "it's _ok_ 猫.png"  # the double quotes never reach a header
    served = await admin.http.get(quoted["url"])
    assert served.status_code == 200
    assert served.headers["content-disposition"] == \
        "inline; filename=\"it's _ok_ _.png\"; filename*=UTF-8''it%27s%20_ok_%20%E7%8C%AB.png"
