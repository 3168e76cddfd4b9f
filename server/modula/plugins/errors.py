"""A plugin that cannot be loaded or called: the message names the plugin and, when known, file and line."""

from __future__ import annotations

from modula.errors import ModulaError


class PluginError(ModulaError):
    def __init__(self, plugin: str, message: str, *, code: str = "PLUGIN_ERROR", location: str | None = None) -> None:
        self.plugin = plugin
        self.location = location
        where = f" ({location})" if location else ""
        super().__init__(code, f"plugin {plugin}{where}: {message}")

    @property
    def extensions(self) -> dict:
        return {**super().extensions, "plugin": self.plugin}
