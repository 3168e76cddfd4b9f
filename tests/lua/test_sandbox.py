"""Untrusted plugin code cannot reach Python, the file system, bytecode or shared library tables."""
import pytest

from modula.lua import LuaPluginError, PluginRuntime


async def test_lupa_runtime_is_built_without_python_eval_or_builtins():
    runtime = PluginRuntime("shop")
    lua = runtime._lua
    assert lua.eval("python") is None
    assert lua.eval("package") is None and lua.eval("debug") is None
    assert runtime.load("assert(python == nil and package == nil)") is not None


@pytest.mark.parametrize("expression", [
    "python", "package", "require", "dofile", "loadfile", "io", "debug", "collectgarbage",
    "string.dump", "os.getenv", "os.execute", "os.exit", "os.remove", "os.rename", "os.tmpname",
    "rawset", "warn", "_G.python", "_G._G.package",
])
async def test_dangerous_globals_are_absent(run_lua, expression):
    assert await run_lua(f"return {{absent = {expression} == nil}}") == {"absent": True}


async def test_no_value_reachable_from_the_environment_is_a_python_object(run_lua):
    result = await run_lua("""
        local seen, bad = {}, {}
        local function walk(value, path)
          local kind = type(value)
          if kind == 'userdata' then bad[#bad + 1] = path end
          if kind ~= 'table' or seen[value] then return end
          seen[value] = true
          for k, v in pairs(value) do walk(v, path .. '.' .. tostring(k)) end
          local mt = getmetatable(value)
          if type(mt) == 'table' then walk(mt, path .. '<mt>') end
        end
        walk(_G, '_G'); walk(args, 'args'); walk(ctx, 'ctx'); walk(json.null, 'null')
        walk(getmetatable(''), 'string_mt')
        local tx = begin_transaction(); walk(tx, 'tx'); tx:rollback()
        return {bad = bad, userdata_args = type(args), count = #bad}""",
        args={"a": [1, {"b": 2}]}, ctx={"viewer": {"id": 1}})
    assert result["count"] == 0 and result["userdata_args"] == "table"


@pytest.mark.parametrize("expression", [
    "load(string.dump(function() end))",
    "load(('').dump(function() end))",
    "load('\\27Lua\\84\\0')",
    "load('\\27Lua', 'x', 'b')",
    "load(function() return nil end)",
])
async def test_bytecode_cannot_be_loaded(run_lua, expression):
    body = f"local ok, f = pcall(function() return {expression} end) return ok and f ~= nil"
    assert await run_lua(body) is False


async def test_binary_chunk_load_returns_an_error_message(run_lua):
    result = await run_lua("local f, err = load('\\27Lua\\84'); return {f = f == nil, err = err}")
    assert result == {"f": True, "err": "binary chunks are not allowed"}


async def test_text_load_runs_in_the_plugin_environment(run_lua):
    result = await run_lua("shared = 41; local f = load('return shared + 1', 'chunk', 'b')\n"
                           "return {value = f(), python = load('return python')() == nil}")
    assert result == {"value": 42, "python": True}


async def test_string_metatable_is_hidden_and_string_methods_use_the_guarded_table(run_lua):
    result = await run_lua("""
        local mt = getmetatable('')
        local ok = pcall(function() getmetatable('').__index.upper = nil end)
        return {mt = mt, ok = ok, dump_method = ('').dump == nil,
                upper = ('abc'):upper(), rep_guarded = pcall(('x').rep, 'x', 1e12)}""")
    assert result == {"mt": False, "ok": False, "dump_method": True, "upper": "ABC",
                      "rep_guarded": False}


async def test_changing_library_tables_stays_inside_one_plugin(make_plugin, host):
    vandal = make_plugin("""
        string.upper = nil; string.find = function() return 'evil' end
        table.insert = nil; math.floor = nil; json.encode = nil; coroutine.create = nil
        string.gsub = function() error('hijacked') end
        return {own_upper_gone = ('x').upper == nil}""")
    assert await vandal.call(host) == {"own_upper_gone": True}
    await vandal.assert_still_healthy(host)
    neighbour = make_plugin("return {('abc'):upper(), string.find('abc', 'b'), math.floor(1.5),"
                            " json.encode({1})}")
    assert await neighbour.call(host) == ["ABC", 2, 1, "[1]"]


async def test_gc_metamethods_are_refused(run_lua):
    with pytest.raises(LuaPluginError, match="__gc metamethods are not allowed"):
        await run_lua("setmetatable({}, {__gc = function() while true do end end})")


async def test_handler_cannot_yield_to_the_bridge_directly(run_lua):
    with pytest.raises(LuaPluginError, match="attempt to yield from outside a coroutine"):
        await run_lua("coroutine.yield('fake request')")


async def test_host_exceptions_reach_lua_as_plain_strings(run_lua, host):
    class Secret(Exception):
        pass
    host.fail_with = Secret("boom")
    result = await run_lua("local ok, err = pcall(query, 'x')\n"
                           "return {kind = type(err), err = err, no_attributes = err.__class__ == nil}")
    assert result == {"kind": "string", "err": "boom", "no_attributes": True}


async def test_os_offers_only_time_clock_and_date(run_lua):
    result = await run_lua("local names = {} for k in pairs(os) do names[#names + 1] = k end\n"
                           "table.sort(names) return {names = names, year = os.date('!%Y', 0)}")
    assert result == {"names": ["clock", "date", "time"], "year": "1970"}


async def test_handlers_share_plugin_globals_but_not_other_plugins(make_plugin, host):
    first = make_plugin("counter = (counter or 0) + 1 return counter")
    second = make_plugin("return counter == nil")
    assert [await first.call(host), await first.call(host)] == [1, 2]
    assert await second.call(host) is True
