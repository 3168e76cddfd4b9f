"""createContent: the coupled write, its validation, and that a bad request writes nothing."""

from __future__ import annotations

import pytest

from cms_fixtures import CREATE_CONTENT, field_ids, make_content, make_datatype, make_route

CONTENT_TABLES = ("content_data", "content_fields")


async def test_create_content_inserts_node_and_every_value_with_ids(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    values = {
        "Title": "Hello", "Body": "<p>Hi</p>", "Views": "0012", "Rating": "4.50", "Featured": "TRUE",
        "Published on": "2024-02-29", "Updated": "2024-05-01T14:00:00+02:00", "Meta": '{ "a" : [1, 2] }',
    }
    content = await make_content(client, route, datatype, values)

    assert isinstance(content["id"], int)
    assert content["route"]["slug"] == "blog" and content["datatype"]["id"] == datatype["id"]
    stored = {f["field"]["label"]: f["value"] for f in content["fields"]}
    assert stored == {
        "Title": "Hello", "Body": "<p>Hi</p>", "Views": "12", "Rating": "4.5", "Featured": "true",
        "Published on": "2024-02-29", "Updated": "2024-05-01T12:00:00Z", "Meta": '{"a":[1,2]}',
    }
    assert all(isinstance(f["id"], int) for f in content["fields"])
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 1, "content_fields": 8}


async def test_values_are_stored_typed_so_numbers_and_dates_compare_correctly(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    for views in ("9", "100", "20"):
        await make_content(client, route, datatype, {"Title": views, "Views": views, "Updated": f"2024-01-{int(views) % 28 + 1:02d}T00:00:00Z"})
    import sqlalchemy as sa
    from modula.db.core_tables import content_fields as cf

    views_id = field_ids(datatype)["Views"]
    async with client.database.session() as session:
        rows = await session.fetch_all(
            sa.select(cf.c.value).where(cf.c.field_id == views_id).order_by(cf.c.value_number)
        )
        later = await session.fetch_all(
            sa.select(cf.c.value).where(cf.c.field_id == field_ids(datatype)["Updated"]).order_by(cf.c.value_time.desc())
        )
    assert [r["value"] for r in rows] == ["9", "20", "100"]
    assert [r["value"] for r in later] == ["2024-01-21T00:00:00Z", "2024-01-17T00:00:00Z", "2024-01-10T00:00:00Z"]


async def test_references_to_media_and_content_must_exist(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    first = await make_content(client, route, datatype)
    second = await make_content(client, route, datatype, {"Title": "B", "Related": str(first["id"])})
    assert {f["field"]["label"]: f["value"] for f in second["fields"]}["Related"] == str(first["id"])


BAD_INPUTS = [
    # (description, values by label or raw override, expected code, expected input path)
    ("integer", {"Title": "x", "Views": "12.5"}, "INVALID_VALUE", ["input", "fields", 1, "value"]),
    ("number", {"Title": "x", "Rating": "abc"}, "INVALID_VALUE", ["input", "fields", 1, "value"]),
    ("boolean", {"Title": "x", "Featured": "yes"}, "INVALID_VALUE", ["input", "fields", 1, "value"]),
    ("date", {"Title": "x", "Published on": "2023-02-29"}, "INVALID_VALUE", ["input", "fields", 1, "value"]),
    ("datetime", {"Title": "x", "Updated": "yesterday"}, "INVALID_VALUE", ["input", "fields", 1, "value"]),
    ("json", {"Title": "x", "Meta": "{oops"}, "INVALID_VALUE", ["input", "fields", 1, "value"]),
    ("media reference", {"Title": "x", "Cover": "999"}, "NOT_FOUND", ["input", "fields", 1, "value"]),
    ("content reference", {"Title": "x", "Related": "999"}, "NOT_FOUND", ["input", "fields", 1, "value"]),
    ("required missing", {"Views": "1"}, "REQUIRED_FIELD_MISSING", ["input", "fields"]),
    ("required null", {"Title": None}, "REQUIRED_FIELD_MISSING", ["input", "fields", 0, "value"]),
    ("required empty", {"Title": "  "}, "REQUIRED_FIELD_MISSING", ["input", "fields", 0, "value"]),
]


@pytest.mark.parametrize("case, values, code, path", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_value_is_reported_at_its_path_and_nothing_is_written(client, case, values, code, path):
    route = await make_route(client)
    datatype = await make_datatype(client)
    await make_content(client, route, datatype)  # existing data must stay untouched
    before = await client.counts(*CONTENT_TABLES)
    ids = field_ids(datatype)
    payload = {
        "routeId": route["id"], "datatypeId": datatype["id"],
        "fields": [{"fieldId": ids[label], "value": value} for label, value in values.items()],
    }
    error = await client.error(CREATE_CONTENT, {"input": payload})

    assert error["extensions"]["code"] == code
    assert error["extensions"]["inputPath"] == path
    assert error["path"] == ["createContent"]
    assert await client.counts(*CONTENT_TABLES) == before


async def test_fourth_bad_value_points_at_fields_3_value(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    ids = field_ids(datatype)
    fields = [{"fieldId": ids["Title"], "value": "t"}, {"fieldId": ids["Body"], "value": "b"},
              {"fieldId": ids["Views"], "value": "1"}, {"fieldId": ids["Rating"], "value": "NaN"}]
    error = await client.error(CREATE_CONTENT, {"input": {"routeId": route["id"], "datatypeId": datatype["id"], "fields": fields}})
    assert error["extensions"]["inputPath"] == ["input", "fields", 3, "value"]
    assert error["message"].startswith("input.fields[3].value:")
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}


async def test_field_of_another_datatype_is_refused(client):
    route = await make_route(client)
    article = await make_datatype(client)
    other = await make_datatype(client, [{"label": "Name", "type": "text"}], label="Other", type="other")
    fields = [{"fieldId": field_ids(article)["Title"], "value": "t"}, {"fieldId": field_ids(other)["Name"], "value": "n"}]
    error = await client.error(CREATE_CONTENT, {"input": {"routeId": route["id"], "datatypeId": article["id"], "fields": fields}})
    assert error["extensions"]["code"] == "UNKNOWN_FIELD"
    assert error["extensions"]["inputPath"] == ["input", "fields", 1, "fieldId"]
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}


async def test_same_field_twice_is_refused(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    title = field_ids(datatype)["Title"]
    fields = [{"fieldId": title, "value": "a"}, {"fieldId": title, "value": "b"}]
    error = await client.error(CREATE_CONTENT, {"input": {"routeId": route["id"], "datatypeId": datatype["id"], "fields": fields}})
    assert error["extensions"]["code"] == "DUPLICATE_FIELD"
    assert error["extensions"]["inputPath"] == ["input", "fields", 1, "fieldId"]
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}


@pytest.mark.parametrize("override, code, path", [
    ({"routeId": 999}, "NOT_FOUND", ["input", "routeId"]),
    ({"datatypeId": 999}, "NOT_FOUND", ["input", "datatypeId"]),
    ({"parentId": 999}, "NOT_FOUND", ["input", "parentId"]),
    ({"slug": "Not a slug"}, "INVALID_VALUE", ["input", "slug"]),
], ids=["route", "datatype", "parent", "slug"])
async def test_unknown_references_are_refused_and_nothing_is_written(client, override, code, path):
    route = await make_route(client)
    datatype = await make_datatype(client)
    payload = {"routeId": route["id"], "datatypeId": datatype["id"],
               "fields": [{"fieldId": field_ids(datatype)["Title"], "value": "t"}], **override}
    error = await client.error(CREATE_CONTENT, {"input": payload})
    assert (error["extensions"]["code"], error["extensions"]["inputPath"]) == (code, path)
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}


async def test_a_status_outside_the_enum_is_refused_by_graphql_and_nothing_is_written(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    payload = {"routeId": route["id"], "datatypeId": datatype["id"], "status": "secret",
               "fields": [{"fieldId": field_ids(datatype)["Title"], "value": "t"}]}
    error = await client.error(CREATE_CONTENT, {"input": payload})
    assert "ContentStatus" in error["message"] and ".status" in error["message"]
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}


async def test_parent_on_another_route_is_refused(client):
    blog = await make_route(client)
    docs = await make_route(client, "docs", "Docs")
    datatype = await make_datatype(client)
    parent = await make_content(client, blog, datatype)
    payload = {"routeId": docs["id"], "datatypeId": datatype["id"], "parentId": parent["id"],
               "fields": [{"fieldId": field_ids(datatype)["Title"], "value": "t"}]}
    error = await client.error(CREATE_CONTENT, {"input": payload})
    assert error["extensions"]["code"] == "INVALID_PARENT"
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 1, "content_fields": 1}


async def test_all_problems_are_listed_at_once(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    ids = field_ids(datatype)
    fields = [{"fieldId": ids["Views"], "value": "x"}, {"fieldId": 9999, "value": "1"}]
    error = await client.error(CREATE_CONTENT, {"input": {"routeId": route["id"], "datatypeId": datatype["id"], "fields": fields}})
    problems = error["extensions"]["problems"]
    assert [(p["code"], p["inputPath"]) for p in problems] == [
        ("INVALID_VALUE", ["input", "fields", 0, "value"]),
        ("UNKNOWN_FIELD", ["input", "fields", 1, "fieldId"]),
        ("REQUIRED_FIELD_MISSING", ["input", "fields"]),
    ]


async def test_failure_after_the_content_row_rolls_back_the_row(client, monkeypatch):
    """A database failure while inserting values must take the already inserted content_data row with it.
    On SQLite the values are a statement of their own; on PostgreSQL they are inserted by the node's
    statement (in a transaction, or in one call of modula_create_content), whose values part is made
    to break a foreign key here."""
    import sqlalchemy as sa

    from modula.cms import content as content_service

    route = await make_route(client)
    datatype = await make_datatype(client)

    async def broken_insert_values(session, content_id, stored):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(content_service, "_insert_values", broken_insert_values)
    broken = {root: sa.text(statement.text.replace("SELECT node.id, v.field_id", "SELECT node.id, v.field_id + 1000000"))
              for root, statement in content_service._INSERT_WITH_VALUES.items()}
    monkeypatch.setattr(content_service, "_INSERT_WITH_VALUES", broken)
    one_call = content_service._CREATE_IN_ONE_STATEMENT.text
    monkeypatch.setattr(content_service, "_CREATE_IN_ONE_STATEMENT", sa.text(one_call.replace(
        "CAST(:field_ids AS integer[])", "array(SELECT i + 1000000 FROM unnest(CAST(:field_ids AS integer[])) AS i)")))
    payload = {"routeId": route["id"], "datatypeId": datatype["id"],
               "fields": [{"fieldId": field_ids(datatype)["Title"], "value": "t"}]}
    error = await client.error(CREATE_CONTENT, {"input": payload})
    assert "disk on fire" not in error["message"]
    assert error["message"].startswith("Internal server error")
    assert await client.counts(*CONTENT_TABLES) == {"content_data": 0, "content_fields": 0}
