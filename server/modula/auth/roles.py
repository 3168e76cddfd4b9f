"""Roles and their permissions, as admins manage them: a permission lets a role do one action
(read, create, update, delete) on one resource (a core type or a plugin table), optionally only
on the rows a named row rule admits."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from modula.auth.viewer import ACTIONS
from modula.db.connection import Session
from modula.db.core_tables import permissions, roles, user_roles, users
from modula.db.errors import UniqueViolation
from modula.db.types import utcnow
from modula.errors import ModulaError, Problems, not_found

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# A core type or plugin table name, or a plugin's Lua operations (`plugin:shop`).
_RESOURCE = re.compile(r"^(plugin:)?[a-z][a-z0-9_]{0,127}$")
# `published`, `own`, or `own:<column>` for plugin tables.
_ROW_RULE = re.compile(r"^[a-z][a-z0-9_]{0,63}(:[a-z][a-z0-9_]{0,63})?$")


async def list_roles(session: Session) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(roles).order_by(roles.c.id))


async def create_role(session: Session, *, name: str, label: str) -> dict[str, Any]:
    problems = Problems()
    if not _NAME.match(name):
        problems.add("INVALID_VALUE", "a role name has lowercase letters, digits and _, starting with a letter", ("name",))
    if not label.strip() or len(label) > 255:
        problems.add("INVALID_VALUE", "a role needs a label of 1 to 255 characters", ("label",))
    problems.raise_if_any()
    try:
        async with session.transaction():
            return await session.insert(roles, {"name": name, "label": label.strip(), "builtin": False, "created_at": utcnow()})
    except UniqueViolation:
        raise ModulaError("CONFLICT", f"role {name!r} already exists", ("name",)) from None


async def list_permissions(session: Session, role: str) -> list[dict[str, Any]]:
    role_id = await _role_id(session, role)
    return await session.fetch_all(
        sa.select(sa.literal(role).label("role"), permissions.c.resource, permissions.c.action, permissions.c.row_rule)
        .where(permissions.c.role_id == role_id)
        .order_by(permissions.c.resource, permissions.c.action)
    )


async def grant_permission(session: Session, *, role: str, resource: str, action: str,
                           row_rule: str | None = None) -> dict[str, Any]:
    """Let `role` do `action` on `resource`; granting an existing pair again replaces its row rule."""
    problems = Problems()
    if not _RESOURCE.match(resource):
        problems.add("INVALID_VALUE", "a resource is a core type (site, route, datatype, content, media), a plugin table name or plugin:<name>",
                     ("resource",))
    if action not in ACTIONS:
        problems.add("INVALID_VALUE", f"the action is one of {', '.join(ACTIONS)}", ("action",))
    if row_rule is not None and not _ROW_RULE.match(row_rule):
        problems.add("INVALID_VALUE", "a row rule is 'published', 'own' or 'own:<column>'", ("rowRule",))
    problems.raise_if_any()
    async with session.transaction():
        role_id = await _role_id(session, role)
        match = (permissions.c.role_id == role_id, permissions.c.resource == resource, permissions.c.action == action)
        if not await session.execute(permissions.update().where(*match).values(row_rule=row_rule)):
            await session.insert(permissions, {"role_id": role_id, "resource": resource, "action": action,
                                               "row_rule": row_rule, "created_at": utcnow()})
    return {"role": role, "resource": resource, "action": action, "row_rule": row_rule}


async def revoke_permission(session: Session, *, role: str, resource: str, action: str) -> bool:
    """Take a permission away; False when the role did not have it."""
    async with session.transaction():
        role_id = await _role_id(session, role)
        return await session.execute(permissions.delete().where(
            permissions.c.role_id == role_id, permissions.c.resource == resource, permissions.c.action == action)) > 0


async def delete_role(session: Session, name: str) -> None:
    """Delete a role and its permissions. Built-in roles stay; a role users hold is refused, naming
    them (take it away with setUserRoles first)."""
    async with session.transaction():
        role = await session.fetch_one(sa.select(roles.c.id, roles.c.builtin).where(roles.c.name == name))
        if role is None:
            raise not_found("role", repr(name), ("name",))
        if role["builtin"]:
            raise ModulaError("BUILTIN_ROLE", f"role {name!r} is built in and cannot be deleted", ("name",))
        holders = [row["username"] for row in await session.fetch_all(
            sa.select(users.c.username).join(user_roles, user_roles.c.user_id == users.c.id)
            .where(user_roles.c.role_id == role["id"]).order_by(users.c.username))]
        if holders:
            shown = ", ".join(repr(h) for h in holders[:5]) + (f" and {len(holders) - 5} more" if len(holders) > 5 else "")
            raise ModulaError("ROLE_IN_USE", f"role {name!r} is held by {len(holders)} user(s): {shown};"
                                             " take it away with setUserRoles first", ("name",))
        await session.execute(roles.delete().where(roles.c.id == role["id"]))  # its permissions cascade


async def _role_id(session: Session, name: str) -> int:
    role_id = await session.fetch_value(sa.select(roles.c.id).where(roles.c.name == name))
    if role_id is None:
        raise not_found("role", repr(name), ("role",))
    return role_id
