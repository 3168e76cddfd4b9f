"""The status of a content node as a GraphQL enum, and the filter and order inputs over the
columns every content node has (`contents(where:)`, `descendants(where:)`, typed lists)."""

from __future__ import annotations

import enum

import strawberry

from modula.schema.filters import UNSET, DateTimeFilter, IntFilter, OrderDirection, StringFilter


@strawberry.enum(description="Whether a node is visible to readers who may see published content only.")
class ContentStatus(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


@strawberry.input(description="Compares a node's status.")
class ContentStatusFilter:
    eq: ContentStatus | None = UNSET
    neq: ContentStatus | None = UNSET
    in_: list[ContentStatus] | None = strawberry.field(default=UNSET, name="in")
    nin: list[ContentStatus] | None = UNSET


@strawberry.input(description="Which content nodes, on the columns every node has: every given condition must hold.")
class ContentFilter:
    id: IntFilter | None = UNSET
    status: ContentStatusFilter | None = UNSET
    slug: StringFilter | None = UNSET
    route_id: IntFilter | None = UNSET
    parent_id: IntFilter | None = UNSET
    datatype_id: IntFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    updated_at: DateTimeFilter | None = UNSET
    and_: list[ContentFilter] | None = strawberry.field(default=UNSET, name="and", description="all of these")
    or_: list[ContentFilter] | None = strawberry.field(default=UNSET, name="or", description="any of these")
    not_: ContentFilter | None = strawberry.field(default=UNSET, name="not", description="not this")


@strawberry.input(description="One column per item, e.g. [{createdAt: DESC}].")
class ContentOrderBy:
    id: OrderDirection | None = UNSET
    position: OrderDirection | None = UNSET
    status: OrderDirection | None = UNSET
    slug: OrderDirection | None = UNSET
    route_id: OrderDirection | None = UNSET
    created_at: OrderDirection | None = UNSET
    updated_at: OrderDirection | None = UNSET


FILTER_COLUMNS = {name: name for name in ("id", "status", "slug", "route_id", "parent_id", "datatype_id", "created_at",
                                          "updated_at")}
ORDER_COLUMNS = {name: name for name in ("id", "position", "status", "slug", "route_id", "created_at", "updated_at")}


def stored_status(status: ContentStatus | None) -> str | None:
    return None if status is None else status.value
