"""Plugin management over GraphQL: load, reload and unload plugins on a running server."""

from __future__ import annotations

import strawberry

from modula.auth import plugin_grants
from modula.errors import ModulaError
from modula.schema.core_types import CoreInfo
from modula.schema.guards import require_admin


@strawberry.type
class PluginFailure:
    plugin: str
    message: str


@strawberry.type(description="What a plugin change did to the served schema.")
class SchemaSwap:
    plugin: str
    schema_generation: int
    loaded_plugins: list[str]
    failures: list[PluginFailure]
    breaking_changes: list[str] = strawberry.field(description="Changes that can break existing clients (graphql-core's find_breaking_changes).")
    dangerous_changes: list[str]


def _service(info: CoreInfo):
    require_admin(info, "manage plugins")
    service = info.context.schemas
    if service is None:
        raise ModulaError("UNAVAILABLE", "plugin management is not available in this server")
    return service


def _swap(plugin: str, report) -> SchemaSwap:
    return SchemaSwap(
        plugin=plugin,
        schema_generation=report.generation,
        loaded_plugins=report.plugins,
        failures=[PluginFailure(plugin=name, message=message) for name, message in sorted(report.failures.items())],
        breaking_changes=report.breaking_changes,
        dangerous_changes=report.dangerous_changes,
    )


@strawberry.type(description="A permission a plugin's manifest proposes; it applies once an admin approves it.")
class PluginGrantRequest:
    plugin: str
    role: str
    resource: str
    action: str
    row_rule: str | None

    @classmethod
    def from_row(cls, row: dict) -> PluginGrantRequest:
        return cls(plugin=row["plugin"], role=row["role"], resource=row["resource"], action=row["action"],
                   row_rule=row["row_rule"])


@strawberry.type
class PluginQuery:
    @strawberry.field(description="Permissions plugins propose and no admin has approved yet (admins only).")
    async def plugin_grant_requests(self, info: CoreInfo, plugin: str | None = None) -> list[PluginGrantRequest]:
        require_admin(info, "see plugin grant requests")
        return [PluginGrantRequest.from_row(r) for r in await plugin_grants.pending(info.context.session, plugin)]


@strawberry.type
class PluginMutation:
    @strawberry.mutation(description="Grant what the plugin's manifest proposes; returns the permissions granted.")
    async def approve_plugin_grants(self, info: CoreInfo, plugin: str) -> list[PluginGrantRequest]:
        require_admin(info, "approve plugin grants")
        granted = await plugin_grants.approve(info.context.session, plugin)
        info.context.viewers_changed()
        return [PluginGrantRequest.from_row(r) for r in granted]

    @strawberry.mutation(description="Install or upgrade the plugin from the plugins directory and serve it.")
    async def load_plugin(self, info: CoreInfo, name: str) -> SchemaSwap:
        return _swap(name, await _service(info).load_plugin(name))

    @strawberry.mutation(description="Load the plugin's files again (new code, new tables) and swap the schema.")
    async def reload_plugin(self, info: CoreInfo, name: str) -> SchemaSwap:
        return _swap(name, await _service(info).reload_plugin(name))

    @strawberry.mutation(description="Stop serving the plugin (its tables and data stay).")
    async def unload_plugin(self, info: CoreInfo, name: str) -> SchemaSwap:
        return _swap(name, await _service(info).unload_plugin(name))
