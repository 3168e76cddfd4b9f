"""The trusted Lua code each plugin runtime runs first: it builds the sandbox and the host API.

It keeps private references to ``debug`` and the raw libraries, installs the instruction and
wall-clock hook on every coroutine, guards the C functions hooks cannot interrupt, holds the
memory cap only while plugin code runs, and returns the few trusted functions the Python side
drives (``start_chunk``, ``start``, ``step``...).
"""

PRELUDE = r"""
local config, py = ...
local debug_sethook, debug_getinfo = debug.sethook, debug.getinfo
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running, co_close = coroutine.status, coroutine.running, coroutine.close
local pcall, xpcall, error, type, select, tostring, next = pcall, xpcall, error, type, select, tostring, next
local setmetatable, getmetatable, rawget, rawequal, rawlen = setmetatable, getmetatable, rawget, rawequal, rawlen
local lua_load, collectgarbage = load, collectgarbage
local unpack, concat = table.unpack, table.concat
local s_find, s_match, s_gmatch, s_gsub = string.find, string.match, string.gmatch, string.gsub
local s_rep, s_sub, s_byte = string.rep, string.sub, string.byte
local t_insert, t_remove, t_move = table.insert, table.remove, table.move
local math_type, math_huge = math.type, math.huge
local clock, py_cap, py_uncap = py.clock, py.cap_memory, py.uncap_memory
local cpu_clock = os.clock

-- Lupa pushes a Python function's results outside Lua's protected mode, where an allocation
-- refused by the memory cap aborts or deadlocks the process: Python callbacks run uncapped.
-- The cap comes back in this frame, whatever happened inside the pcall (clock, called by the
-- hook, allocates nothing and needs no wrapper).
local function call_uncapped(fn, ...)
  py_uncap()
  return fn(...)
end

local function uncapped(fn)
  return function(...)
    local ok, a, b = pcall(call_uncapped, fn, ...)
    py_cap()
    if not ok then error(type(a) == "string" and a or "host function failed", 0) end
    return a, b
  end
end

local py_log, py_declare = uncapped(py.log), uncapped(py.declare)
local py_json_encode, py_json_decode = uncapped(py.json_encode), uncapped(py.json_decode)

local COUNT = 10000
-- The wall clock is Python's, and each read takes the GIL from the event loop's thread: read it
-- only after this much process CPU time (C's clock(), no GIL) since the last read, so a busy
-- handler reads it tens of times a second instead of thousands, and overshoots its deadline by
-- about this much at most.
local WALL_CLOCK_EVERY = 0.02
local MAX_STRING = config.max_string_op_input
local PATTERN_STEPS = config.pattern_steps
local MAX_BUILT = config.memory_bytes
local MAX_TABLE_SPAN = 10000000

local REQUEST = {}
local ORPHAN = {dead = "BUDGET_EXCEEDED", reason = "plugin code ran outside a call"}
local current = nil
local fast_armed = setmetatable({}, {__mode = "k"})
local handler_threads = setmetatable({}, {__mode = "k"})
local handlers = {}

local function hook()
  local c = current or ORPHAN
  if not c.dead then
    c.used = c.used + COUNT
    if c.used > c.budget then
      c.dead, c.reason = "BUDGET_EXCEEDED", "instruction budget exceeded"
    else
      local cpu = cpu_clock()
      if cpu >= c.next_wall_read then
        c.next_wall_read = cpu + WALL_CLOCK_EVERY
        if clock() > c.deadline then c.dead, c.reason = "TIMEOUT", "time budget exceeded" end
      end
    end
  end
  local thread = co_running()
  if c.dead then
    -- Keep failing on every instruction so pcall loops cannot outlive the budget.
    fast_armed[thread] = true
    debug_sethook(hook, "", 1)
    error(c.reason, 0)
  elseif fast_armed[thread] then
    fast_armed[thread] = nil
    debug_sethook(hook, "", COUNT)
  end
end

local function new_thread(fn)
  local co = co_create(fn)
  debug_sethook(co, hook, "", COUNT)
  return co
end

local function check_alive(...)
  local c = current or ORPHAN
  if c.dead then error(c.reason, 0) end
  return ...
end

local function after_protected(ok, ...)
  local c = current or ORPHAN
  if not ok and not c.dead and rawequal((...), "not enough memory") then
    c.dead, c.reason = "MEMORY_EXCEEDED", "not enough memory"
  end
  if c.dead then error(c.reason, 0) end
  return ok, ...
end

local function safe_pcall(fn, ...)
  return after_protected(pcall(fn, ...))
end

-- An error raised by the hook runs the message handler with hooks disabled, so once the call
-- is over budget the plugin's handler is skipped instead of run unbounded.
local function safe_xpcall(fn, handler, ...)
  local function guarded(err)
    local c = current or ORPHAN
    if c.dead then return err end
    return handler(err)
  end
  return after_protected(xpcall(fn, guarded, ...))
end

-- coroutines: every plugin coroutine is hooked, and host requests yielded inside one are
-- passed outwards to the handler coroutine, so Lua code looks synchronous at any depth.

local function pass_requests(co, ok, ...)
  if ok and rawequal((...), REQUEST) and co_status(co) == "suspended" then
    return pass_requests(co, co_resume(co, co_yield(...)))
  end
  return after_protected(ok, ...)
end

local function sandbox_create(fn)
  if type(fn) ~= "function" then error("bad argument #1 to 'create' (function expected)", 2) end
  return new_thread(fn)
end

local function sandbox_resume(co, ...)
  if type(co) ~= "thread" then error("bad argument #1 to 'resume' (coroutine expected)", 2) end
  if handler_threads[co] then error("cannot resume a handler coroutine", 2) end
  return pass_requests(co, co_resume(co, ...))
end

local function wrap_result(ok, ...)
  if ok then return ... end
  error((...), 0)
end

local function sandbox_wrap(fn)
  local co = sandbox_create(fn)
  return function(...) return wrap_result(sandbox_resume(co, ...)) end
end

local function sandbox_yield(...)
  if handler_threads[co_running()] then error("attempt to yield from outside a coroutine", 2) end
  return co_yield(...)
end

local function sandbox_close(co)
  if handler_threads[co] then error("cannot close a handler coroutine", 2) end
  return co_close(co)
end

-- C string functions run without hooks: bound their input and estimate pattern work first.

local function set_end(pat, i, n)
  local j = i + 1
  if s_byte(pat, j) == 94 then j = j + 1 end
  repeat
    if j > n then error("malformed pattern (missing ']')", 3) end
    local c = s_byte(pat, j)
    j = j + 1
    if c == 37 then j = j + 1 end
  until s_byte(pat, j) == 93
  return j
end

local function longest_run(s, class, runs)
  local known = runs[class]
  if known then return known end
  local best, i, n = 0, 1, #s
  if class == "." then best = n else
    local item = class .. "+"
    while i <= n do
      local a, b = s_find(s, item, i)
      if not a then break end
      if b - a + 1 > best then best = b - a + 1 end
      i = b + 1
    end
  end
  runs[class] = best
  return best
end

local function count_plain(s, prefix, limit)
  local count, i = 0, 1
  while count <= limit do
    local a = s_find(s, prefix, i, true)
    if not a then break end
    count, i = count + 1, a + 1
  end
  return count
end

local function pattern_cost(s, pat)
  local n, m, i = #s, #pat, 1
  local anchored = s_byte(pat, 1) == 94
  if anchored then i = 2 end
  local per, linear, runs = 1.0, 0, {}
  local prefix, in_prefix = {}, true
  while i <= m do
    local c = s_byte(pat, i)
    local class_end
    if c == 40 or c == 41 then
      i = i + 1
    elseif c == 36 and i == m then
      i = i + 1
    elseif c == 37 then
      local nx = s_sub(pat, i + 1, i + 1)
      if nx == "b" then
        if i + 3 > m then error("malformed pattern (missing arguments to '%b')", 3) end
        linear, in_prefix, i = linear + 1, false, i + 4
      elseif nx == "f" then
        if s_byte(pat, i + 2) ~= 91 then error("missing '[' after '%f' in pattern", 3) end
        in_prefix, i = false, set_end(pat, i + 2, m) + 1
      elseif s_find(nx, "^%d") then
        linear, in_prefix, i = linear + 1, false, i + 2
      elseif nx == "" then
        error("malformed pattern (ends with '%')", 3)
      else
        class_end = i + 1
      end
    elseif c == 91 then
      class_end = set_end(pat, i, m)
    else
      class_end = i
    end
    if class_end then
      local q = s_byte(pat, class_end + 1)
      local class = s_sub(pat, i, class_end)
      if q == 42 or q == 43 or q == 45 then
        per = per * (longest_run(s, class, runs) + 1)
        in_prefix, i = false, class_end + 2
      elseif q == 63 then
        per, in_prefix, i = per * 2, false, class_end + 2
      else
        if in_prefix and (c ~= 37 or not s_find(class, "^%%%a")) and c ~= 91 and c ~= 46 then
          prefix[#prefix + 1] = s_sub(class, -1)
        else
          in_prefix = false
        end
        i = class_end + 1
      end
      if per > PATTERN_STEPS then return math_huge end
    end
  end
  per = per * (1 + linear * n) * (1 + m // 16)
  local starts = n + 1
  if anchored then starts = 1
  elseif #prefix > 0 then starts = count_plain(s, concat(prefix), PATTERN_STEPS // per + 1) end
  return starts * per
end

local function check_pattern(name, s, pat, plain)
  if type(s) == "number" then s = tostring(s) end
  if type(pat) == "number" then pat = tostring(pat) end
  if type(s) ~= "string" or type(pat) ~= "string" then return end
  if #s > MAX_STRING then
    error(name .. ": subject of " .. #s .. " bytes exceeds the limit of " .. MAX_STRING, 3)
  end
  local cost
  if plain or not s_find(pat, "[%^%$%*%+%?%.%(%)%[%]%%%-]") then
    cost = #s * #pat // 64
  else
    cost = pattern_cost(s, pat)
  end
  if cost > PATTERN_STEPS then
    error(name .. ": pattern too complex for a subject of " .. #s ..
          " bytes (estimated worst case exceeds " .. PATTERN_STEPS .. " steps)", 3)
  end
end

local function safe_find(s, pat, init, plain)
  check_pattern("string.find", s, pat, plain)
  return s_find(s, pat, init, plain)
end

local function safe_match(s, pat, init)
  check_pattern("string.match", s, pat, false)
  return s_match(s, pat, init)
end

local function safe_gmatch(s, pat, init)
  check_pattern("string.gmatch", s, pat, false)
  return s_gmatch(s, pat, init)
end

local function safe_gsub(s, pat, repl, n)
  check_pattern("string.gsub", s, pat, false)
  return s_gsub(s, pat, repl, n)
end

local function safe_rep(s, n, sep)
  if type(n) == "number" and (type(s) == "string" or type(s) == "number") then
    local piece, glue = #tostring(s), sep and #tostring(sep) or 0
    if n <= 0 or piece + glue == 0 then return "" end
    if n * (piece + glue) > MAX_BUILT then
      error("string.rep: result of about " .. (n * (piece + glue)) .. " bytes is too large", 2)
    end
  end
  return s_rep(s, n, sep)
end

local function checked_span(name, count)
  if type(count) == "number" and count > MAX_TABLE_SPAN then
    error(name .. ": " .. count .. " elements is too many", 3)
  end
end

local function safe_insert(t, ...)
  if type(t) == "table" then checked_span("table.insert", #t) end
  return t_insert(t, ...)
end

local function safe_remove(t, ...)
  if type(t) == "table" then checked_span("table.remove", #t) end
  return t_remove(t, ...)
end

local function safe_move(a1, f, e, t, a2)
  if math_type(f) and math_type(e) then checked_span("table.move", e - f + 1) end
  return t_move(a1, f, e, t, a2)
end

local function copy(source, except)
  local result = {}
  for k, v in next, source do
    if not (except and except[k]) then result[k] = v end
  end
  return result
end

local sandbox_string = copy(string, {dump = true})
sandbox_string.find, sandbox_string.match = safe_find, safe_match
sandbox_string.gmatch, sandbox_string.gsub, sandbox_string.rep = safe_gmatch, safe_gsub, safe_rep
local string_mt = getmetatable("")
string_mt.__index = sandbox_string
string_mt.__metatable = false

local sandbox_table = copy(table)
sandbox_table.insert, sandbox_table.remove, sandbox_table.move = safe_insert, safe_remove, safe_move

-- the host API: every database or http call yields a request to the Python driver.

local function host_call(op, ...)
  local c = current
  if c == nil or c.loading then
    error(op .. " is not available while init.lua loads; call it from a handler", 3)
  end
  local ok, result = co_yield(REQUEST, op, ...)
  if not ok then error(result, 3) end
  return result
end

local function query(sql, params) return (host_call("query", sql, params)) end
local function query_one(sql, params) return (host_call("query_one", sql, params)) end
local function exec(sql, params) return (host_call("exec", sql, params)) end
local function insert(tbl, values) return (host_call("insert", tbl, values)) end

local tx_ids = setmetatable({}, {__mode = "k"})
local tx_open = setmetatable({}, {__mode = "k"})
local tx_methods = {}
local tx_mt = {__index = tx_methods, __metatable = "transaction"}

local function tx_id(tx)
  local id = tx_ids[tx]
  if id == nil then error("expected a transaction (use tx:method(...), not tx.method(...))", 3) end
  return id
end

function tx_methods.query(tx, sql, params) return (host_call("query", sql, params, tx_id(tx))) end
function tx_methods.query_one(tx, sql, params) return (host_call("query_one", sql, params, tx_id(tx))) end
function tx_methods.exec(tx, sql, params) return (host_call("exec", sql, params, tx_id(tx))) end
function tx_methods.insert(tx, tbl, values) return (host_call("insert", tbl, values, tx_id(tx))) end
function tx_methods.commit(tx)
  local id = tx_id(tx)
  tx_open[tx] = nil
  host_call("commit", id)
end
function tx_methods.rollback(tx)
  local id = tx_id(tx)
  tx_open[tx] = nil
  host_call("rollback", id)
end

local function begin_transaction()
  local id = host_call("begin")
  local tx = setmetatable({}, tx_mt)
  tx_ids[tx], tx_open[tx] = id, true
  return tx
end

local function finish_transaction(tx, ok, ...)
  check_alive()
  if ok then
    if tx_open[tx] then tx_methods.commit(tx) end
    return ...
  end
  local err = ...
  if tx_open[tx] then check_alive(pcall(tx_methods.rollback, tx)) end
  error(err, 0)
end

local function transaction(fn)
  if type(fn) ~= "function" then error("transaction expects a function(tx)", 2) end
  local tx = begin_transaction()
  return finish_transaction(tx, pcall(fn, tx))
end

local function http_request(request)
  if type(request) ~= "table" then error("http.request expects a table", 2) end
  return (host_call("http", request))
end

-- Queued in the call's transaction (or on its own when none is open), sent after it commits.
local function http_enqueue(request)
  if type(request) ~= "table" then error("http.enqueue expects a table", 2) end
  return (host_call("enqueue", request))
end

local function log_with(level)
  return function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    py_log(level, concat(parts, " "))
  end
end

local function encode(value)
  local ok, result = py_json_encode(value)
  if not ok then error(result, 2) end
  return result
end

local function decode(text)
  local ok, result = py_json_decode(text)
  if not ok then error(result, 2) end
  return result
end

local json_null = setmetatable({}, {
  __metatable = "json.null",
  __newindex = function() error("json.null is read-only", 2) end,
  __tostring = function() return "null" end,
})

local json = {
  null = json_null,
  encode = encode,
  decode = decode,
}

-- declarations: only while init.lua loads; the handler is kept here and named by an index.

local function declare(kind, spec, handler_kind)
  local c = current
  if c == nil or not c.loading then
    error("plugin." .. kind .. " may only be called while init.lua loads", 3)
  end
  if type(spec) ~= "table" then error("plugin." .. kind .. " expects a table", 3) end
  local fields = copy(spec)
  if handler_kind then
    if type(fields.handler) ~= "function" then
      error("plugin." .. kind .. ": handler must be a function", 3)
    end
    handlers[#handlers + 1] = fields.handler
    fields.handler = #handlers
  end
  -- Where init.lua made the declaration (the caller of plugin.*), for problems found later.
  local caller = debug_getinfo(3, "Sl")
  local where = caller and caller.currentline and caller.currentline > 0
    and (caller.short_src .. ":" .. caller.currentline) or nil
  local ok, err = py_declare(kind, fields, where)
  if not ok then error(err, 3) end
end

local plugin = {
  define_table = function(spec) declare("define_table", spec) end,
  query = function(spec) declare("query", spec, true) end,
  mutation = function(spec) declare("mutation", spec, true) end,
  field = function(spec) declare("field", spec, true) end,
  type = function(spec) declare("type", spec) end,
  input = function(spec) declare("input", spec) end,
  on = function(event, tbl, handler)
    declare("on", {event = event, table = tbl, handler = handler}, true)
  end,
}

local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed", 2)
  end
  return setmetatable(t, mt)
end

local env = {}

local function safe_load(chunk, name, mode, chunk_env)
  if type(chunk) ~= "string" then error("load expects a string chunk", 2) end
  if s_byte(chunk, 1) == 27 then return nil, "binary chunks are not allowed" end
  if chunk_env == nil then chunk_env = env end
  return lua_load(chunk, "=" .. tostring(name or "load"), "t", chunk_env)
end

local sandbox_os = {time = os.time, clock = os.clock, date = os.date}
local sandbox_coroutine = {
  create = sandbox_create, resume = sandbox_resume, wrap = sandbox_wrap, yield = sandbox_yield,
  status = co_status, running = co_running, isyieldable = coroutine.isyieldable,
  close = sandbox_close,
}

local basics = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = safe_pcall, xpcall = safe_xpcall, select = select, tonumber = tonumber,
  tostring = tostring, type = type, rawequal = rawequal, rawlen = rawlen, rawget = rawget,
  setmetatable = safe_setmetatable, getmetatable = getmetatable, load = safe_load,
  print = log_with("info"), _VERSION = _VERSION,
  string = sandbox_string, table = sandbox_table, math = copy(math), utf8 = copy(utf8),
  os = sandbox_os, coroutine = sandbox_coroutine,
  plugin = plugin, query = query, query_one = query_one, exec = exec, insert = insert,
  begin_transaction = begin_transaction, transaction = transaction,
  json = json, log = {info = log_with("info"), warn = log_with("warn"), error = log_with("error")},
  http = {request = http_request, enqueue = http_enqueue},
}
for k, v in next, basics do env[k] = v end
env._G = env

for _, name in next, {"debug", "io", "os", "package", "require", "dofile", "loadfile", "load",
                      "collectgarbage", "python", "string", "warn"} do
  _G[name] = nil
end

local function error_text(err)
  if type(err) == "string" then return err end
  if type(err) == "number" then return tostring(err) end
  return "(error object is a " .. type(err) .. " value)"
end

local function finish(co, ok, ...)
  py_uncap()
  current = nil
  if not ok then return "error", error_text((...)) end
  if co_status(co) == "dead" then return "done", (...) end
  if rawequal((...), REQUEST) then return "request", select(2, ...) end
  return "error", "handler yielded outside a coroutine"
end

local trusted = {}
local running_calls, last_call = {}, 0

-- Coroutines stay on the Lua side (lupa cannot hand a thread back); Python names them by number.
local function register(fn)
  local co = new_thread(fn)
  handler_threads[co] = true
  last_call = last_call + 1
  running_calls[last_call] = co
  return last_call
end

function trusted.start_chunk(source, chunkname)
  local fn, err = lua_load(source, "=" .. chunkname, "t", env)
  if not fn then return nil, err end
  return register(fn)
end

-- `ctx.can(action, resource)` answers from the grants the host put in ctx (the viewer's
-- permissions): a plain Lua closure, so no host object reaches the plugin.
local table_pack, table_unpack, select_count, to_string = table.pack, table.unpack, select, tostring

local function with_can(ctx)
  if type(ctx) == "table" and type(ctx.grants) == "table" then
    local grants = ctx.grants
    ctx.grants = nil
    ctx.can = function(action, resource)
      return grants.admin == true or (type(grants.allowed) == "table" and grants.allowed[to_string(action) .. ":" .. to_string(resource)] == true)
    end
  end
  return ctx
end

function trusted.start(index)
  local fn = handlers[index]
  if fn == nil then return nil end
  return register(function(...)
    local n = select_count("#", ...)
    local args = table_pack(...)
    args[n] = with_can(args[n])  -- ctx is always the last argument
    return fn(table_unpack(args, 1, n))
  end)
end

function trusted.step(state, id, ...)
  local co = running_calls[id]
  current = state
  py_cap()
  return finish(co, co_resume(co, ...))
end

-- The finished coroutine is dropped, never closed: closing would run the plugin's pending
-- __close handlers, and after a hook error Lua leaves hooks disabled on that thread.
function trusted.finish(id)
  running_calls[id] = nil
end

function trusted.collect()
  collectgarbage("collect")
end

function trusted.is_null(value)
  return rawequal(value, json_null)
end

trusted.null = json_null
return trusted
"""
