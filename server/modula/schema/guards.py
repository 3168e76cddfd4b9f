"""Authorization at every node and edge: deny by default, allow what the viewer's roles grant.

A permission is (role, resource, action[, row rule]). Resources are core types (`site`, `route`,
`datatype`, `content`, `media`), plugin tables by name (`shop_products`), and a plugin's Lua
operations as `plugin:<name>` (`read` for its queries and fields, `update` for its mutations).
Row rules narrow what a permission covers: `published` (content whose status is published),
`own` (content the viewer authored) and, for plugin tables, `own:<column>` (rows whose `<column>`
holds the viewer's user id). Admins may do everything.
"""

from __future__ import annotations

from typing import Any

from modula.cms.content import Visibility
from modula.errors import ModulaError

NOTHING: dict = {"or": []}  # a filter no row matches


def forbidden(action: str, resource: str) -> ModulaError:
    return ModulaError("FORBIDDEN", f"not allowed to {action} {resource}")


def require(info: Any, action: str, resource: str) -> None:
    if not info.context.viewer.can(action, resource):
        raise forbidden(action, resource)


def require_admin(info: Any, what: str) -> None:
    if not info.context.viewer.is_admin:
        raise ModulaError("FORBIDDEN", f"only administrators may {what}")


def row_filter(info: Any, action: str, table: str) -> dict | None:
    """The filter a plugin-table permission adds (None: every row); raises when not allowed at all."""
    viewer = info.context.viewer
    require(info, action, table)
    rule = viewer.row_rule(action, table)
    if rule is None:
        return None
    alternatives = [_table_rule(part, viewer) for part in rule.split("|")]  # several roles: any of them
    return alternatives[0] if len(alternatives) == 1 else {"or": alternatives}


def _table_rule(rule: str, viewer: Any) -> dict:
    kind, _, column = rule.partition(":")
    if kind == "own" and column:
        return {column: {"eq": viewer.user_id}} if viewer.user_id is not None else NOTHING
    # A rule this table cannot honour grants nothing rather than everything.
    return NOTHING


def narrowed(where: dict | None, rule: dict | None) -> dict | None:
    if rule is None:
        return where
    return rule if where is None else {"and": [where, rule]}


def content_visible(info: Any, row: dict, action: str = "read") -> bool:
    """Whether one content row is covered by the viewer's `content` permission for `action`."""
    return viewer_sees_content(info.context.viewer, row, action)


def viewer_sees_content(viewer: Any, row: dict, action: str = "read") -> bool:
    """`content_visible` for a viewer outside GraphQL (the media server)."""
    if not viewer.can(action, "content"):
        return False
    rule = viewer.row_rule(action, "content")
    return rule is None or any(_content_rule(part, row, viewer) for part in rule.split("|"))


def _content_rule(rule: str, row: dict, viewer: Any) -> bool:
    if rule == "published":
        return row["status"] == "published"
    if rule == "own":
        return viewer.user_id is not None and row.get("author_id") == viewer.user_id
    return False


def content_visibility(info: Any, action: str = "read") -> Visibility | None:
    """The `Visibility` a content listing must apply (None: every node); raises when not allowed."""
    viewer = info.context.viewer
    require(info, action, "content")
    rule = viewer.row_rule(action, "content")
    if rule is None:
        return None
    parts = set(rule.split("|"))
    return Visibility(published="published" in parts, author_id=viewer.user_id if "own" in parts else None)


def require_content(info: Any, row: dict, action: str) -> None:
    """For a change to one node: the viewer's `content` permission must cover that node."""
    require(info, action, "content")
    if not content_visible(info, row, action):
        raise forbidden(action, f"content {row['id']}")
