"""Users: create one with its roles (the CLI and the createUser mutation both come here), find,
list, change roles, name and email, deactivate and activate, change a password, and log in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from modula.auth import passwords
from modula.auth import sessions as session_service
from modula.auth.viewer import ADMIN
from modula.db.connection import Session
from modula.db.core_tables import roles, user_roles, users
from modula.db.errors import UniqueViolation
from modula.db.types import utcnow
from modula.errors import ModulaError, Problems, not_found

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

PUBLIC_COLUMNS = [users.c.id, users.c.username, users.c.email, users.c.is_active, users.c.created_at, users.c.updated_at]


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < passwords.MIN_LENGTH:
        return f"a password needs at least {passwords.MIN_LENGTH} characters"
    if len(password) > passwords.MAX_LENGTH:
        return f"a password may have at most {passwords.MAX_LENGTH} characters"
    return None


async def create_user(session: Session, *, username: str, email: str, password: str | None,
                      roles: Sequence[str] = ()) -> dict[str, Any]:
    """Insert a user with an argon2id password hash and the given roles (which must exist).
    `password=None` makes a service account: it cannot log in and acts only through API tokens."""
    problems = Problems()
    if not _USERNAME.match(username):
        problems.add("INVALID_VALUE", "a username has 1 to 64 letters, digits or . _ @ -, starting with a letter or digit",
                     ("input", "username"))
    if not _EMAIL.match(email) or len(email) > 255:
        problems.add("INVALID_VALUE", f"{email!r} is not an email address", ("input", "email"))
    problem = password_problem(password) if password is not None else None
    if problem:
        problems.add("INVALID_VALUE", problem, ("input", "password"))
    problems.raise_if_any()
    password_hash = await passwords.hash_password_async(password) if password is not None else None
    now = utcnow()
    try:
        async with session.transaction():
            role_ids = await _role_ids(session, roles, ("input", "roles"))
            user = await session.fetch_one(
                users.insert()
                .values(username=username, email=email, password_hash=password_hash, is_active=True,
                        created_at=now, updated_at=now)
                .returning(*PUBLIC_COLUMNS)
            )
            await session.insert_rows(user_roles, [{"user_id": user["id"], "role_id": rid} for rid in role_ids])
    except UniqueViolation as exc:
        field = "email" if "email" in (exc.constraint or "") else "username"
        raise ModulaError("CONFLICT", f"a user with this {field} already exists", ("input", field)) from None
    return {**user, "roles": sorted(set(roles))}


async def find_user(session: Session, username: str) -> dict[str, Any] | None:
    """The user row (password hash included: for login only) or None."""
    return await session.fetch_one(sa.select(users).where(users.c.username == username))


async def get_user(session: Session, user_id: int) -> dict[str, Any] | None:
    """A user without the password hash, with its role names."""
    found = await list_users(session, user_ids=[user_id])
    return found[0] if found else None


async def list_users(session: Session, *, user_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Users by id, each with its sorted role names, in one statement."""
    statement = (
        sa.select(*PUBLIC_COLUMNS, roles.c.name.label("role"))
        .select_from(users.outerjoin(user_roles, user_roles.c.user_id == users.c.id)
                     .outerjoin(roles, roles.c.id == user_roles.c.role_id))
        .order_by(users.c.id, roles.c.name)
    )
    if user_ids is not None:
        statement = statement.where(users.c.id.in_(list(user_ids)))
    found: dict[int, dict[str, Any]] = {}
    for row in await session.fetch_all(statement):
        role = row.pop("role")
        user = found.setdefault(row["id"], {**row, "roles": []})
        if role is not None:
            user["roles"].append(role)
    return list(found.values())


async def set_user_roles(session: Session, user_id: int, role_names: Sequence[str]) -> dict[str, Any]:
    """Replace a user's roles. The last active admin cannot lose the admin role (nobody could
    manage the server any more)."""
    async with session.transaction():
        if await session.fetch_value(sa.select(users.c.id).where(users.c.id == user_id)) is None:
            raise not_found("user", user_id, ("userId",))
        role_ids = await _role_ids(session, role_names, ("roles",))
        if ADMIN not in role_names:
            if await _is_admin(session, user_id) and not await _other_active_admins(session, user_id):
                raise ModulaError("LAST_ADMIN", "this is the last administrator: make another user admin first", ("roles",))
        await session.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
        await session.insert_rows(user_roles, [{"user_id": user_id, "role_id": rid} for rid in role_ids])
        await session.execute(users.update().where(users.c.id == user_id).values(updated_at=utcnow()))
    user = await get_user(session, user_id)
    assert user is not None
    return user


def _identity_problems(problems: Problems, username: str | None, email: str | None, path: tuple) -> None:
    if username is not None and not _USERNAME.match(username):
        problems.add("INVALID_VALUE", "a username has 1 to 64 letters, digits or . _ @ -, starting with a letter or digit",
                     (*path, "username"))
    if email is not None and (not _EMAIL.match(email) or len(email) > 255):
        problems.add("INVALID_VALUE", f"{email!r} is not an email address", (*path, "email"))


async def update_user(session: Session, user_id: int, *, username: str | None = None,
                      email: str | None = None) -> dict[str, Any]:
    """Change a user's username and/or email (None: keep it)."""
    problems = Problems()
    _identity_problems(problems, username, email, ("set",))
    problems.raise_if_any()
    changes = {name: value for name, value in (("username", username), ("email", email)) if value is not None}
    try:
        async with session.transaction():
            await _existing(session, user_id)
            await session.execute(users.update().where(users.c.id == user_id).values(**changes, updated_at=utcnow()))
    except UniqueViolation as exc:
        field = "email" if "email" in (exc.constraint or "") else "username"
        raise ModulaError("CONFLICT", f"another user has this {field}", ("set", field)) from None
    user = await get_user(session, user_id)
    assert user is not None
    return user


async def set_active(session: Session, user_id: int, active: bool, *, acting_user_id: int | None) -> dict[str, Any]:
    """Deactivate (it can no longer log in, and its sessions and tokens open nothing) or activate a
    user. Nobody deactivates themselves, and the last active administrator stays active."""
    async with session.transaction():
        await _existing(session, user_id)
        if not active:
            if user_id == acting_user_id:
                raise ModulaError("INVALID_VALUE", "you cannot deactivate yourself: ask another administrator", ("id",))
            if await _is_admin(session, user_id) and not await _other_active_admins(session, user_id):
                raise ModulaError("LAST_ADMIN", "this is the last active administrator: make another user admin first", ("id",))
        await session.execute(users.update().where(users.c.id == user_id).values(is_active=active, updated_at=utcnow()))
    user = await get_user(session, user_id)
    assert user is not None
    return user


async def change_password(session: Session, user_id: int, *, old: str, new: str, keep_session: str | None) -> int:
    """Replace the user's password when `old` is it; every other session of the user ends (the one
    whose secret is `keep_session` stays). Returns how many sessions ended. API tokens stay valid:
    revoke them with revokeApiToken."""
    user = await session.fetch_one(sa.select(users.c.password_hash).where(users.c.id == user_id))
    if user is None or not await passwords.verify_password_async(user["password_hash"], old):
        raise ModulaError("WRONG_PASSWORD", "the old password is not right", ("oldPassword",))
    problem = password_problem(new)
    if problem:
        raise ModulaError("INVALID_VALUE", problem, ("newPassword",))
    password_hash = await passwords.hash_password_async(new)
    async with session.transaction():
        await session.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash,
                                                                                 updated_at=utcnow()))
        return await session_service.end_other_sessions(session, user_id, keep=keep_session)


async def replace_password_hash(session: Session, user_id: int, password_hash: str) -> None:
    async with session.transaction():
        await session.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash))


async def authenticate(session: Session, username: str, password: str) -> dict[str, Any] | None:
    """The active user whose password this is, or None: the same answer, after the same work,
    whether the user is missing, inactive, or the password is wrong. A hash made with older
    parameters is replaced on success."""
    user = await find_user(session, username)
    stored = user["password_hash"] if user is not None and user["is_active"] else None
    if not await passwords.verify_password_async(stored, password):
        return None
    assert user is not None and stored is not None
    if passwords.needs_rehash(stored):
        await replace_password_hash(session, user["id"], await passwords.hash_password_async(password))
    return user


async def _role_ids(session: Session, names: Sequence[str], path: tuple[str, ...]) -> list[int]:
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = await session.fetch_all(sa.select(roles.c.id, roles.c.name).where(roles.c.name.in_(wanted)))
    missing = sorted(set(wanted) - {row["name"] for row in rows})
    if missing:
        raise ModulaError("NOT_FOUND", f"no role named {', '.join(repr(m) for m in missing)}", path)
    return [row["id"] for row in rows]


async def _existing(session: Session, user_id: int) -> None:
    if await session.fetch_value(sa.select(users.c.id).where(users.c.id == user_id)) is None:
        raise not_found("user", user_id, ("id",))


async def _is_admin(session: Session, user_id: int) -> bool:
    return bool(await session.fetch_value(
        sa.select(sa.func.count()).select_from(user_roles.join(roles, roles.c.id == user_roles.c.role_id))
        .where(roles.c.name == ADMIN, user_roles.c.user_id == user_id)))


async def _other_active_admins(session: Session, user_id: int) -> int:
    return int(await session.fetch_value(
        sa.select(sa.func.count()).select_from(user_roles.join(roles, roles.c.id == user_roles.c.role_id)
                                               .join(users, users.c.id == user_roles.c.user_id))
        .where(roles.c.name == ADMIN, users.c.id != user_id, users.c.is_active.is_(True))) or 0)
