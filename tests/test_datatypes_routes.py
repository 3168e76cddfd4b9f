"""Datatypes with their fields, routes and sites: created whole or not at all."""

from __future__ import annotations

from cms_fixtures import CREATE_DATATYPE, CREATE_ROUTE, make_datatype, make_route


async def test_create_datatype_writes_fields_and_join_rows_in_order(client):
    datatype = await make_datatype(client, [
        {"label": "Title", "type": "text", "required": True, "data": {"maxLength": 80}},
        {"label": "Price", "type": "number"},
    ], label="Product", type="product")
    assert [(f["label"], f["type"], f["required"]) for f in datatype["fields"]] == [("Title", "text", True), ("Price", "number", False)]
    assert datatype["fields"][0]["data"] == {"maxLength": 80}
    assert await client.counts("datatypes", "fields", "datatypes_fields") == {"datatypes": 1, "fields": 2, "datatypes_fields": 2}
    listed = await client.data("{ datatypes { id label } datatype(id: %d) { fields { label } } }" % datatype["id"])
    assert listed["datatypes"] == [{"id": datatype["id"], "label": "Product"}]
    assert [f["label"] for f in listed["datatype"]["fields"]] == ["Title", "Price"]


async def test_bad_field_type_writes_no_datatype(client):
    error = await client.error(CREATE_DATATYPE, {"input": {"label": "X", "type": "x", "fields": [
        {"label": "Ok", "type": "text"}, {"label": "Bad", "type": "colour"}]}})
    assert error["extensions"]["code"] == "INVALID_VALUE"
    assert error["extensions"]["inputPath"] == ["input", "fields", 1, "type"]
    assert await client.counts("datatypes", "fields", "datatypes_fields") == {"datatypes": 0, "fields": 0, "datatypes_fields": 0}


async def test_duplicate_field_labels_are_refused(client):
    error = await client.error(CREATE_DATATYPE, {"input": {"label": "X", "type": "x", "fields": [
        {"label": "Name", "type": "text"}, {"label": "name", "type": "text"}]}})
    assert error["extensions"]["code"] == "DUPLICATE_FIELD"
    assert await client.count("fields") == 0


async def test_routes_are_unique_and_found_by_slug(client):
    site = (await client.data('mutation { createSite(input: {name: "Main", hostname: "example.com"}) { id name hostname } }'))["createSite"]
    route = await make_route(client, "blog/news", "News")
    other = (await client.data(CREATE_ROUTE, {"input": {"slug": "blog/news", "title": "On site", "siteId": site["id"]}}))["createRoute"]
    assert other["id"] != route["id"]
    error = await client.error(CREATE_ROUTE, {"input": {"slug": "blog/news", "title": "Again"}})
    assert error["extensions"]["code"] == "CONFLICT"
    found = await client.data('{ route(slug: "blog/news") { id title site { id } } routes { id } sites { hostname } }')
    assert found["route"] == {"id": route["id"], "title": "News", "site": None}
    assert len(found["routes"]) == 2 and found["sites"] == [{"hostname": "example.com"}]
    assert await client.count("routes") == 2


async def test_bad_slug_and_unknown_site_are_refused(client):
    error = await client.error(CREATE_ROUTE, {"input": {"slug": "Not A Slug", "title": "x"}})
    assert (error["extensions"]["code"], error["extensions"]["inputPath"]) == ("INVALID_VALUE", ["input", "slug"])
    error = await client.error(CREATE_ROUTE, {"input": {"slug": "ok", "title": "x", "siteId": 77}})
    assert (error["extensions"]["code"], error["extensions"]["inputPath"]) == ("NOT_FOUND", ["input", "siteId"])
    assert await client.count("routes") == 0


async def test_duplicate_site_hostname_is_a_conflict(client):
    await client.data('mutation { createSite(input: {name: "A", hostname: "a.example"}) { id } }')
    error = await client.error('mutation { createSite(input: {name: "B", hostname: "a.example"}) { id } }')
    assert error["extensions"]["code"] == "CONFLICT"
    assert await client.count("sites") == 1
