"""Browsing and managing media through GraphQL: media(id:), mediaItems with filters, order and pages,
updateMedia, deleteMedia (refused while content uses it, force clearing those values, bytes gone
only when nothing else names them), and content's media fields resolving to Media, batched."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cms_fixtures import field_ids, make_datatype, make_route
from media_fixtures import Held, admin, backend, jpeg, media_app, png, s3_server, storage_settings, upload  # noqa: F401
from modula_testing import GraphQLClient, signed_in_client
from test_fast_path import statements_of

ITEMS = """query($where: MediaWhere, $order: [MediaOrderBy!], $limit: Int, $offset: Int) {
  mediaItems(where: $where, orderBy: $order, limit: $limit, offset: $offset) { name folder mimeType size }
}"""
CREATE = "mutation($input: CreateContentInput!) { createContent(input: $input) { id } }"
DELETE = "mutation($id: Int!, $force: Boolean!) { deleteMedia(id: $id, force: $force) { id clearedContentIds } }"


async def _article_using(client, route, datatype, media_id: int, title: str = "Hi") -> int:
    ids = field_ids(datatype)
    payload = {"routeId": route["id"], "datatypeId": datatype["id"],
               "fields": [{"fieldId": ids["Title"], "value": title}, {"fieldId": ids["Cover"], "value": str(media_id)}]}
    return (await client.data(CREATE, {"input": payload}))["createContent"]["id"]


async def _blog(client):
    route = await make_route(client)
    datatype = await make_datatype(client, fields=[{"label": "Title", "type": "text"}, {"label": "Cover", "type": "media"}])
    return route, datatype


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_media_items_filter_order_and_page(admin, media_app):
    await upload(admin, "a.png", png(10, 10), folder="pets")
    await upload(admin, "b.jpg", jpeg(400, 300), "image/jpeg", folder="pets")
    await upload(admin, "c.txt", b"plain words\n", "text/plain", folder="docs")
    data = await admin.data(ITEMS, {"where": {"folder": "pets"}, "order": [{"field": "SIZE", "direction": "DESC"}]})
    assert [m["name"] for m in data["mediaItems"]] == ["b.jpg", "a.png"]
    data = await admin.data(ITEMS, {"where": {"mimeType": "image/*"}, "order": [{"field": "NAME"}], "limit": 1, "offset": 1})
    assert data["mediaItems"] == [{"name": "b.jpg", "folder": "pets", "mimeType": "image/jpeg", "size": data["mediaItems"][0]["size"]}]
    data = await admin.data(ITEMS, {"where": {"mimeType": "text/plain"}})
    assert [m["name"] for m in data["mediaItems"]] == ["c.txt"]
    me = (await admin.data("{ me { id } }"))["me"]["id"]
    data = await admin.data(ITEMS, {"where": {"uploadedById": me, "createdAfter": "2000-01-01T00:00:00Z"}})
    assert len(data["mediaItems"]) == 3
    assert (await admin.data(ITEMS, {"where": {"uploadedById": me + 100}}))["mediaItems"] == []


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_reading_media_needs_the_media_read_grant(admin, media_app):
    media = await upload(admin, "a.png")
    async with GraphQLClient.for_app(media_app) as anonymous:
        error = await anonymous.error("query($id: Int!) { media(id: $id) { id } }", {"id": media["id"]})
    assert error["extensions"]["code"] == "FORBIDDEN"
    async with signed_in_client(media_app, "vera", roles=["viewer"]) as viewer:
        data = await viewer.data("query($id: Int!) { media(id: $id) { name url } }", {"id": media["id"]})
    assert data["media"] == {"name": "a.png", "url": media["url"]}


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_update_media_changes_only_what_it_names(admin, media_app):
    media = await upload(admin, "a.png", alt="old", folder="pets")
    update = "mutation($id: Int!, $alt: String, $folder: String) { updateMedia(id: $id, alt: $alt, folder: $folder) { alt folder } }"
    assert (await admin.data(update, {"id": media["id"], "alt": "A cat"}))["updateMedia"] == {"alt": "A cat", "folder": "pets"}
    cleared = await admin.data("mutation($id: Int!) { updateMedia(id: $id, folder: null) { alt folder } }", {"id": media["id"]})
    assert cleared["updateMedia"] == {"alt": "A cat", "folder": None}
    error = await admin.error(update, {"id": media["id"], "folder": "x" * 300})
    assert error["extensions"] == {"code": "INVALID_VALUE", "inputPath": ["folder"]}
    assert (await admin.error(update, {"id": 999, "alt": "x"}))["extensions"]["code"] == "NOT_FOUND"
    async with media_app.state.database.session() as session:
        row = await session.fetch_one(sa.text("SELECT alt, folder FROM media"))
    assert (row["alt"], row["folder"]) == ("A cat", None)


async def test_delete_media_is_refused_while_content_uses_it_and_force_clears_those_values(admin, media_app, backend):
    media = await upload(admin, "cover.png", png(), alt="cover")
    route, datatype = await _blog(admin)
    node = await _article_using(admin, route, datatype, media["id"])
    held = Held(media_app)
    before = await held.digests()

    error = await admin.error(DELETE, {"id": media["id"], "force": False})
    assert error["extensions"] == {"code": "MEDIA_IN_USE", "inputPath": ["id"]}
    assert f"content {node} (field 'Cover')" in error["message"]
    assert await admin.counts("media", "media_dimensions") == {"media": 1, "media_dimensions": 2}
    assert await held.digests() == before

    data = await admin.data(DELETE, {"id": media["id"], "force": True})
    assert data["deleteMedia"] == {"id": media["id"], "clearedContentIds": [node]}
    assert await admin.counts("media", "media_dimensions") == {"media": 0, "media_dimensions": 0}
    assert await held.digests() == set() and await held.chunk_rows() == 0
    fields = await admin.data("query($id: Int!) { content(id: $id) { fields { value field { label } } } }", {"id": node})
    assert fields["content"]["fields"] == [{"value": "Hi", "field": {"label": "Title"}}]
    assert (await admin.http.get(media["url"])).status_code == 404


async def test_deleting_one_of_two_uploads_of_the_same_bytes_keeps_the_bytes(admin, media_app, backend):
    first = await upload(admin, "a.png", png())
    second = await upload(admin, "b.png", png())
    await admin.data(DELETE, {"id": first["id"], "force": False})
    assert first["contentHash"] in await Held(media_app).digests()
    assert (await admin.http.get(second["url"])).content == png()


@pytest.mark.parametrize("backend", ["database"])  # the storage plays no part
async def test_content_media_fields_resolve_to_media_in_one_batch(admin, media_app):
    route, datatype = await _blog(admin)
    for number in range(6):
        media = await upload(admin, f"{number}.png", png(20 + number, 20))
        await _article_using(admin, route, datatype, media["id"], f"post {number}")
    query = "{ contents(limit: 10) { id fields { value media { name width url dimensions { name } } } } }"
    answer, statements = await statements_of(admin, query)
    covers = [next(f["media"] for f in node["fields"] if f["media"]) for node in answer["data"]["contents"]]
    assert [(c["name"], c["width"]) for c in covers] == [(f"{n}.png", 20 + n) for n in range(6)]
    assert all(field["media"] is None for node in answer["data"]["contents"] for field in node["fields"]
               if field["value"].startswith("post"))
    selects = [s for s in statements if "media" in s.lower()]
    assert len(selects) == 2  # one for the media rows, one for their sizes, whatever the node count

    _, with_two = await statements_of(admin, query.replace("limit: 10", "limit: 2"))
    assert len([s for s in with_two if "media" in s.lower()]) == 2
