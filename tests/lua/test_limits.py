"""Hostile handlers end with a coded error within their budget, and the runtime keeps working."""
import time

import pytest

from modula.lua import Limits, LuaPluginError

GRACE = 1.0
SMALL = Limits(instructions=2_000_000, memory_bytes=16 * 1024 * 1024, seconds=2.0)


class Stopwatch:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start


async def assert_ends_with(plugin, host, code, limits=SMALL):
    """The call fails with ``code`` (or one of a set) in time, then a normal call succeeds."""
    with Stopwatch() as watch, pytest.raises(LuaPluginError) as error:
        await plugin.call(host)
    assert error.value.code in ({code} if isinstance(code, str) else code), error.value
    assert error.value.plugin == "shop"
    assert watch.elapsed < limits.seconds + GRACE
    await plugin.assert_still_healthy(host)
    return error.value


@pytest.mark.parametrize("body", [
    "while true do end",
    "while true do pcall(function() while true do end end) end",
    "for i = 1, math.maxinteger do pcall(error, 'swallowed') end",
    "while true do xpcall(function() while true do end end, function(e) while true do end end) end",
    "coroutine.wrap(function() while true do end end)()",
    "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    "local t = setmetatable({}, {__index = function(t, k) while true do end end}); return t.x",
    "local ok = pcall(string.gsub, 'aaa', 'a', function() while true do end end) while true do end",
    "transaction(function(tx) while true do end end)",
])
async def test_runaway_code_hits_the_instruction_budget(make_plugin, host, body):
    await assert_ends_with(make_plugin(body), host, "BUDGET_EXCEEDED")
    assert host.open_txs == set()


async def test_wall_clock_budget_ends_a_call_before_the_instruction_budget(make_plugin, host):
    limits = Limits(instructions=10 ** 15, seconds=0.5)
    error = await assert_ends_with(make_plugin("while true do end", limits=limits), host,
                                   "TIMEOUT", limits)
    assert error.message == "time budget exceeded"


async def test_wall_clock_budget_covers_slow_host_calls(make_plugin, host):
    limits = Limits(seconds=0.3)
    plugin = make_plugin("query('select sleep')", limits=limits)
    host.delay = 5
    with Stopwatch() as watch, pytest.raises(LuaPluginError) as error:
        await plugin.call(host)
    assert error.value.code == "TIMEOUT" and watch.elapsed < 1.0
    host.delay = 0
    await plugin.assert_still_healthy(host)


@pytest.mark.parametrize("body", [
    "local t = {} for i = 1, math.maxinteger do t[i] = {i, i, i} end",
    "local s = 'x' while true do s = s .. s end",
    "local t = {} while true do pcall(function() t[#t + 1] = string.rep('x', 1e5) .. #t end) end",
    "return string.rep('x', 15 * 1024 * 1024)",
    "local parts = {} for i = 1, 1e6 do parts[i] = 'abcdefghij' .. i end return table.concat(parts)",
])
async def test_memory_bombs_hit_the_memory_cap(make_plugin, host, body):
    limits = Limits(instructions=10 ** 9, memory_bytes=16 * 1024 * 1024, seconds=5)
    plugin = make_plugin(body, limits=limits)
    await assert_ends_with(plugin, host, "MEMORY_EXCEEDED", limits)
    assert plugin.runtime.memory_used() < limits.memory_bytes // 2


@pytest.mark.parametrize("body, message", [
    ("local function f(n) return 1 + f(n + 1) end return f(1)", "stack overflow"),
    ("local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
     "stack overflow"),
    ("local function f() local ok, e = pcall(f) error(e, 0) end f()", "stack overflow"),
    ("local function f(s) return (string.gsub(s, '.', f)) end return f('ab')", "stack overflow"),
    ("local function f() return coroutine.wrap(f)() end return f()", "stack overflow"),
])
async def test_deep_recursion_ends_the_call_cleanly(make_plugin, host, body, message):
    limits = Limits(instructions=50_000_000, seconds=5)
    error = await assert_ends_with(make_plugin(body, limits=limits), host,
                                   {"LUA_ERROR", "MEMORY_EXCEEDED"}, limits)
    assert error.code == "MEMORY_EXCEEDED" or message in error.message.lower()


@pytest.mark.parametrize("body", [
    "local s = string.rep('a', 1e5) return string.find(s, 'a*a*a*a*b')",
    "local s = string.rep('a', 1e5) return string.find(s, '.-.-.-.-.-b')",
    "local s = string.rep('a', 1e5) return string.match(s, '(a*)*b')",
    "local s = string.rep('a', 1e5) return s:gsub('a-a-a-b', '')",
    "local s = string.rep('a', 5e4) for m in s:gmatch('a*b') do end",
    "local s = string.rep(' ', 1e5) .. 'x' return s:match('^%s*(.-)%s*$')",
    "local s = string.rep('(', 5e4) return s:find('%b()%b()%b()x')",
    "return string.rep('a', 2e6):find('a')",
    "return #string.rep('ab', 1e12, ',')",
    "return table.move({}, 1, 1e12, 1, {})",
    "local t = setmetatable({}, {__len = function() return 1e15 end}) table.insert(t, 1, 'x')",
])
async def test_uninterruptible_c_functions_are_bounded(make_plugin, host, body):
    error = await assert_ends_with(make_plugin(body), host, "LUA_ERROR")
    assert any(word in error.message for word in ("too complex", "too large", "too many",
                                                  "exceeds the limit")), error.message


async def test_empty_string_rep_returns_at_once(run_lua):
    with Stopwatch() as watch:
        assert await run_lua("return string.rep('', 1e15) .. string.rep('x', 0)") == ""
    assert watch.elapsed < 0.5


async def test_catastrophic_pattern_is_refused_even_inside_pcall_within_budget(make_plugin, host):
    plugin = make_plugin("""
        local s = string.rep('a', 1e5)
        local ok, err = pcall(string.find, s, 'a*a*a*a*b')
        return {ok = ok, err = err}""")
    with Stopwatch() as watch:
        result = await plugin.call(host)
    assert result["ok"] is False and "too complex" in result["err"]
    assert watch.elapsed < 1.0


async def test_ordinary_text_processing_on_large_strings_is_allowed(run_lua):
    result = await run_lua("""
        local words = {}
        for i = 1, 20000 do words[i] = 'word' .. i end
        local text = '  ' .. table.concat(words, '   ') .. '  '
        local squeezed = text:gsub('%s+', ' ')
        local trimmed = squeezed:match('^%s*(.-)%s*$')
        local html = string.rep('<p>x</p>', 10000) .. '<b>bold</b>'
        local count = 0
        for w in trimmed:gmatch('%a+%d+') do count = count + 1 end
        return {len = #trimmed, count = count, bold = html:match('<b>(.-)</b>'),
                first = trimmed:find('word1', 1, true), upper = ('abc'):upper()}""",
        limits=Limits(instructions=50_000_000, seconds=5))
    assert result == {"len": len(" ".join(f"word{i}" for i in range(1, 20001))),
                      "count": 20000, "bold": "bold", "first": 1, "upper": "ABC"}
