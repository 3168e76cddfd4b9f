"""The core CMS tables as SQLAlchemy Core objects: what the typed services query.

The migrations under sql/ create these tables; a test checks that the migrated database and
this metadata agree, so the two cannot drift apart silently.
"""

from __future__ import annotations

import sqlalchemy as sa

from modula.db.types import UTCDateTime

metadata = sa.MetaData()


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime, nullable=False)


def _updated() -> sa.Column:
    return sa.Column("updated_at", UTCDateTime, nullable=False)


def _fk(name: str, target: str, *, nullable: bool = False, ondelete: str | None = None) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True)


roles = sa.Table(
    "roles",
    metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("builtin", sa.Boolean, nullable=False, server_default=sa.false()),
    _created(),
)

permissions = sa.Table(
    "permissions",
    metadata,
    _id(),
    _fk("role_id", "roles.id", ondelete="CASCADE"),
    sa.Column("resource", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("row_rule", sa.String(64), nullable=True),
    _created(),
    sa.UniqueConstraint("role_id", "resource", "action", name="uq_permissions_role_resource_action"),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
    _updated(),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role_id", sa.Integer, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True),
)

sites = sa.Table(
    "sites",
    metadata,
    _id(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("hostname", sa.String(255), nullable=True, unique=True),
    _created(),
    _updated(),
)

routes = sa.Table(
    "routes",
    metadata,
    _id(),
    _fk("site_id", "sites.id", nullable=True, ondelete="CASCADE"),
    sa.Column("slug", sa.String(255), nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    _created(),
    _updated(),
    sa.UniqueConstraint("site_id", "slug", name="uq_routes_site_slug"),
)

datatypes = sa.Table(
    "datatypes",
    metadata,
    _id(),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    _created(),
    _updated(),
)

fields = sa.Table(
    "fields",
    metadata,
    _id(),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("data", sa.Text, nullable=True),
    _created(),
    # The machine name (db/field_names.py); nullable only because SQLite cannot add a NOT NULL column.
    sa.Column("name", sa.String(63), nullable=True),
)

datatypes_fields = sa.Table(
    "datatypes_fields",
    metadata,
    _id(),
    _fk("datatype_id", "datatypes.id", ondelete="CASCADE"),
    _fk("field_id", "fields.id", ondelete="CASCADE"),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("datatype_id", "field_id", name="uq_datatypes_fields_pair"),
)

content_data = sa.Table(
    "content_data",
    metadata,
    _id(),
    _fk("route_id", "routes.id", ondelete="CASCADE"),
    _fk("datatype_id", "datatypes.id"),
    _fk("parent_id", "content_data.id", nullable=True, ondelete="CASCADE"),
    sa.Column("position", sa.Integer, nullable=False),
    _fk("author_id", "users.id", nullable=True, ondelete="SET NULL"),
    sa.Column("status", sa.String(16), nullable=False, server_default="published"),
    # Unique among siblings; tree_path: the slugs from the route's root down ("2026/hello").
    # Nullable in the database (added by 0016); every write sets both.
    sa.Column("slug", sa.String(128), nullable=True),
    sa.Column("tree_path", sa.Text, nullable=True),
    _created(),
    _updated(),
)

# Sibling order lookups (next position, gap closing) stay cheap as a route grows.
sa.Index("ix_content_data_siblings", content_data.c.route_id, content_data.c.parent_id, content_data.c.position)
# A node by its path: one lookup; also what keeps siblings' slugs apart.
sa.Index("ix_content_data_tree_path", content_data.c.route_id, content_data.c.tree_path, unique=True)

# One row per (content, field). `value` is the canonical text; `value_number` and `value_time`
# hold the same value typed, so filters and sorts compare 9 < 100 and dates as dates.
content_fields = sa.Table(
    "content_fields",
    metadata,
    _id(),
    _fk("content_data_id", "content_data.id", ondelete="CASCADE"),
    _fk("field_id", "fields.id"),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("value_number", sa.Float, nullable=True),
    sa.Column("value_time", UTCDateTime, nullable=True),
    sa.UniqueConstraint("content_data_id", "field_id", name="uq_content_fields_pair"),
)
sa.Index("ix_content_fields_field_number", content_fields.c.field_id, content_fields.c.value_number)
sa.Index("ix_content_fields_field_time", content_fields.c.field_id, content_fields.c.value_time)

media = sa.Table(
    "media",
    metadata,
    _id(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("mime_type", sa.String(128), nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("alt", sa.Text, nullable=True),
    _created(),
    sa.Column("content_hash", sa.String(64), nullable=True, index=True),  # sha-256 of the bytes, hex
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("folder", sa.String(255), nullable=True, index=True),
    _fk("uploader_id", "users.id", nullable=True, ondelete="SET NULL"),
)

media_dimensions = sa.Table(
    "media_dimensions",
    metadata,
    _id(),
    _fk("media_id", "media.id", ondelete="CASCADE"),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=True, index=True),
    sa.Column("mime_type", sa.String(128), nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
)

# The bytes of media when they live in the database (the `database` storage backend).
media_chunks = sa.Table(
    "media_chunks",
    metadata,
    sa.Column("content_hash", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    _id(),
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("last_access_at", UTCDateTime, nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.Text, nullable=True),
    _created(),
)

tokens = sa.Table(
    "tokens",
    metadata,
    _id(),
    _fk("user_id", "users.id", ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    _created(),
)

plugins = sa.Table(
    "plugins",
    metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("checksum", sa.String(128), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
    _updated(),
    # The schema generation that last recorded this plugin (sql/common/0011_plugin_files.sql).
    sa.Column("installed_generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tables_generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("source", sa.String(1024), nullable=False, server_default=""),
)

# The installed code of each plugin: plugin.json and its Lua files, as text, by relative path.
plugin_files = sa.Table(
    "plugin_files",
    metadata,
    sa.Column("plugin_id", sa.Integer, sa.ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("path", sa.String(255), primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
)

# A single row: bumped in the same transaction as every plugin change, so every server process
# sharing the database can rebuild to the same schema generation.
schema_state = sa.Table(
    "schema_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer, nullable=False),
)

# A single row whose counter moves (by triggers: sql/*/0009_auth_generation.sql) in the same
# transaction as every change to who a credential's viewer is or what they may do, so server
# processes that cache viewers know when to forget them.
auth_state = sa.Table(
    "auth_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

# The PostgreSQL login role of each plugin (see db/confinement.py). Never readable by plugins.
# Permissions a plugin's manifest proposes; they apply only once an admin approves them.
plugin_grant_requests = sa.Table(
    "plugin_grant_requests",
    metadata,
    sa.Column("plugin", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(64), primary_key=True),
    sa.Column("resource", sa.String(128), primary_key=True),
    sa.Column("action", sa.String(16), primary_key=True),
    sa.Column("row_rule", sa.String(64), nullable=True),
    sa.Column("requested_at", UTCDateTime, nullable=False),
)

plugin_roles = sa.Table(
    "plugin_roles",
    metadata,
    sa.Column("plugin", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(63), nullable=False),
    sa.Column("password", sa.String(128), nullable=False),
)

# Side effects delivered after their change committed (sql/*/0015_outbox.sql, modula/outbox/).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("plugin", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("locked_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    _created(),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
)
