"""Settings: defaults, then environment variables, then command-line flags (applied by the CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///modula.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    plugins_dir: Path = field(default_factory=lambda: Path("plugins"))
    default_page_size: int = 100
    max_page_size: int = 1000
    debug: bool = False
    watch: bool = False  # reload a plugin when its files change (`modula serve --watch`)
    follow_interval: float = 1.0  # seconds between checks for plugin changes made by other processes
    # PostgreSQL: hear of other processes' changes at once on one LISTEN connection (the poll every
    # `follow_interval` stays, as the fallback); SQLite has no NOTIFY and follows by the poll alone.
    listen: bool = True
    # Keep viewers (token or session -> user, roles, permissions) in memory; a change to them made
    # by another process is seen within `follow_interval`, one made here at once.
    viewer_cache: bool = True
    session_ttl_seconds: int = 14 * 24 * 3600  # a login session ends after this long unused
    secure_cookies: bool | None = None  # None: Secure cookies when the request came over HTTPS
    # Request limits, checked before any resolver runs (page sizes: max_page_size above).
    max_query_depth: int = 12  # field levels; introspection fields count as one level
    max_aliases: int = 30
    max_tokens: int = 5000  # lexical tokens (and, separately, comments) in one GraphQL document
    max_document_bytes: int = 100 * 1024  # a GraphQL document longer than this is refused unparsed
    # An operation's estimated cost: the objects it may return, each list at its limit/first or the
    # default page size, nested lists multiplied, each Lua field call `lua_field_cost` (schema/cost.py).
    max_query_cost: int = 500_000
    lua_field_cost: int = 10
    max_batch: int = 10  # operations in one batched POST (a JSON array)
    max_body_bytes: int = 2 * 1024 * 1024  # a POST body larger than this is refused (413) unread
    # Production mode (`modula serve --production`): introspection and "Did you mean" suggestions
    # only for admins; internal errors are always masked, with a request id that is in the log.
    production: bool = False
    # Browser origins allowed to call the API, e.g. ("https://admin.example.com",); empty: no CORS
    # headers at all. Listed origins may send credentials (the session cookie). "*" allows every
    # origin but never with credentials: a browser then sends no cookie, so a page elsewhere
    # cannot act as the signed-in user.
    cors_origins: tuple[str, ...] = ()
    # Compile generated-API operations into one SQL statement each (schema/compiled); off
    # (MODULA_FAST_PATH=0), every operation runs through Strawberry's resolvers.
    fast_path: bool = True
    # `modula serve`: server processes sharing the listening socket (each a whole server on the one
    # database), and uvicorn's line per request (off: it costs a few percent of every request).
    workers: int = 1
    access_log: bool = False
    # `modula serve`'s log lines on stderr: `text` (the default) or `json`, one object per line with
    # time, level, logger, message and, where they apply, the request id, operation, status and
    # duration (request lines) or the plugin (its `log.*` and `print` lines).
    log_format: str = "text"
    # Database connections held open by each process: None is 4 on SQLite, 10 on PostgreSQL. A
    # plugin's role has its own pool on PostgreSQL, of `plugin_pool_size` connections at most.
    database_pool_size: int | None = None
    plugin_pool_size: int = 4
    # Budgets of plugin code (modula.lua.Limits): instructions and wall-clock seconds per call into
    # a plugin (init.lua, each handler, each hook; seconds include database and HTTP waits), memory
    # per plugin runtime, and the bounds on the C string functions hooks cannot interrupt.
    lua_instructions: int = 50_000_000
    lua_seconds: float = 5.0
    lua_memory_bytes: int = 64 * 1024 * 1024
    lua_max_string_op_input: int = 1_000_000
    lua_pattern_steps: int = 50_000_000
    # Media (uploads through GraphQL, served under /media/). Where the bytes live: `database` (a
    # table, so replicas on PostgreSQL need no shared disk), `filesystem` (under `media_dir`) or
    # `s3` (a bucket, settings below).
    media_storage: str = "database"
    media_dir: Path = field(default_factory=lambda: Path("media"))
    # The s3 backend: any S3-compatible store; keys left out come from boto3's usual chain.
    s3_bucket: str | None = None
    s3_prefix: str = ""  # put before every object's key (the sha-256), e.g. "media/"
    s3_endpoint_url: str | None = None  # None: AWS; e.g. http://127.0.0.1:9000 for MinIO
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # Where uploads are staged on local disk while they stream in: None is the system's temporary
    # folder (the filesystem backend always stages inside media_dir, so a file is renamed, not copied).
    upload_dir: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024  # a multipart request larger than this is refused (413) while streaming
    max_upload_files: int = 20  # files in one multipart request
    # Types an upload may have, as sniffed from its bytes (`type/*` allows a whole family).
    media_types: tuple[str, ...] = ("image/*", "video/*", "audio/*", "application/pdf", "text/plain")
    # Named sizes made of every image on upload: `name:WIDTHxHEIGHT[:crop][:webp]`, either side may
    # be left out (`medium:800x` is 800 wide); without crop the image fits inside the box; `:webp`
    # writes that size as WebP (a WebP variant beside the others: `medium-webp:800x:webp`).
    media_sizes: tuple[str, ...] = ("thumbnail:150x150:crop", "medium:800x")
    # The outbox (after-commit delivery, modula/outbox/): whether this process runs a worker, the
    # attempts before an entry is dead, the backoff before the second attempt (doubled after each
    # failure, up to the max), deliveries of one plugin at once, the lease a claimed entry is held
    # for (a killed worker's entries are delivered again after it) and the poll when idle.
    outbox_worker: bool = True
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: float = 1.0
    outbox_backoff_max_seconds: float = 300.0
    outbox_per_plugin: int = 4
    outbox_lease_seconds: float = 60.0
    outbox_poll_seconds: float = 0.25
    # /metrics in the Prometheus text format (modula/metrics.py); off: no such route.
    metrics: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls()
        url = env.get("MODULA_DATABASE_URL") or env.get("DATABASE_URL")
        if url:
            settings = replace(settings, database_url=url)
        if env.get("MODULA_HOST"):
            settings = replace(settings, host=env["MODULA_HOST"])
        if env.get("MODULA_PORT"):
            settings = replace(settings, port=int(env["MODULA_PORT"]))
        if env.get("MODULA_PLUGINS_DIR"):
            settings = replace(settings, plugins_dir=Path(env["MODULA_PLUGINS_DIR"]))
        if env.get("MODULA_MAX_PAGE_SIZE"):
            settings = replace(settings, max_page_size=int(env["MODULA_MAX_PAGE_SIZE"]))
        if env.get("MODULA_DEBUG", "").lower() in ("1", "true", "yes"):
            settings = replace(settings, debug=True)
        if env.get("MODULA_SESSION_TTL_SECONDS"):
            settings = replace(settings, session_ttl_seconds=int(env["MODULA_SESSION_TTL_SECONDS"]))
        if env.get("MODULA_SECURE_COOKIES"):  # behind a TLS-terminating proxy, set it to true
            settings = replace(settings, secure_cookies=env["MODULA_SECURE_COOKIES"].lower() in ("1", "true", "yes"))
        if env.get("MODULA_DEFAULT_PAGE_SIZE"):
            settings = replace(settings, default_page_size=int(env["MODULA_DEFAULT_PAGE_SIZE"]))
        if env.get("MODULA_FOLLOW_INTERVAL"):
            settings = replace(settings, follow_interval=float(env["MODULA_FOLLOW_INTERVAL"]))
        if env.get("MODULA_LISTEN", "").lower() in ("0", "false", "no"):
            settings = replace(settings, listen=False)
        if env.get("MODULA_DATABASE_POOL_SIZE"):
            settings = replace(settings, database_pool_size=int(env["MODULA_DATABASE_POOL_SIZE"]))
        if env.get("MODULA_PLUGIN_POOL_SIZE"):
            settings = replace(settings, plugin_pool_size=int(env["MODULA_PLUGIN_POOL_SIZE"]))
        if env.get("MODULA_VIEWER_CACHE"):
            settings = replace(settings, viewer_cache=env["MODULA_VIEWER_CACHE"].lower() in ("1", "true", "yes"))
        for name in ("max_query_depth", "max_aliases", "max_tokens", "max_document_bytes", "max_query_cost",
                     "lua_field_cost", "max_batch", "max_body_bytes"):
            if env.get(f"MODULA_{name.upper()}"):
                settings = replace(settings, **{name: int(env[f"MODULA_{name.upper()}"])})
        for name in ("lua_instructions", "lua_memory_bytes", "lua_max_string_op_input", "lua_pattern_steps"):
            if env.get(f"MODULA_{name.upper()}"):
                settings = replace(settings, **{name: int(env[f"MODULA_{name.upper()}"])})
        if env.get("MODULA_LUA_SECONDS"):
            settings = replace(settings, lua_seconds=float(env["MODULA_LUA_SECONDS"]))
        if env.get("MODULA_FAST_PATH", "").lower() in ("0", "false", "no"):
            settings = replace(settings, fast_path=False)
        if env.get("MODULA_PRODUCTION", "").lower() in ("1", "true", "yes"):
            settings = replace(settings, production=True)
        if env.get("MODULA_WORKERS"):
            settings = replace(settings, workers=int(env["MODULA_WORKERS"]))
        if env.get("MODULA_ACCESS_LOG", "").lower() in ("1", "true", "yes"):
            settings = replace(settings, access_log=True)
        if env.get("MODULA_LOG_FORMAT"):
            settings = replace(settings, log_format=env["MODULA_LOG_FORMAT"].strip().lower())
        if env.get("MODULA_CORS_ORIGINS"):  # comma-separated
            origins = (origin.strip().rstrip("/") for origin in env["MODULA_CORS_ORIGINS"].split(","))
            settings = replace(settings, cors_origins=tuple(origin for origin in origins if origin))
        if env.get("MODULA_MEDIA_STORAGE"):
            settings = replace(settings, media_storage=env["MODULA_MEDIA_STORAGE"].strip().lower())
        if env.get("MODULA_MEDIA_DIR"):
            settings = replace(settings, media_dir=Path(env["MODULA_MEDIA_DIR"]))
        for name in ("s3_bucket", "s3_prefix", "s3_endpoint_url", "s3_region", "s3_access_key_id",
                     "s3_secret_access_key"):
            if env.get(f"MODULA_{name.upper()}"):
                settings = replace(settings, **{name: env[f"MODULA_{name.upper()}"]})
        if env.get("MODULA_UPLOAD_DIR"):
            settings = replace(settings, upload_dir=Path(env["MODULA_UPLOAD_DIR"]))
        for name in ("max_upload_bytes", "max_upload_files"):
            if env.get(f"MODULA_{name.upper()}"):
                settings = replace(settings, **{name: int(env[f"MODULA_{name.upper()}"])})
        for name in ("media_types", "media_sizes"):  # comma-separated; empty: none
            if f"MODULA_{name.upper()}" in env:
                items = (item.strip() for item in env[f"MODULA_{name.upper()}"].split(","))
                settings = replace(settings, **{name: tuple(item for item in items if item)})
        if env.get("MODULA_METRICS", "").lower() in ("1", "true", "yes"):
            settings = replace(settings, metrics=True)
        if env.get("MODULA_OUTBOX_WORKER", "").lower() in ("0", "false", "no"):
            settings = replace(settings, outbox_worker=False)
        for name in ("outbox_max_attempts", "outbox_per_plugin"):
            if env.get(f"MODULA_{name.upper()}"):
                settings = replace(settings, **{name: int(env[f"MODULA_{name.upper()}"])})
        for name in ("outbox_backoff_seconds", "outbox_backoff_max_seconds", "outbox_lease_seconds", "outbox_poll_seconds"):
            if env.get(f"MODULA_{name.upper()}"):
                settings = replace(settings, **{name: float(env[f"MODULA_{name.upper()}"])})
        return settings

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
