"""Applies the core schema migrations under sql/ in order, once, on either dialect.

sql/common/ holds files that are the same for both dialects, sql/<dialect>/ the ones that must
differ; files are applied by name order across both, each in its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from modula.db import content_paths, field_names, stored_datetimes
from modula.db.connection import Session
from modula.db.types import UTCDateTime, utcnow
from modula.resources import resource_dir

schema_migrations = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.String(255), primary_key=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

# Any constant works; it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = 74_211_001
# Data changes SQL cannot express, run in the transaction of the migration they follow.
_DATA_STEPS = {"0010_field_names": field_names.backfill, "0014_canonical_datetimes": stored_datetimes.rewrite,
               "0016_content_paths": content_paths.backfill}


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path


def pending_files(dialect: str, sql_dir: Path | None = None) -> list[Migration]:
    root = sql_dir or resource_dir("sql")
    found: dict[str, Path] = {}
    for folder in (root / "common", root / dialect):
        if folder.is_dir():
            for path in folder.glob("*.sql"):
                if path.stem in found:
                    raise RuntimeError(f"migration {path.stem} exists twice: {found[path.stem]} and {path}")
                found[path.stem] = path
    return [Migration(version, found[version]) for version in sorted(found)]


async def migrate(session: Session, *, sql_dir: Path | None = None, progress=None) -> list[str]:
    """Apply every migration not yet applied; returns the versions applied now."""
    ddl = sa.schema.CreateTable(schema_migrations, if_not_exists=True)
    async with session.transaction():
        # Under the lock: two PostgreSQL servers creating the table at once both pass IF NOT EXISTS
        # and one fails on pg_type's unique index (replicas started together on a fresh database).
        await _lock(session)
        await session.execute(ddl)
    applied_now: list[str] = []
    for migration in pending_files(session.dialect, sql_dir):
        async with session.transaction():
            await _lock(session)
            done = await session.fetch_value(
                sa.select(schema_migrations.c.version).where(schema_migrations.c.version == migration.version)
            )
            if done:
                continue
            if progress:
                progress(migration.version)
            await session.execute_script(migration.path.read_text())
            if migration.version in _DATA_STEPS:
                await _DATA_STEPS[migration.version](session)
            await session.execute(
                schema_migrations.insert().values(version=migration.version, applied_at=utcnow())
            )
            applied_now.append(migration.version)
    return applied_now


async def unapplied(session: Session, *, sql_dir: Path | None = None) -> list[str]:
    """The versions of the migrations this code has that the database has not applied."""
    applied = {row["version"] for row in await session.fetch_all(sa.select(schema_migrations.c.version))}
    return [m.version for m in pending_files(session.dialect, sql_dir) if m.version not in applied]


async def _lock(session: Session) -> None:
    """Migrations one process at a time, to the end of the transaction (SQLite: BEGIN IMMEDIATE is it)."""
    if session.dialect == "postgresql":
        await session.fetch_all(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
