"""Reading, updating, deleting and moving content: the tree stays a tree and nothing is half-done."""

from __future__ import annotations

from cms_fixtures import field_ids, make_content, make_datatype, make_route

TREE = "query($id: Int!) { content(id: $id) { id position parent { id } children { id position } } }"
MOVE = "mutation($id: Int!, $parentId: Int, $position: Int) { moveContent(id: $id, parentId: $parentId, position: $position) { id position parent { id } } }"
UPDATE = "mutation($id: Int!, $fields: [FieldValueInput!]!) { updateContent(id: $id, fields: $fields) { id fields { value field { label } } } }"
DELETE = "mutation($id: Int!) { deleteContent(id: $id) { deletedIds } }"


async def _tree(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    root = await make_content(client, route, datatype, {"Title": "root"})
    a = await make_content(client, route, datatype, {"Title": "a"}, parent_id=root["id"])
    b = await make_content(client, route, datatype, {"Title": "b"}, parent_id=root["id"])
    c = await make_content(client, route, datatype, {"Title": "c"}, parent_id=root["id"])
    a1 = await make_content(client, route, datatype, {"Title": "a1"}, parent_id=a["id"])
    return route, datatype, root, a, b, c, a1


async def test_children_are_listed_in_position_order(client):
    _, _, root, a, b, c, _ = await _tree(client)
    node = (await client.data(TREE, {"id": root["id"]}))["content"]
    assert [(ch["id"], ch["position"]) for ch in node["children"]] == [(a["id"], 0), (b["id"], 1), (c["id"], 2)]


async def test_move_reorders_siblings_without_gaps(client):
    _, _, root, a, b, c, _ = await _tree(client)
    moved = (await client.data(MOVE, {"id": c["id"], "parentId": root["id"], "position": 0}))["moveContent"]
    assert moved["position"] == 0
    node = (await client.data(TREE, {"id": root["id"]}))["content"]
    assert [(ch["id"], ch["position"]) for ch in node["children"]] == [(c["id"], 0), (a["id"], 1), (b["id"], 2)]


async def test_move_to_another_parent_closes_the_old_gap(client):
    _, _, root, a, b, c, a1 = await _tree(client)
    await client.data(MOVE, {"id": b["id"], "parentId": a["id"]})
    root_node = (await client.data(TREE, {"id": root["id"]}))["content"]
    a_node = (await client.data(TREE, {"id": a["id"]}))["content"]
    assert [(ch["id"], ch["position"]) for ch in root_node["children"]] == [(a["id"], 0), (c["id"], 1)]
    assert [(ch["id"], ch["position"]) for ch in a_node["children"]] == [(a1["id"], 0), (b["id"], 1)]


async def test_move_under_own_descendant_is_refused_and_changes_nothing(client):
    _, _, root, a, _, _, a1 = await _tree(client)
    error = await client.error(MOVE, {"id": a["id"], "parentId": a1["id"]})
    assert error["extensions"]["code"] == "CYCLE"
    assert error["extensions"]["inputPath"] == ["parentId"]
    error = await client.error(MOVE, {"id": a["id"], "parentId": a["id"]})
    assert error["extensions"]["code"] == "CYCLE"
    node = (await client.data(TREE, {"id": a["id"]}))["content"]
    assert node["parent"]["id"] == root["id"] and node["position"] == 0


async def test_move_to_root_with_null_parent(client):
    _, _, root, a, _, _, _ = await _tree(client)
    moved = (await client.data(MOVE, {"id": a["id"], "parentId": None}))["moveContent"]
    assert moved["parent"] is None and moved["position"] == 1


async def test_delete_removes_the_subtree_and_its_values(client):
    _, _, root, a, b, c, a1 = await _tree(client)
    deleted = (await client.data(DELETE, {"id": a["id"]}))["deleteContent"]["deletedIds"]
    assert sorted(deleted) == sorted([a["id"], a1["id"]])
    assert await client.counts("content_data", "content_fields") == {"content_data": 3, "content_fields": 3}
    node = (await client.data(TREE, {"id": root["id"]}))["content"]
    assert [(ch["id"], ch["position"]) for ch in node["children"]] == [(b["id"], 0), (c["id"], 1)]


async def test_delete_unknown_content_is_not_found(client):
    error = await client.error(DELETE, {"id": 12345})
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_update_sets_replaces_and_clears_values(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    ids = field_ids(datatype)
    node = await make_content(client, route, datatype, {"Title": "old", "Views": "3"})
    updated = (await client.data(UPDATE, {"id": node["id"], "fields": [
        {"fieldId": ids["Title"], "value": "new"}, {"fieldId": ids["Views"], "value": None},
        {"fieldId": ids["Rating"], "value": "1.0"},
    ]}))["updateContent"]
    assert {f["field"]["label"]: f["value"] for f in updated["fields"]} == {"Title": "new", "Rating": "1"}
    assert await client.count("content_fields") == 2


async def test_bad_update_changes_nothing(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    ids = field_ids(datatype)
    node = await make_content(client, route, datatype, {"Title": "old", "Views": "3"})
    error = await client.error(UPDATE, {"id": node["id"], "fields": [
        {"fieldId": ids["Views"], "value": "4"}, {"fieldId": ids["Title"], "value": None},
    ]})
    assert error["extensions"]["code"] == "REQUIRED_FIELD_MISSING"
    assert error["extensions"]["inputPath"] == ["fields", 1, "value"]
    current = (await client.data("query($id: Int!) { content(id: $id) { fields { value } } }", {"id": node["id"]}))
    assert [f["value"] for f in current["content"]["fields"]] == ["old", "3"]
