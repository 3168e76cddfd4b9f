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
        return settings

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
