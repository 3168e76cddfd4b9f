"""Concurrent writers: SQLite writes are serialised, so no request fails with "database is locked"."""

from __future__ import annotations

import asyncio

from cms_fixtures import CREATE_CONTENT, field_ids, make_datatype, make_route


async def test_concurrent_create_content_all_succeed(client):
    route = await make_route(client)
    datatype = await make_datatype(client)
    title = field_ids(datatype)["Title"]

    async def writer(n: int):
        results = []
        for i in range(5):
            results.append(await client.execute(CREATE_CONTENT, {"input": {
                "routeId": route["id"], "datatypeId": datatype["id"],
                "fields": [{"fieldId": title, "value": f"w{n}-{i}"}]}}))
        return results

    results = [r for batch in await asyncio.gather(*(writer(n) for n in range(8))) for r in batch]
    assert [r.get("errors") for r in results if r.get("errors")] == []
    assert await client.counts("content_data", "content_fields") == {"content_data": 40, "content_fields": 40}
    # Sibling positions stay unique even when the writes race.
    data = await client.data("{ contents(limit: 100) { position } }")
    assert sorted(n["position"] for n in data["contents"]) == list(range(40))
