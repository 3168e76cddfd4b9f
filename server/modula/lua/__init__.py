"""Sandboxed Lua runtime for plugins and the coroutine bridge to asyncio."""
from .declarations import (Declarations, FieldDecl, FieldResolverDecl, HandlerRef, HookDecl,
                           InputDecl, OperationDecl, TableDecl, TypeDecl)
from .errors import LuaPluginError
from .host import Host
from .limits import Limits
from .runtime import PluginRuntime

__all__ = [
    "Declarations", "FieldDecl", "FieldResolverDecl", "HandlerRef", "HookDecl", "Host",
    "InputDecl", "Limits", "LuaPluginError", "OperationDecl", "PluginRuntime", "TableDecl",
    "TypeDecl",
]
