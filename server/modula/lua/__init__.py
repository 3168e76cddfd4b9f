"""Sandboxed Lua runtime for plugins and the coroutine bridge to asyncio."""
