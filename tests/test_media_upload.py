"""Uploading media with the GraphQL multipart request: what a client gets back, what the database and
each storage backend hold, and every bad request refused with nothing written."""

from __future__ import annotations

import pytest
import hashlib
import json

import sqlalchemy as sa

from media_fixtures import (PREFLIGHT, UPLOAD, UPLOAD_ITEMS, Held, admin, backend, jpeg, media_app, png,  # noqa: F401
                            post_upload, raw_multipart, s3_server, storage_settings, upload)
from modula_testing import GraphQLClient, running_app, signed_in_client, token_client


async def test_upload_records_an_image_with_its_sizes_and_stores_its_bytes(admin, media_app, backend):
    body = jpeg(640, 480)
    media = await upload(admin, "cat.jpg", body, "image/jpeg", alt="A cat", folder="pets")
    assert media["mimeType"] == "image/jpeg" and media["size"] == len(body)
    assert (media["width"], media["height"], media["alt"], media["folder"]) == (640, 480, "A cat", "pets")
    assert media["contentHash"] == hashlib.sha256(body).hexdigest()
    assert media["url"] == f"/media/{media['id']}/cat.jpg?v={media['contentHash'][:16]}"
    sizes = {d["name"]: (d["width"], d["height"], d["mimeType"]) for d in media["dimensions"]}
    assert sizes == {"thumbnail": (150, 150, "image/jpeg"), "medium": (640, 480, "image/jpeg")}

    served = await admin.http.get(media["url"])
    assert served.status_code == 200 and served.content == body
    thumbnail = await admin.http.get(media["dimensions"][0]["url"])
    assert thumbnail.headers["content-type"] == "image/jpeg" and thumbnail.content[:3] == b"\xff\xd8\xff"

    async with media_app.state.database.session() as session:
        row = await session.fetch_one(sa.text("SELECT name, mime_type, size_bytes, content_hash, uploader_id FROM media"))
        labels = await session.fetch_all(sa.text("SELECT label FROM media_dimensions ORDER BY id"))
    assert row["content_hash"] == media["contentHash"] and row["uploader_id"] is not None
    assert [r["label"] for r in labels] == ["thumbnail", "medium"]
    held = Held(media_app)
    assert media["contentHash"] in await held.digests()
    assert held.staged() == []  # the request's staged file is gone
    digest = media["contentHash"]
    storage = media_app.state.media_storage
    if backend == "database":
        assert await held.chunk_rows() >= 1
    elif backend == "filesystem":
        assert (storage.root / digest[:2] / digest[2:4] / digest).read_bytes() == body
    else:
        stored = storage.client.get_object(Bucket=storage.bucket, Key=storage.prefix + digest)
        assert stored["Body"].read() == body


async def test_the_same_bytes_uploaded_twice_are_stored_once(admin, media_app, backend):
    first = await upload(admin, "a.png", png())
    second = await upload(admin, "b.png", png())
    assert first["id"] != second["id"] and first["contentHash"] == second["contentHash"]
    digests = await Held(media_app).digests()
    # The original and its thumbnail (the medium size of a small PNG is the original's bytes again).
    assert digests == {first["contentHash"], (await _dimension_hashes(media_app))["thumbnail"]}
    if backend == "database":
        assert await Held(media_app).chunk_rows() == 2


async def _dimension_hashes(app) -> dict[str, str]:
    async with app.state.database.session() as session:
        rows = await session.fetch_all(sa.text("SELECT label, content_hash FROM media_dimensions"))
    return {r["label"]: r["content_hash"] for r in rows}


async def test_several_files_in_one_request_are_all_or_nothing(admin, media_app, backend):
    files = {"0": ("a.png", png(), "image/png"), "1": ("page.html", b"<!doctype html><script>alert(1)</script>",
                                                       "image/png")}
    variables = {"items": [{"file": None, "alt": "first"}, {"file": None}]}
    mapping = {"0": ["variables.items.0.file"], "1": ["variables.items.1.file"]}
    response = await post_upload(admin, files, query=UPLOAD_ITEMS, variables=variables, mapping=mapping)
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error["extensions"]["inputPath"] == ["items", 1, "file"]
    assert "text/html (declared as image/png)" in error["message"]
    assert await admin.counts("media", "media_dimensions") == {"media": 0, "media_dimensions": 0}
    assert await Held(media_app).nothing()

    files["1"] = ("b.png", png(color=(0, 0, 255)), "image/png")
    response = await post_upload(admin, files, query=UPLOAD_ITEMS, variables=variables, mapping=mapping)
    assert [m["name"] for m in response.json()["data"]["uploadMediaItems"]] == ["a.png", "b.png"]
    assert await admin.count("media") == 2


async def test_a_failure_after_the_bytes_were_stored_leaves_no_bytes(admin, media_app, backend, monkeypatch):
    from modula.cms import media as service

    async def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(service.Session, "insert_rows", broken)  # after the bytes, before the sizes
    response = await post_upload(admin, {"0": ("a.png", png(), "image/png")})
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await admin.count("media") == 0
    assert await Held(media_app).nothing()


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_the_type_comes_from_the_bytes_not_from_the_name_or_the_declared_type(admin, media_app):
    media = await upload(admin, "notes.txt", png(), "text/plain")
    assert (media["mimeType"], media["width"]) == ("image/png", 300)
    error = (await post_upload(admin, {"0": ("cat.png", b"<html><body>hi</body></html>", "image/png")})).json()["errors"][0]
    assert error["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "inputPath": ["file"]}
    assert "MODULA_MEDIA_TYPES" in error["message"]
    assert await admin.count("media") == 1


@pytest.mark.parametrize("backend", ["filesystem"])  # one backend is enough
async def test_a_hostile_file_name_is_stored_sanitised(admin, media_app, backend):
    hostile = "../../etc/\x00pass\x01wd" + "a" * 1000 + ".png"
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}}).encode()
    body, headers = raw_multipart([("operations", None, operations), ("map", None, b'{"0": ["variables.file"]}'),
                                   ("0", hostile, png())])
    media = (await admin.http.post("/graphql", content=body, headers=headers)).json()["data"]["uploadMedia"]
    name = media["name"]
    assert "/" not in name and "\x00" not in name and "\x01" not in name and not name.startswith(".")
    assert len(name) <= 120 and name.endswith(".png") and name.startswith("passwd")
    assert (await admin.http.get(media["url"])).status_code == 200
    if backend == "filesystem":
        root = media_app.state.media_storage.root
        assert sorted(p.name for p in root.iterdir()) == sorted({".staging", *(d[:2] for d in await Held(media_app).digests())})


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_a_corrupt_image_is_stored_without_dimensions(admin, media_app):
    corrupt = png()[:60] + b"\x00" * 200  # a PNG signature and header, then no image data
    media = await upload(admin, "broken.png", corrupt)
    assert (media["mimeType"], media["width"], media["height"], media["dimensions"]) == ("image/png", None, None, [])
    assert (await admin.http.get(media["url"])).content == corrupt


async def test_an_upload_over_the_limit_is_413_before_the_rest_is_read(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_dir=tmp_path / "media", upload_dir=tmp_path / "up",
                           max_upload_bytes=64 * 1024) as app, token_client(app, "admin", roles=["admin"]) as client:
        response = await post_upload(client, {"0": ("big.png", png() + b"\x00" * 200_000, "image/png")})
        assert response.status_code == 413
        assert "64 MiB" not in response.json()["errors"][0]["message"]
        assert "limit of 65536 bytes" in response.json()["errors"][0]["message"]

        # Streamed without a length: the server stops reading at the limit.
        pulled = []
        operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
        head = (b"--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n" + operations.encode()
                + b"\r\n--b\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\": [\"variables.file\"]}"
                + b"\r\n--b\r\nContent-Disposition: form-data; name=\"0\"; filename=\"x.bin\"\r\n\r\n")

        async def body():
            yield head
            for number in range(100):
                pulled.append(number)
                yield b"\x00" * 16384

        response = await client.http.post("/graphql", content=body(),
                                          headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413 and len(pulled) < 10
        assert await client.count("media") == 0
        assert await Held(app).nothing()


@pytest.mark.parametrize("backend", ["filesystem"])  # one backend is enough
async def test_malformed_multipart_requests_are_400_saying_what_is_wrong(admin, media_app):
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    cases = {
        "names file '1' but the request has no part named '1'":
            dict(data={"operations": operations, "map": json.dumps({"0": ["variables.file"], "1": ["variables.file"]})},
                 files={"0": ("a.png", png(), "image/png")}),
        "a file part 'extra' that 'map' does not name":
            dict(data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
                 files={"0": ("a.png", png(), "image/png"), "extra": ("b.png", png(), "image/png")}),
        "'map' path 'variables.nope'":
            dict(data={"operations": operations, "map": json.dumps({"0": ["variables.nope"]})},
                 files={"0": ("a.png", png(), "image/png")}),
        "the first part must be 'operations'":
            dict(data={"map": "{}", "operations": operations}, files={"0": ("a.png", png(), "image/png")}),
    }
    for expected, request in cases.items():
        response = await admin.http.post("/graphql", **request)
        assert response.status_code == 400, (expected, response.text)
        assert expected in response.json()["errors"][0]["message"]

    raw = {
        "'operations' part is not valid JSON": [("operations", None, b"{nope"), ("map", None, b"{}")],
        "has no 'map' part": [("operations", None, operations.encode())],
    }
    for expected, parts in raw.items():
        body, headers = raw_multipart(parts)
        response = await admin.http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400 and expected in response.json()["errors"][0]["message"], response.text

    body, headers = raw_multipart([("operations", None, operations.encode()), ("map", None, b'{"0": ["variables.file"]}'),
                                   ("0", "a.png", png())])
    truncated = await admin.http.post("/graphql", content=body[:-200], headers=headers)
    assert truncated.status_code == 400 and "truncated" in truncated.json()["errors"][0]["message"]
    assert await admin.count("media") == 0
    assert await Held(media_app).nothing()


async def test_more_files_than_the_limit_are_refused(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_dir=tmp_path / "media", upload_dir=tmp_path / "up",
                           max_upload_files=1) as app, token_client(app, "admin", roles=["admin"]) as client:
        response = await post_upload(client, {"0": ("a.png", png(), "image/png"), "1": ("b.png", png(), "image/png")},
                                     query=UPLOAD_ITEMS, variables={"items": [{"file": None}, {"file": None}]},
                                     mapping={"0": ["variables.items.0.file"], "1": ["variables.items.1.file"]})
        assert response.status_code == 400
        assert "more than 1 files" in response.json()["errors"][0]["message"]
        assert await client.count("media") == 0
        assert await Held(app).nothing()


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_uploading_needs_the_media_create_grant(media_app):
    async with GraphQLClient.for_app(media_app) as anonymous:
        anonymous.http.headers.update(PREFLIGHT)
        refused = (await post_upload(anonymous, {"0": ("a.png", png(), "image/png")})).json()["errors"][0]
    assert refused["extensions"]["code"] == "FORBIDDEN"
    async with signed_in_client(media_app, "vera", roles=["viewer"]) as viewer:
        viewer.http.headers.update(PREFLIGHT)  # a session cookie: the preflight header is required
        refused = (await post_upload(viewer, {"0": ("a.png", png(), "image/png")})).json()["errors"][0]
        assert refused["message"] == "not allowed to create media"
    async with signed_in_client(media_app, "eddie", roles=["editor"]) as editor:
        editor.http.headers.update(PREFLIGHT)
        assert (await upload(editor, "a.png"))["name"] == "a.png"
    assert Held(media_app).staged() == []
    async with media_app.state.database.session() as session:
        assert await session.fetch_value(sa.text("SELECT count(*) FROM media")) == 1


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_an_upload_value_sent_as_json_is_refused(admin):
    error = await admin.error(UPLOAD, {"file": "not a file"})
    assert error["extensions"]["code"] == "INVALID_VALUE" and "multipart" in error["message"]
