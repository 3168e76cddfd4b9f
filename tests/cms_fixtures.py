"""Small builders for test data, going through the public GraphQL API like a client would."""

from __future__ import annotations

from modula_testing import GraphQLClient

CREATE_ROUTE = "mutation($input: CreateRouteInput!) { createRoute(input: $input) { id slug title } }"
CREATE_DATATYPE = """
mutation($input: CreateDatatypeInput!) {
  createDatatype(input: $input) { id label type fields { id label type required data } }
}"""
CREATE_CONTENT = """
mutation($input: CreateContentInput!) {
  createContent(input: $input) {
    id position status route { id slug } datatype { id label } parent { id }
    fields { id value field { id label type } }
  }
}"""

ARTICLE_FIELDS = [
    {"label": "Title", "type": "text", "required": True},
    {"label": "Body", "type": "richtext"},
    {"label": "Views", "type": "integer"},
    {"label": "Rating", "type": "number"},
    {"label": "Featured", "type": "boolean"},
    {"label": "Published on", "type": "date"},
    {"label": "Updated", "type": "datetime"},
    {"label": "Meta", "type": "json"},
    {"label": "Cover", "type": "media"},
    {"label": "Related", "type": "content"},
]


async def make_route(client: GraphQLClient, slug: str = "blog", title: str = "Blog") -> dict:
    return (await client.data(CREATE_ROUTE, {"input": {"slug": slug, "title": title}}))["createRoute"]


async def make_datatype(client: GraphQLClient, fields=None, label: str = "Article", type: str = "article") -> dict:
    payload = {"label": label, "type": type, "fields": ARTICLE_FIELDS if fields is None else fields}
    return (await client.data(CREATE_DATATYPE, {"input": payload}))["createDatatype"]


def field_ids(datatype: dict) -> dict[str, int]:
    return {f["label"]: f["id"] for f in datatype["fields"]}


async def make_content(client: GraphQLClient, route: dict, datatype: dict, values: dict[str, str] | None = None,
                       parent_id: int | None = None, status: str = "PUBLISHED") -> dict:
    """A node through createContent; published unless asked (new content is a draft by default, and
    tests read it as anonymous readers too)."""
    ids = field_ids(datatype)
    values = {"Title": "Hello"} if values is None else values
    payload = {
        "routeId": route["id"],
        "datatypeId": datatype["id"],
        "parentId": parent_id,
        "status": status,
        "fields": [{"fieldId": ids[label], "value": value} for label, value in values.items()],
    }
    return (await client.data(CREATE_CONTENT, {"input": payload}))["createContent"]
