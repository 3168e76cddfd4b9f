"""Several upload fields in one GraphQL multipart request (aliases of uploadMedia, uploadMediaItems,
the operations of a batch) are all or nothing: when one fails, no media row and no bytes of any of
them remain on any backend, and each answer says which field failed and which were undone or never ran."""

from __future__ import annotations

import hashlib
import json

import pytest

from media_fixtures import (UPLOAD, Held, admin, backend, media_app, png, raw_multipart, s3_server,  # noqa: F401
                            storage_settings, upload)

FOUR = """mutation($a: Upload!, $items: [MediaUploadInput!]!, $b: Upload!, $c: Upload!) {
  a: uploadMedia(file: $a, alt: "first") { id name }
  both: uploadMediaItems(items: $items) { id name }
  b: uploadMedia(file: $b) { id name }
  c: uploadMedia(file: $c) { id name }
}"""
FOUR_VARIABLES = {"a": None, "items": [{"file": None}, {"file": None, "folder": "x"}], "b": None, "c": None}
FOUR_MAP = {"0": ["variables.a"], "1": ["variables.items.0.file"], "2": ["variables.items.1.file"],
            "3": ["variables.b"], "4": ["variables.c"]}
HTML = b"<!doctype html><script>alert(1)</script>"


def four_files(b: tuple[str, bytes, str]) -> dict[str, tuple[str, bytes, str]]:
    return {"0": ("a.png", png(color=(1, 0, 0)), "image/png"), "1": ("i0.png", png(color=(2, 0, 0)), "image/png"),
            "2": ("i1.png", png(color=(3, 0, 0)), "image/png"), "3": b, "4": ("c.png", png(color=(4, 0, 0)), "image/png")}


async def post(client, files, *, operations, mapping):
    data = {"operations": json.dumps(operations), "map": json.dumps(mapping)}
    return await client.http.post("/graphql", data=data, files=files)


async def test_upload_fields_of_one_request_are_all_or_nothing(admin, media_app, backend):
    response = await post(admin, four_files(("b.png", HTML, "image/png")),
                          operations={"query": FOUR, "variables": FOUR_VARIABLES}, mapping=FOUR_MAP)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    errors = {tuple(error["path"]): error for error in body["errors"]}
    assert set(errors) == {("a",), ("both",), ("b",), ("c",)}
    assert errors[("b",)]["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "inputPath": ["file"]}
    assert "text/html (declared as image/png)" in errors[("b",)]["message"]
    for name, field in (("a", "uploadMedia"), ("both", "uploadMediaItems")):
        assert errors[(name,)]["extensions"]["code"] == "UPLOAD_ROLLED_BACK"
        assert errors[(name,)]["message"] == (f"'{name}' ({field}) was uploaded, then undone: the uploads of one "
                                             "multipart request are all or nothing, and 'b' failed (UNSUPPORTED_MEDIA_TYPE)")
    assert errors[("c",)]["message"].startswith("'c' (uploadMedia) was not run: ")
    assert await admin.counts("media", "media_dimensions") == {"media": 0, "media_dimensions": 0}
    assert await Held(media_app).nothing()  # no bytes of a, of the items or of their sizes, and nothing staged

    good = await post(admin, four_files(("b.png", png(color=(5, 0, 0)), "image/png")),
                      operations={"query": FOUR, "variables": FOUR_VARIABLES}, mapping=FOUR_MAP)
    data = good.json()["data"]
    assert [data["a"]["name"], *(m["name"] for m in data["both"]), data["b"]["name"], data["c"]["name"]] == \
        ["a.png", "i0.png", "i1.png", "b.png", "c.png"]
    assert await admin.count("media") == 5


async def test_undoing_a_request_keeps_the_bytes_other_media_hold(admin, media_app, backend):
    kept = await upload(admin, "kept.png", png(color=(9, 9, 9)))
    query = "mutation($a: Upload!, $b: Upload!) { a: uploadMedia(file: $a) { id } b: uploadMedia(file: $b) { id } }"
    response = await post(admin, {"0": ("again.png", png(color=(9, 9, 9)), "image/png"), "1": ("b.png", HTML, "image/png")},
                          operations={"query": query, "variables": {"a": None, "b": None}},
                          mapping={"0": ["variables.a"], "1": ["variables.b"]})
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNSUPPORTED_MEDIA_TYPE", "UPLOAD_ROLLED_BACK"]
    assert await admin.count("media") == 1
    assert kept["contentHash"] in await Held(media_app).digests()
    served = await admin.http.get(kept["url"])
    assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == kept["contentHash"]


@pytest.mark.parametrize("backend", ["filesystem"])  # one backend that writes outside the transaction is enough
async def test_the_operations_of_a_multipart_batch_are_one_unit(admin, media_app):
    operations = [{"query": UPLOAD, "variables": {"file": None}}, {"query": UPLOAD, "variables": {"file": None}}]
    response = await post(admin, {"0": ("a.png", png(), "image/png"), "1": ("b.png", HTML, "image/png")},
                          operations=operations, mapping={"0": ["0.variables.file"], "1": ["1.variables.file"]})
    first, second = response.json()
    assert first["data"] is None and first["errors"][0]["path"] == ["uploadMedia"]
    assert first["errors"][0]["message"].endswith("and 'uploadMedia' of operation 2 failed (UNSUPPORTED_MEDIA_TYPE)")
    assert [e["extensions"]["code"] for e in second["errors"]] == ["UNSUPPORTED_MEDIA_TYPE"]
    assert await admin.count("media") == 0
    assert await Held(media_app).nothing()


@pytest.mark.parametrize("backend", ["filesystem"])  # one backend is enough
async def test_a_multipart_mutation_may_select_only_uploads(admin, media_app):
    before = await upload(admin, "before.png", png(color=(7, 7, 7)))
    query = ("mutation($f: Upload!, $id: Int!) { ... on Mutation { uploadMedia(file: $f) { id } } "
             "updateMedia(id: $id, alt: \"changed\") { id } }")
    response = await post(admin, {"0": ("a.png", png(), "image/png")},
                          operations={"query": query, "variables": {"f": None, "id": before["id"]}},
                          mapping={"0": ["variables.f"]})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UPLOADS_NOT_ALONE" and "not 'updateMedia'" in error["message"]
    assert "data" not in response.json()
    assert await admin.count("media") == 1
    assert (await admin.data("query($id: Int!) { media(id: $id) { alt } }", {"id": before["id"]}))["media"]["alt"] is None
    assert await Held(media_app).digests() == {before["contentHash"], *(await _size_hashes(media_app))}
    assert Held(media_app).staged() == []

    # __typename beside the uploads is fine, and so is a multipart request that carries no file.
    fine = await post(admin, {"0": ("a.png", png(), "image/png")},
                      operations={"query": "mutation($f: Upload!) { __typename uploadMedia(file: $f) { id } }",
                                  "variables": {"f": None}}, mapping={"0": ["variables.f"]})
    assert fine.json()["data"]["__typename"] == "Mutation"
    update = json.dumps({"query": f'mutation {{ updateMedia(id: {before["id"]}, alt: "x") {{ alt }} }}'})
    body, headers = raw_multipart([("operations", None, update.encode()), ("map", None, b"{}")])
    no_file = await admin.http.post("/graphql", content=body, headers=headers)
    assert no_file.json()["data"] == {"updateMedia": {"alt": "x"}}


async def _size_hashes(app) -> set[str]:
    import sqlalchemy as sa

    async with app.state.database.session() as session:
        return {r["content_hash"] for r in await session.fetch_all(sa.text("SELECT content_hash FROM media_dimensions"))}
