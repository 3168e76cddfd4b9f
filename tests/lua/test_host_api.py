"""The Lua host API round-trips through the bridge with the documented value conversions."""
import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from modula.lua import LuaPluginError


async def test_query_passes_array_params_as_list_and_returns_rows(run_lua, host):
    result = await run_lua("local rows = query('select * from t where a = ? and b = ?', {1, 'x'})\n"
                           "return {count = #rows, name = rows[1].name, id = rows[1].id}")
    assert host.calls == [("query", "select * from t where a = ? and b = ?", [1, "x"], None)]
    assert result == {"count": 1, "name": "first", "id": 1}


async def test_named_params_pass_as_dict_and_missing_params_as_empty_list(run_lua, host):
    await run_lua("query('select :a', {a = 1.5, b = true}); query('select 1')")
    assert host.calls[0][2] == {"a": 1.5, "b": True}
    assert host.calls[1][2] == []


async def test_sql_null_columns_are_absent_keys_in_rows(run_lua, host):
    host.query_result = [{"id": 1, "deleted_at": None}]
    result = await run_lua("local row = query_one('select 1')\n"
                           "return {has_key = row.deleted_at ~= nil, id = row.id}")
    assert result == {"has_key": False, "id": 1}


async def test_query_one_returns_nil_when_there_is_no_row(run_lua, host):
    host.query_result = []
    assert await run_lua("return {missing = query_one('select 1') == nil}") == {"missing": True}


async def test_exec_returns_rows_affected_and_last_insert_id(run_lua, host):
    result = await run_lua("return exec('update t set a = ?', {1})")
    assert result == {"rows_affected": 2, "last_insert_id": 7}


async def test_insert_returns_row_with_generated_id_for_nested_inserts(run_lua, host):
    result = await run_lua("""
        local product = insert('shop_products', {name = 'Mug', price = 9.5})
        local attribute = insert('shop_product_attributes', {product_id = product.id, key = 'color'})
        return {product = product.id, attribute_parent = attribute.product_id}""")
    assert result == {"product": 1, "attribute_parent": 1}
    assert host.rows["shop_products"] == [{"id": 1, "name": "Mug", "price": 9.5}]


async def test_host_values_are_converted_explicitly(run_lua, host):
    host.query_result = [{
        "big": 2 ** 70, "price": Decimal("9.99"), "exact": Decimal("0.1000000000000000000001"),
        "count": Decimal("12"), "when": dt.datetime(2024, 5, 1, 12, 30), "day": dt.date(2024, 5, 1),
        "blob": b"\x00\xffraw", "nested": {"list": [1, None, 3]}, "flag": False,
    }]
    result = await run_lua("""
        local r = query_one('select 1')
        return {big = r.big, big_type = type(r.big), price = r.price, exact = r.exact,
                count_type = type(r.count), count = r.count, when = r.when, day = r.day,
                blob_len = #r.blob, second_is_null = r.nested.list[2] == json.null,
                list_len = #r.nested.list, flag = r.flag}""")
    assert result == {
        "big": str(2 ** 70), "big_type": "string", "price": "9.99",  # numerics as exact text
        "exact": "0.1000000000000000000001", "count_type": "string", "count": "12",
        "when": "2024-05-01T12:30:00.000000Z", "day": "2024-05-01", "blob_len": 5,
        "second_is_null": True, "list_len": 3, "flag": False,
    }


async def test_handler_results_become_plain_python(run_lua):
    result = await run_lua("return {list = {1, 2.5, 'x'}, map = {a = {b = true}}, empty = {},"
                           " null = json.null, int = 3, bytes = '\\255'}")
    assert result == {"list": [1, 2.5, "x"], "map": {"a": {"b": True}}, "empty": {},
                      "null": None, "int": 3, "bytes": b"\xff"}
    assert type(result["int"]) is int


@pytest.mark.parametrize("body, message", [
    ("return {1, 2, x = 3}", "mixes array indices and string keys"),
    ("return {[1] = 1, [3] = 3}", "holes"),
    ("return {[true] = 1}", "is not allowed (use strings)"),
    ("return {f = print}", "cannot pass a Lua function"),
    ("return {co = coroutine.create(print)}", "cannot pass a Lua"),
    ("local t = {}; t.self = t; return t", "nested deeper"),
])
async def test_unconvertible_results_are_refused_clearly(run_lua, body, message):
    with pytest.raises(LuaPluginError) as error:
        await run_lua(body)
    assert message in error.value.message


async def test_args_and_ctx_reach_the_handler(run_lua):
    result = await run_lua("return {limit = args.limit, viewer = ctx.viewer.id, roles = ctx.viewer.roles}",
                           args={"limit": 5}, ctx={"viewer": {"id": 9, "roles": ["admin"]}})
    assert result == {"limit": 5, "viewer": 9, "roles": ["admin"]}


async def test_json_encode_and_decode_round_trip_with_null_sentinel(run_lua):
    result = await run_lua("""
        local decoded = json.decode('{"a": null, "b": [1, 2.5, "x"], "c": {"d": true}}')
        return {a_is_null = decoded.a == json.null, b = decoded.b, c = decoded.c.d,
                encoded = json.encode({x = {1, 2}, y = json.null}),
                null_text = tostring(json.null)}""")
    assert result["a_is_null"] is True and result["b"] == [1, 2.5, "x"] and result["c"] is True
    assert result["encoded"] in ('{"x": [1, 2], "y": null}', '{"y": null, "x": [1, 2]}')
    assert result["null_text"] == "null"


async def test_json_errors_are_catchable_lua_errors(run_lua):
    result = await run_lua("local ok, err = pcall(json.decode, '{nope'); "
                           "local ok2, err2 = pcall(json.encode, {f = print}); "
                           "return {ok = ok, err = err, ok2 = ok2, err2 = err2}")
    assert result["ok"] is False and result["err"].startswith("json.decode:")
    assert result["ok2"] is False and "function" in result["err2"]


async def test_log_and_print_go_to_the_host(run_lua, host):
    await run_lua("log.info('a', 1); log.warn('b'); log.error('c'); print('d', nil, true)")
    assert host.logs == [("info", "a 1"), ("warn", "b"), ("error", "c"), ("info", "d nil true")]


async def test_http_request_reaches_host_for_allowed_hosts_only(run_lua, host):
    result = await run_lua("""
        local res = http.request{method = 'post', url = 'https://api.example.com/ping',
                                 headers = {accept = 'text/plain'}, body = 'hi', timeout = 1}
        local ok, err = pcall(http.request, {url = 'https://evil.example.org/'})
        return {status = res.status, body = res.body, ok = ok, err = err}""")
    assert host.calls == [("http", "POST", "https://api.example.com/ping",
                           {"accept": "text/plain"}, "hi", 1.0)]
    assert result["status"] == 200 and result["body"] == "pong" and result["ok"] is False
    assert "not allowed" in result["err"]


async def test_host_errors_come_back_as_catchable_string_messages(run_lua, host):
    host.fail_with = RuntimeError("UNIQUE constraint failed: shop_products.name")
    result = await run_lua("local ok, err = pcall(query, 'insert ...')\n"
                           "return {ok = ok, err = err, kind = type(err)}")
    assert result == {"ok": False, "kind": "string",
                      "err": "UNIQUE constraint failed: shop_products.name"}


async def test_uncaught_host_error_ends_call_with_host_error_code(run_lua, host):
    host.fail_with = RuntimeError("database is locked")
    with pytest.raises(LuaPluginError) as error:
        await run_lua("\nquery('select 1')")
    assert error.value.code == "HOST_ERROR"
    assert error.value.message == "database is locked"
    assert error.value.location == "init.lua:11"


async def test_transaction_commits_when_function_returns(run_lua, host):
    result = await run_lua("""
        return transaction(function(tx)
          local p = tx:insert('shop_products', {name = 'Mug'})
          tx:exec('update shop_products set price = ?', {1})
          return {id = p.id, row = tx:query_one('select 1').name}
        end)""")
    assert result == {"id": 1, "row": "first"}
    assert [c[0] for c in host.calls] == ["begin", "insert", "exec", "query_one", "commit"]
    assert all(c[-1] == 100 for c in host.calls[1:])
    assert host.committed == [100] and host.rolled_back == []


async def test_transaction_rolls_back_on_error_and_reraises(run_lua, host):
    result = await run_lua("""
        local ok, err = pcall(transaction, function(tx)
          tx:insert('shop_products', {name = 'Mug'})
          error('out of stock', 0)
        end)
        return {ok = ok, err = err}""")
    assert result == {"ok": False, "err": "out of stock"}
    assert host.committed == [] and host.rolled_back == [100]


async def test_begin_transaction_gives_explicit_commit_and_rollback(run_lua, host):
    await run_lua("""
        local a = begin_transaction(); a:query('select 1'); a:commit()
        local b = begin_transaction(); b:exec('delete'); b:rollback()
        local ok, err = pcall(a.query, a, 'select 2')
        assert(not ok and err:find('already finished'), err)""")
    assert host.committed == [100] and host.rolled_back == [101]


async def test_transaction_left_open_is_rolled_back_and_reported(host, make_plugin):
    plugin = make_plugin("local tx = begin_transaction(); tx:insert('shop_products', {name = 'x'})\n"
                         "return 'done'")
    with pytest.raises(LuaPluginError, match="transaction left open"):
        await plugin.call(host)
    assert host.rolled_back == [100] and host.open_txs == set()
    await plugin.assert_still_healthy(host)


async def test_yields_work_from_nested_functions_pcall_and_coroutines(run_lua, host):
    result = await run_lua("""
        local function deep(n) if n == 0 then return query_one('select 1').name end return deep(n - 1) end
        local ok, via_pcall = pcall(function() return query_one('select 2').name end)
        local via_xpcall = select(2, xpcall(function() return deep(3) end, function(e) return e end))
        local co = coroutine.wrap(function(x)
          local inner = coroutine.wrap(function() coroutine.yield(query_one('select 3').id) end)
          coroutine.yield(x + inner())
          return 'end'
        end)
        local sorted = {3, 1, 2}
        table.sort(sorted)
        return {deep = deep(5), via_pcall = via_pcall, via_xpcall = via_xpcall,
                co1 = co(10), co2 = co(), sorted = sorted}""")
    assert result == {"deep": "first", "via_pcall": "first", "via_xpcall": "first",
                      "co1": 11, "co2": "end", "sorted": [1, 2, 3]}
    assert [c[1] for c in host.calls] == ["select 2", "select 1", "select 1", "select 3"]


async def test_concurrent_calls_on_one_runtime_do_not_interfere(host, make_plugin):
    host.delay = 0.01
    plugin = make_plugin("""
        local tx = begin_transaction()
        local seen = {}
        for i = 1, 5 do
          seen[i] = args.tag .. ':' .. tx:query('select ?', {args.tag})[1].name
        end
        tx:commit()
        counter = (counter or 0) + 1
        return seen""")
    a, b = await asyncio.gather(plugin.call(host, {"tag": "a"}), plugin.call(host, {"tag": "b"}))
    assert a == ["a:first"] * 5 and b == ["b:first"] * 5
    txs_by_tag = {}
    for call in host.calls:
        if call[0] == "query":
            txs_by_tag.setdefault(call[2][0], set()).add(call[3])
    assert txs_by_tag["a"] != txs_by_tag["b"] and all(len(s) == 1 for s in txs_by_tag.values())
    assert sorted(host.committed) == [100, 101]


async def test_a_call_cannot_use_another_calls_transaction(host, make_plugin):
    host.delay = 0.01
    plugin = make_plugin("""
        if args.role == 'owner' then
          shared_tx = begin_transaction()
          query('select 1'); query('select 1')
          shared_tx:commit()
          return 'owner done'
        end
        query('select 1')
        local ok, err = pcall(shared_tx.query, shared_tx, 'select secret')
        return err""")
    owner, thief = await asyncio.gather(plugin.call(host, {"role": "owner"}),
                                        plugin.call(host, {"role": "thief"}))
    assert owner == "owner done" and "not from this call" in thief


async def test_database_calls_are_refused_while_init_lua_loads():
    from modula.lua import PluginRuntime
    runtime = PluginRuntime("shop")
    with pytest.raises(LuaPluginError) as error:
        runtime.load("plugin.type{name = 'X', fields = {a = 'Int'}}\nquery('select 1')")
    assert "not available while init.lua loads" in error.value.message
    assert error.value.location == "init.lua:2"
