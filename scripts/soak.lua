-- wrk script of scripts/soak: sends a weighted mix of requests and checks the status of every response.
--
--   wrk -t1 -c64 -d600s -s scripts/soak.lua http://127.0.0.1:PORT -- REQUESTS
--
-- REQUESTS is written by scripts/soak_requests.py: the kinds of request, each with the one status it must get. A
-- request's X-Request-Id starts with its kind's number, and the server echoes it, so response() knows which kind a
-- response answers. Three kinds are made here: graphs_post_new registers a graph never seen before (its constant is
-- a counter), graphs_get_new reads back one registered that way, and graphs_delete_new deletes one that was read
-- back; when there is none to read or delete, a new one is registered instead. done() prints one line per kind
-- (`kind NAME EXPECTED COUNT MISMATCHES [STATUS:COUNT...]`), then the responses whose kind was unknown and wrk's
-- own error counts.

local kinds = {}     -- index -> {name, expected, request}
local byName = {}    -- name -> index
local deck = {}      -- kind indices, each repeated by its weight
counts = {}          -- "k" .. index -> responses
wrong = {}           -- "k" .. index .. " " .. status -> count
-- The tables done() reads through thread:get are flat, with string keys: wrk's copy of a table between Lua states
-- breaks on number keys and on nested tables.
names = {}           -- "k" .. index -> "NAME EXPECTED"
unknown = 0          -- responses without a known kind
local serial = 0
local toGet, toDelete = {}, {}

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"), "requests file not found: " .. tostring(args[1]))
  local n = tonumber(f:read("*l"))
  kindCount = n
  for index = 1, n do
    local name, expected, weight, length = f:read("*l"):match("^(%S+) (%d+) (%d+) (%d+)$")
    local request = f:read(tonumber(length))
    f:read("*l")
    kinds[index] = {name = name, expected = tonumber(expected), request = request}
    byName[name] = index
    names["k" .. index] = name .. " " .. expected
    counts["k" .. index] = 0
    for _ = 1, tonumber(weight) do
      table.insert(deck, index)
    end
  end
  f:close()
  math.randomseed(os.time())
  -- New graphs get constants from a random base, so that a second run against the same server registers new ones.
  serial = math.random(1, 1000000) * 1000000
end

local function postNew()
  serial = serial + 1
  local index = byName.graphs_post_new
  local body = string.format('{"expr": "x * %d + y"}', serial)
  return wrk.format("POST", "/graphs", {["Content-Type"] = "application/json", ["X-Request-Id"] = tostring(index)},
    body)
end

function request()
  local index = deck[math.random(#deck)]
  local kind = kinds[index]
  if kind.name == "graphs_post_new" then
    return postNew()
  elseif kind.name == "graphs_get_new" then
    local id = table.remove(toGet)
    if not id then return postNew() end
    return wrk.format("GET", "/graphs/" .. id, {["X-Request-Id"] = index .. "." .. id})
  elseif kind.name == "graphs_delete_new" then
    local id = table.remove(toDelete)
    if not id then return postNew() end
    return wrk.format("DELETE", "/graphs/" .. id, {["X-Request-Id"] = index .. "." .. id})
  end
  return kind.request
end

function response(status, headers, body)
  local id = headers["X-Request-Id"]
  if not id then
    for name, value in pairs(headers) do
      if name:lower() == "x-request-id" then id = value end
    end
  end
  local index = id and tonumber(id:match("^(%d+)"))
  local kind = index and kinds[index]
  if not kind then
    unknown = unknown + 1
    return
  end
  local key = "k" .. index
  counts[key] = counts[key] + 1
  if status ~= kind.expected then
    local wrongKey = key .. " " .. status
    wrong[wrongKey] = (wrong[wrongKey] or 0) + 1
    return
  end
  if kind.name == "graphs_post_new" then
    local graph = body:match('"id"%s*:%s*"([^"]+)"')
    if graph then table.insert(toGet, graph) end
  elseif kind.name == "graphs_get_new" then
    table.insert(toDelete, id:match("^%d+%.(.+)$"))
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local threadCounts, threadWrong = thread:get("counts"), thread:get("wrong")
    local names = thread:get("names")
    for index = 1, thread:get("kindCount") do
      local key = "k" .. index
      local mismatches, detail = 0, {}
      for wrongKey, n in pairs(threadWrong) do
        local k, status = wrongKey:match("^(%S+) (%d+)$")
        if k == key then
          mismatches = mismatches + n
          table.insert(detail, status .. ":" .. n)
        end
      end
      table.sort(detail)
      io.write(string.format("kind %s %d %d %s\n", names[key], threadCounts[key], mismatches,
        table.concat(detail, ",")))
    end
    io.write(string.format("unknown %d\n", thread:get("unknown")))
  end
  io.write(string.format("errors connect %d read %d write %d timeout %d\n", summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("total %d requests in %.1f s\n", summary.requests, summary.duration / 1e6))
end
