"""One plugin's sandboxed Lua runtime: loads init.lua and runs handlers as coroutines on its own
thread, serving their database and HTTP requests on the asyncio loop."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lupa import lua54

from modula.db.names import PLUGIN_NAME

from .declarations import Declarations, HandlerRef
from .errors import LuaPluginError
from .host import Host
from .limits import Limits
from .prelude import PRELUDE
from .host_requests import HostRequest, Pending, RequestRefused
from .validation import DeclarationCollector, DeclarationError
from .values import ConversionError, ConversionTimeout, LuaValues

MAX_MESSAGE = 2000
MEMORY_MESSAGE = "not enough memory"
LUA_THREAD_NICENESS = 19
logger = logging.getLogger("modula.lua")
T = TypeVar("T")


@dataclass
class _Call:
    """The running state of one call: its Lua-side budget table and coroutine (both touched only
    on the Lua thread), its host and open transactions."""

    deadline: float
    host: Host | None = None
    state: Any = None
    co: int | None = None
    op: str = ""  # the request the coroutine is waiting on
    open_txs: set[int] = field(default_factory=set)
    host_errors: list[str] = field(default_factory=list)
    out_of_memory: bool = False
    requests: HostRequest | None = None


@dataclass(frozen=True)
class _Done:
    """The handler returned; ``value`` is its result as plain Python."""

    value: Any


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not reachable from Lua")


class PluginRuntime:
    """A Lua state for one plugin; ``load`` runs init.lua once, ``call`` runs one handler.

    Every touch of the Lua state happens on the runtime's own thread (one per runtime, so one
    plugin's steps never run at once and need no lock); the event loop only awaits the host's
    database and HTTP calls, with plain Python values. Lupa releases the GIL while Lua runs
    (C functions such as ``string.find`` included), so a runaway handler holds neither the loop
    nor the interpreter: its call ends with ``TIMEOUT`` when ``limits.seconds`` are up, even
    while an uninterruptible C function still runs; the thread finishes that step afterwards.
    The thread runs at the lowest CPU priority, and the instruction hook reads Python's wall
    clock (which takes the GIL) only every few milliseconds of CPU time (see ``prelude``), so
    busy handlers leave the loop both the CPU and the interpreter. Each call is its own Lua
    coroutine, so calls of one plugin interleave at host requests and share its globals.

    The memory cap holds only while plugin code runs. Lupa builds Lua values for Python (call
    arguments, ``table_from``, a Python function's results) outside Lua's protected mode, where
    an allocation refused by the cap aborts the process (a Lua panic) or deadlocks it. So the
    cap is lifted whenever Python works on the state, the prelude sets it around each resume of
    plugin code and lifts it around each Python callback, and Python checks it after building a
    value (``LuaValues``) and when a step ends.
    """

    def __init__(self, plugin_name: str, *, limits: Limits = Limits(),
                 http_hosts: list[str] | tuple[str, ...] = ()) -> None:
        if not PLUGIN_NAME.match(plugin_name):
            raise ValueError(f"plugin name {plugin_name!r} must match {PLUGIN_NAME.pattern}")
        self.plugin_name = plugin_name
        self.limits = limits
        self.http_hosts = tuple(host.lower() for host in http_hosts)
        self._lua = lua54.LuaRuntime(
            encoding=None, register_eval=False, register_builtins=False,
            unpack_returned_tuples=True, attribute_filter=_deny_attributes,
            max_memory=limits.memory_bytes)
        self._memory_cap = self._lua.get_max_memory(total=True)
        self._lift_memory_cap()
        lua_globals = self._lua.globals()
        self._lua.execute(b"package.loaded.python = nil; python = nil")
        del lua_globals
        config = self._lua.table_from({
            b"max_string_op_input": limits.max_string_op_input,
            b"pattern_steps": limits.pattern_steps,
            b"memory_bytes": limits.memory_bytes,
        })
        py = self._lua.table_from({
            b"clock": time.monotonic, b"log": self._log, b"declare": self._declare,
            b"json_encode": self._json_encode, b"json_decode": self._json_decode,
            b"cap_memory": self._hold_memory_cap, b"uncap_memory": self._lift_memory_cap,
        })
        prelude = self._lua.execute(b"return load(..., '=sandbox', 't')", PRELUDE.encode())
        self._trusted = prelude(config, py)
        self._values = LuaValues(self._lua, self._trusted.is_null, self._trusted.null,
                                 over_cap=self._over_memory_cap,
                                 max_plain_bytes=limits.memory_bytes)
        self._collector: DeclarationCollector | None = None
        self._load_log_extra: dict[str, Any] = {}
        self._active: _Call | None = None
        self._loaded = False
        self._closed = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lua-{plugin_name}",
                                          initializer=_yield_cpu_to_the_loop)

    def load(self, source: str, chunkname: str = "init.lua") -> Declarations:
        """Run init.lua in the sandbox and return what it declared (blocks the calling thread;
        on the event loop use ``load_async``)."""
        return self._submit(self._load, source, chunkname).result()

    async def load_async(self, source: str, chunkname: str = "init.lua", *,
                         log_extra: dict[str, Any] | None = None) -> Declarations:
        """``load`` for the event loop: init.lua runs on the runtime's thread. ``log_extra`` goes
        with the lines init.lua logs (such as the id of the request that loads the plugin)."""
        self._load_log_extra = dict(log_extra or {})
        return await asyncio.wrap_future(self._submit(self._load, source, chunkname))

    def _load(self, source: str, chunkname: str) -> Declarations:
        self._check_open()
        if self._loaded:
            raise LuaPluginError(self.plugin_name, "init.lua is already loaded in this runtime")
        self._collector = DeclarationCollector(self.plugin_name)
        call = self._new_call(loading=True)
        try:
            co, *error = _many(self._trusted.start_chunk(source.encode("utf-8"),
                                                         chunkname.encode("utf-8")))
        except lua54.LuaMemoryError:
            raise self._memory_failure(call) from None
        if co is None:
            raise LuaPluginError(self.plugin_name, _text(error[0] if error else "load failed"))
        call.co = co
        try:
            outcome = self._step(call)
            if outcome[0] != b"done":
                raise self._failure(call, outcome)
        finally:
            self._end(call)
            self._collector, collector = None, self._collector
        self._loaded = True
        return collector.result

    async def call(self, handler: HandlerRef, args: Any, ctx: dict, host: Host) -> Any:
        """Run one handler as a coroutine on the Lua thread, serving its host requests on the
        loop; return its plain result."""
        self._check_open()
        if not self._loaded:
            raise LuaPluginError(self.plugin_name, "call before init.lua was loaded")
        call = _Call(deadline=time.monotonic() + self.limits.seconds, host=host)
        try:
            async with asyncio.timeout(self.limits.seconds):
                step = await self._on_thread(self._start, call, handler, args, ctx)
                while not isinstance(step, _Done):
                    reply = await self._serve(call, step)
                    step = await self._on_thread(self._resume, call, *reply)
        except (TimeoutError, ConversionTimeout):
            raise self._timeout(call) from None
        finally:
            # Queued behind the step still running, if any: the request does not wait for it.
            self._submit_quietly(self._end, call)
            left_open = await self._roll_back_open(call)
        if left_open:
            raise LuaPluginError(self.plugin_name,
                                 "transaction left open by the handler (rolled back)")
        return step.value

    def close(self) -> None:
        """Release the Lua state once the thread has run what is queued; the runtime refuses
        further use."""
        if self._closed:
            return
        self._closed = True
        self._thread.submit(self._release)
        self._thread.shutdown(wait=False)

    def memory_used(self) -> int:
        return self._submit(self._lua.get_memory_used).result()

    # On the Lua thread ---------------------------------------------------------------------
    def _start(self, call: _Call, handler: HandlerRef, args: Any, ctx: dict) -> _Done | Pending:
        self._check_open()
        call.state = self._new_state(call.deadline, loading=False)
        call.co = self._trusted.start(handler.index)
        if call.co is None:
            raise LuaPluginError(self.plugin_name, f"unknown handler {handler.index}")
        return self._advance(call, self._handler_args(call, handler, args, ctx))

    def _resume(self, call: _Call, ok: bool, result: Any) -> _Done | Pending:
        """Hand the loop's answer to a request back to the coroutine and run it on."""
        if not ok:
            return self._advance(call, (False, result.encode()))
        try:
            return self._advance(call, (True, self._values.to_lua(result)))
        except lua54.LuaMemoryError:
            raise self._memory_failure(call) from None
        except ConversionError as error:
            message = _text(f"{call.op}: host returned {error}")
            call.host_errors.append(message)
            return self._advance(call, (False, message.encode()))

    def _advance(self, call: _Call, reply: tuple) -> _Done | Pending:
        """Run the coroutine until it returns or asks for something only the loop can do; a
        refused request is answered here at once."""
        while True:
            outcome = self._step(call, *reply)
            if outcome[0] != b"request":
                break
            if call.requests is None:
                call.requests = HostRequest(self._values, call.host, call.open_txs,
                                            self.http_hosts, call.deadline)
            call.op = outcome[1].decode()
            try:
                return call.requests.prepare(call.op, outcome[2:])
            except RequestRefused as refused:
                reply = (False, _text(str(refused)).encode())
        if outcome[0] != b"done":
            raise self._failure(call, outcome)
        try:
            return _Done(self._values.from_lua(outcome[1] if len(outcome) > 1 else None,
                                               call.deadline))
        except ConversionTimeout:
            raise
        except ConversionError as error:
            raise LuaPluginError(self.plugin_name, f"handler result: {error}") from None

    def _release(self) -> None:
        self._trusted = self._values = self._lua = None

    # Between the loop and the thread -------------------------------------------------------
    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        try:
            return self._thread.submit(fn, *args)
        except RuntimeError:  # the executor was shut down by close()
            raise LuaPluginError(self.plugin_name, "runtime is closed") from None

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(fn, *args))

    def _submit_quietly(self, fn: Callable[..., Any], *args: Any) -> None:
        def logged() -> None:
            try:
                fn(*args)
            except Exception:
                logger.exception("plugin %s: cleanup on the Lua thread failed", self.plugin_name)
        try:
            self._thread.submit(logged)
        except RuntimeError:
            pass  # closed: the state is released with everything in it

    def _hold_memory_cap(self) -> None:
        self._lua.set_max_memory(self._memory_cap, total=True)

    def _lift_memory_cap(self) -> None:
        self._lua.set_max_memory(0)

    def _over_memory_cap(self) -> bool:
        return self._lua.get_memory_used(total=True) > self._memory_cap

    def _deadline(self) -> float | None:
        return self._active.deadline if self._active is not None else None

    def _time_is_up(self) -> bytes:
        """End the running call as the hook would have: the plugin's code may run no further."""
        state = self._active.state
        state[b"dead"], state[b"reason"] = b"TIMEOUT", b"time budget exceeded"
        return b"time budget exceeded"

    def _check_open(self) -> None:
        if self._closed:
            raise LuaPluginError(self.plugin_name, "runtime is closed")

    def _new_call(self, *, loading: bool) -> _Call:
        call = _Call(deadline=time.monotonic() + self.limits.seconds)
        call.state = self._new_state(call.deadline, loading=loading)
        return call

    def _new_state(self, deadline: float, *, loading: bool) -> Any:
        # `dead` and `reason` exist from the start: the hook that sets them must not allocate,
        # since it may run with the plugin's memory already at its cap.
        return self._lua.table_from({b"budget": self.limits.instructions, b"used": 0,
                                     b"deadline": deadline, b"loading": loading,
                                     b"dead": False, b"reason": False, b"next_wall_read": 0.0})

    def _handler_args(self, call: _Call, handler: HandlerRef, args: Any, ctx: dict) -> tuple:
        to_lua = self._values.to_lua
        try:
            if handler.kind == "field":
                row, field_args = args
                return to_lua(row), to_lua(field_args or {}), to_lua(ctx)
            return to_lua(args if handler.kind == "hook" else args or {}), to_lua(ctx)
        except lua54.LuaMemoryError:
            raise self._memory_failure(call) from None
        except ConversionError as error:
            raise LuaPluginError(self.plugin_name, f"handler arguments: {error}",
                                 "HOST_ERROR") from None

    def _step(self, call: _Call, *args: Any) -> tuple:
        self._active = call
        try:
            outcome = self._trusted.step(call.state, call.co, *args)
        except lua54.LuaMemoryError:
            raise self._memory_failure(call) from None
        except lua54.LuaError as error:
            raise LuaPluginError(self.plugin_name, _text(str(error))) from None
        finally:
            self._active = None
            self._lift_memory_cap()  # the prelude lifts it too, unless the step itself failed
        return _many(outcome)

    async def _serve(self, call: _Call, request: Pending) -> tuple[bool, Any]:
        """On the loop: await the host for one request; a failure becomes Lua's error message."""
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout(call)
        try:
            return True, await request(remaining)
        except RequestRefused as refused:
            return False, _text(str(refused))
        except Exception as error:
            message = _text(str(error) or type(error).__name__)
            call.host_errors.append(message)
            return False, message

    def _failure(self, call: _Call, outcome: tuple) -> LuaPluginError:
        message = _text(outcome[1]) if len(outcome) > 1 else "handler failed"
        dead = call.state[b"dead"]
        if dead in (b"BUDGET_EXCEEDED", b"TIMEOUT"):
            reason = _text(call.state[b"reason"])
            return LuaPluginError(self.plugin_name, reason, dead.decode(), location=None)
        if dead == b"MEMORY_EXCEEDED" or message.endswith(MEMORY_MESSAGE):
            return self._memory_failure(call)
        if any(message.endswith(host_error) for host_error in call.host_errors):
            return LuaPluginError(self.plugin_name, message, "HOST_ERROR")
        return LuaPluginError(self.plugin_name, message)

    def _end(self, call: _Call) -> None:
        if call.co is not None and self._trusted is not None:
            self._trusted.finish(call.co)
            if call.out_of_memory:
                self._trusted.collect()

    def _memory_failure(self, call: _Call) -> LuaPluginError:
        call.out_of_memory = True
        return LuaPluginError(self.plugin_name, "memory limit exceeded", "MEMORY_EXCEEDED",
                              location=None)

    def _timeout(self, call: _Call) -> LuaPluginError:
        return LuaPluginError(self.plugin_name, "time budget exceeded", "TIMEOUT", location=None)

    async def _roll_back_open(self, call: _Call) -> bool:
        left_open = sorted(call.open_txs)
        call.open_txs.clear()
        for tx in left_open:
            try:
                await call.host.rollback(tx)
            except Exception as error:
                logger.warning("plugin %s: rollback of tx %s failed: %s",
                               self.plugin_name, tx, error)
        return bool(left_open)

    def _log(self, level: bytes, message: bytes) -> None:
        text = _text(message)
        call = self._active
        if call is not None and call.host is not None:
            call.host.log(level.decode(), text)
        else:  # init.lua, loading: no call; a line as a handler's would be (see PluginCall.log)
            logging.getLogger(f"modula.plugin.{self.plugin_name}").log(
                logging.getLevelName(level.decode().upper().replace("WARN", "WARNING")), "%s", text,
                extra={**self._load_log_extra, "plugin": self.plugin_name, "plugin_level": level.decode()})

    def _declare(self, kind: bytes, spec: Any, where: bytes | None = None) -> tuple[bool, bytes | None]:
        if self._collector is None:
            return False, b"declarations are only allowed while init.lua loads"
        try:
            self._collector.declare(kind.decode(), self._values.from_lua(spec, self._deadline()),
                                    where.decode("utf-8", "replace") if where else None)
        except (DeclarationError, ConversionError) as error:
            return False, str(error).encode()
        return True, None

    def _json_encode(self, value: Any) -> tuple[bool, bytes]:
        try:
            plain = self._values.from_lua(value, self._deadline())
            text = json.dumps(plain, ensure_ascii=False, allow_nan=False).encode()
        except ConversionTimeout:
            return False, self._time_is_up()
        except (ConversionError, ValueError, TypeError) as error:
            return False, f"json.encode: {error}".encode()
        if len(text) > self.limits.memory_bytes:
            return False, MEMORY_MESSAGE.encode()
        return True, text

    def _json_decode(self, text: Any) -> tuple[bool, Any]:
        if not isinstance(text, bytes):
            return False, b"json.decode expects a string"
        try:
            return True, self._values.to_lua(json.loads(text), keep_null=True)
        except (ValueError, ConversionError, RecursionError) as error:
            return False, f"json.decode: {error}".encode()
        except lua54.LuaMemoryError:
            return False, MEMORY_MESSAGE.encode()


def _yield_cpu_to_the_loop() -> None:
    """Run this Lua thread at the lowest CPU priority (Linux nice values are per thread): with
    more busy handlers than cores, the event loop thread still gets the CPU when it needs it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LUA_THREAD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the thread runs as it is
        pass


def _many(values: Any) -> tuple:
    """Lua's multiple results as a tuple (lupa returns a single result unwrapped)."""
    return values if isinstance(values, tuple) else (values,)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value)
    return value if len(value) <= MAX_MESSAGE else value[:MAX_MESSAGE] + "…"
