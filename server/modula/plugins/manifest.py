"""plugin.json: a plugin's name, version, API version and the permissions it asks for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from modula.db.names import PLUGIN_NAME
from modula.plugins.errors import PluginError
from modula.plugins.files import INIT, MANIFEST, PluginFiles, read_folder

API_VERSIONS = (1,)
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$")
# Core tables a plugin may ask to read. Credentials (users, sessions, tokens) are never offered.
READABLE_CORE_TABLES = frozenset({
    "sites", "routes", "datatypes", "fields", "datatypes_fields", "content_data", "content_fields",
    "media", "media_dimensions",
})


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    description: str
    api: int
    http_hosts: tuple[str, ...]
    readable: frozenset[str]
    folder: Path | None  # the folder it was read from; None when loaded from the registry
    # (role, resource, action, row_rule) the plugin proposes; an admin approves them before they apply
    grants: tuple[tuple[str, str, str, str | None], ...] = ()
    files: PluginFiles = field(default_factory=lambda: PluginFiles({}), compare=False)

    @property
    def init_lua(self) -> str:
        """The source of init.lua."""
        return self.files.files[INIT]


def read_manifest(folder: Path) -> Manifest:
    if not (folder / MANIFEST).is_file():
        raise PluginError(folder.name, "plugin.json is missing", location=str(folder / MANIFEST))
    return parse_manifest(read_folder(folder), folder.name, folder)


def parse_manifest(files: PluginFiles, label: str, folder: Path | None = None) -> Manifest:
    """The manifest of a plugin's files (from a folder or the registry); `label` names it in errors."""
    text = files.text(MANIFEST)
    if text is None:
        raise PluginError(label, "plugin.json is missing", location=MANIFEST)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise PluginError(label, f"plugin.json is not valid JSON: {exc}", location="plugin.json") from None
    if not isinstance(raw, dict):
        raise PluginError(label, "plugin.json must be a JSON object", location="plugin.json")

    def bad(message: str) -> PluginError:
        return PluginError(str(raw.get("name") or label), message, location="plugin.json")

    name = raw.get("name")
    if not isinstance(name, str) or not PLUGIN_NAME.match(name):
        raise bad(f"name must match {PLUGIN_NAME.pattern}, got {name!r}")
    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        raise bad("version must be a non-empty string such as \"1.0.0\"")
    api = raw.get("api", 1)
    if api not in API_VERSIONS:
        raise bad(f"api {api!r} is not supported; this server speaks api {', '.join(map(str, API_VERSIONS))}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise bad("description must be a string")
    permissions = raw.get("permissions", {})
    if not isinstance(permissions, dict):
        raise bad("permissions must be an object")
    unknown = set(permissions) - {"http", "read"}
    if unknown:
        raise bad(f"unknown permission(s): {', '.join(sorted(unknown))}; known: http, read")
    hosts = permissions.get("http", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and _HOST.match(h.lower()) for h in hosts):
        raise bad("permissions.http must be a list of host names such as \"api.example.com\"")
    readable = permissions.get("read", [])
    if not isinstance(readable, list) or not all(isinstance(t, str) for t in readable):
        raise bad("permissions.read must be a list of core table names")
    refused = sorted(set(readable) - READABLE_CORE_TABLES)
    if refused:
        raise bad(f"permissions.read may not name {', '.join(refused)}; readable core tables: {', '.join(sorted(READABLE_CORE_TABLES))}")
    if files.text(INIT) is None:
        raise bad("init.lua is missing")
    grants = _grants(raw.get("grants", {}), name, bad)
    return Manifest(name, version.strip(), description, api, tuple(h.lower() for h in hosts), frozenset(readable), folder,
                    grants, files)


GRANT_ACTIONS = ("read", "create", "update", "delete")


def _grants(raw, plugin: str, bad) -> tuple[tuple[str, str, str, str | None], ...]:
    """`"grants": {"viewer": {"shop_products": ["read"], "plugin:shop": ["read"]}}`; a grant may
    carry a row rule: `{"shop_orders": [{"action": "read", "rowRule": "own:customer_id"}]}`.
    Resources must be the plugin's own tables or `plugin:<name>`."""
    if not isinstance(raw, dict):
        raise bad("grants must be an object of role -> {resource: [actions]}")
    found = []
    for role, resources in raw.items():
        if not isinstance(resources, dict):
            raise bad(f"grants.{role} must be an object of resource -> [actions]")
        for resource, actions in resources.items():
            if not (resource == f"plugin:{plugin}" or resource.startswith(plugin + "_")):
                raise bad(f"grants.{role}: {resource!r} is not one of this plugin's tables nor plugin:{plugin}")
            if not isinstance(actions, list):
                raise bad(f"grants.{role}.{resource} must be a list of actions")
            for item in actions:
                action, rule = (item.get("action"), item.get("rowRule")) if isinstance(item, dict) else (item, None)
                if action not in GRANT_ACTIONS:
                    raise bad(f"grants.{role}.{resource}: {action!r} is not one of {', '.join(GRANT_ACTIONS)}")
                found.append((role, resource, action, rule))
    return tuple(found)
