"""One version, one schema: what a plugin's new files change in its tables and its GraphQL
declarations while its manifest keeps the version already installed (warned about, not refused:
a plugin being written changes many times under one version, e.g. with `serve --watch`)."""

from __future__ import annotations

from typing import Any

from modula.lua.declarations import Declarations


def _api(declarations: Declarations) -> dict[str, Any]:
    """Each declaration that shapes the GraphQL schema, by a name a plugin author recognises,
    with what makes its GraphQL (not its handler, description or line)."""
    api: dict[str, Any] = {}
    for table in declarations.tables:
        api[f"table {table.name}"] = (table.graphql_type, table.graphql_list)
    for op in declarations.operations:
        api[f"{op.kind} {op.name}"] = (sorted(op.args.items()), op.returns)
    for field in declarations.fields:
        api[f"field {field.type}.{field.name}"] = (sorted(field.args.items()), field.returns)
    for kind, decls in (("type", declarations.types), ("input", declarations.inputs)):
        for decl in decls:
            api[f"{kind} {decl.name}"] = sorted(decl.fields.items())
    return api


def api_changes(old: Declarations, new: Declarations) -> list[str]:
    """`["query forumLatest added", "type Stats changed", ...]`: how `new` declares another GraphQL
    API than `old` (tables only as far as their names go; their columns are the table plan's)."""
    before, after = _api(old), _api(new)
    changes = [f"{name} added" for name in after if name not in before]
    changes += [f"{name} removed" for name in before if name not in after]
    changes += [f"{name} changed" for name in after if name in before and before[name] != after[name]]
    return changes


def unchanged_version_warning(plugin: str, version: str, changes: list[str]) -> str:
    return (f"plugin {plugin}: its schema changed ({', '.join(changes)}) but its version is still {version}: "
            'bump "version" in plugin.json, so that one version always means one schema')
