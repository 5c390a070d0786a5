/*
 * The Lua side of the reload-free backend path (Debian's libnginx-mod-http-lua with lua-resty-core).
 *
 * Backends of an upstream live in a lua_shared_dict (`berth_backends`, one key per upstream, value
 * `ADDR PORT,ADDR PORT`), shared by every worker, old and new. They get there two ways:
 *   - at nginx start and at every reload, `init_by_lua` (in the master) reads the backends file
 *     Berth rendered beside nginx.conf: the files on disk are the source of truth, so an nginx
 *     restarted after a crash serves the right backends before Berth says anything;
 *   - while nginx runs, Berth PUTs the same text to the loopback admin server with a token. Apps on
 *     the host network reach that port too, so the token is what keeps them from rewriting the
 *     upstreams: nginx knows only its SHA-1 (base64) from a root-only file (0600 in a 0700
 *     directory) read by the master at start and reload; workers never read it.
 *     (A unix socket was the other choice: a file left by a `kill -9` keeps nginx from starting
 *     again by itself, which the file-is-the-truth promise needs.)
 * `balancer_by_lua` picks a backend round robin per worker, skips one that failed in the last second
 * (max_fails=1 fail_timeout=1s, as the static upstreams do), and on a retry allowed by
 * proxy_next_upstream picks one not tried yet for this request (set_more_tries up to 3 tries).
 */

/** Name of the lua_shared_dict holding the backends. */
export const BACKENDS_DICT = 'berth_backends';

/** Line format of the backends file and of an admin PUT: `UPSTREAM ADDR PORT,ADDR PORT` (or just `UPSTREAM` for none). */
export const BACKENDS_HEADER = '# berth-backends v1: rendered by Berth, read by nginx (init_by_lua) at start and reload. Do not edit.';

/** Path of the admin location (loopback admin server) that takes backend sets. */
export const BACKENDS_ADMIN_PATH = '/berth/backends';

/** Request header carrying the admin token. */
export const TOKEN_HEADER = 'x-berth-token';

/**
 * Lua defining the global `berth` table, loaded once per configuration in the master (and so in
 * every worker forked from it). `backendsFile` is an absolute path of safe characters (checked by
 * the writer), embedded in a Lua string.
 */
export function luaInit(backendsFile: string, verifierFile: string): string {
  return `local balancer = require("ngx.balancer")
local dict = ngx.shared.${BACKENDS_DICT}
local FILE = "${backendsFile}"
local VERIFIER = nil
local FAIL_TIMEOUT = 1
local MAX_TRIES = 3
local cache = {}
local rr = {}
local failed = {}
local nfailed = 0
berth = {}

function berth.parse(text)
  local m = {}
  for line in string.gmatch(text, "[^\\n]+") do
    if string.sub(line, 1, 1) ~= "#" then
      local name, rest = string.match(line, "^([%w_.-]+)%s*(.-)%s*$")
      if name then m[name] = rest end
    end
  end
  return m
end

function berth.replace(m, delete_others)
  if delete_others then
    for _, k in ipairs(dict:get_keys(0)) do
      if m[k] == nil then dict:delete(k) end
    end
  end
  local n = 0
  for k, v in pairs(m) do
    local ok, err = dict:safe_set(k, v)
    if not ok then return nil, "cannot store backends of " .. k .. ": " .. tostring(err) end
    n = n + 1
  end
  return n
end

local function peers_of(name)
  local raw = dict:get(name)
  if raw == nil or raw == "" then return nil end
  local c = cache[name]
  if c ~= nil and c.raw == raw then return c.peers end
  local peers = {}
  for addr, port in string.gmatch(raw, "([^,%s]+) (%d+)") do
    peers[#peers + 1] = { addr, tonumber(port), addr .. " " .. port }
  end
  if #peers == 0 then return nil end
  cache[name] = { raw = raw, peers = peers }
  return peers
end

function berth.admit(name)
  local raw = dict:get(name)
  if raw == nil or raw == "" then
    ngx.status = 503
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("no healthy instance for ", name, "\\n")
    return ngx.exit(503)
  end
end

function berth.balance(name)
  local peers = peers_of(name)
  if peers == nil then return ngx.exit(502) end
  local ctx = ngx.ctx
  local tried = ctx.berth_tried
  local now = ngx.now()
  if tried == nil then
    tried = {}
    ctx.berth_tried = tried
    local more = math.min(#peers, MAX_TRIES) - 1
    if more > 0 then balancer.set_more_tries(more) end
  else
    local state = balancer.get_last_failure()
    if state ~= nil and ctx.berth_peer ~= nil then
      if failed[ctx.berth_peer] == nil then nfailed = nfailed + 1 end
      failed[ctx.berth_peer] = now + FAIL_TIMEOUT
      if nfailed > 1000 then
        for k, t in pairs(failed) do
          if t <= now then failed[k] = nil; nfailed = nfailed - 1 end
        end
      end
    end
  end
  local n = #peers
  local start = rr[name] or 0
  local pick, spare, spare_i
  for i = 1, n do
    local j = (start + i - 1) % n + 1
    local p = peers[j]
    if not tried[p[3]] then
      local t = failed[p[3]]
      if t == nil or t <= now then
        pick = p
        rr[name] = j % n
        break
      end
      if spare == nil then spare = p; spare_i = j end
    end
  end
  if pick == nil then
    if spare ~= nil then
      pick = spare
      rr[name] = spare_i % n
    else
      pick = peers[start % n + 1]
      rr[name] = (start + 1) % n
    end
  end
  tried[pick[3]] = true
  ctx.berth_peer = pick[3]
  local ok, err = balancer.set_current_peer(pick[1], pick[2])
  if not ok then
    ngx.log(ngx.ERR, "berth balancer: cannot use ", pick[3], " for ", name, ": ", err)
    return ngx.exit(502)
  end
end

function berth.admin()
  local given = ngx.var.http_${TOKEN_HEADER.replace(/-/g, '_')}
  if VERIFIER == nil or given == nil or ngx.encode_base64(ngx.sha1_bin(given)) ~= VERIFIER then
    ngx.status = 403
    ngx.say("forbidden")
    return ngx.exit(403)
  end
  local method = ngx.req.get_method()
  if method == "GET" then
    local keys = dict:get_keys(0)
    table.sort(keys)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = k .. " " .. (dict:get(k) or "") .. "\\n" end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(table.concat(out))
    return
  end
  if method ~= "PUT" then
    ngx.status = 405
    ngx.say("use GET or PUT")
    return ngx.exit(405)
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body == nil then
    local path = ngx.req.get_body_file()
    if path ~= nil then
      local f = io.open(path, "r")
      if f ~= nil then body = f:read("*a"); f:close() end
    end
  end
  local n, err = berth.replace(berth.parse(body or ""), true)
  if n == nil then
    ngx.status = 507
    ngx.say(err)
    return ngx.exit(507)
  end
  ngx.say("ok ", n)
end

do
  local v = io.open("${verifierFile}", "r")
  if v ~= nil then
    VERIFIER = string.match(v:read("*a") or "", "^%s*(%S+)")
    v:close()
  end
  local f = io.open(FILE, "r")
  if f ~= nil then
    local text = f:read("*a")
    f:close()
    local n, err = berth.replace(berth.parse(text), false)
    if n == nil then ngx.log(ngx.ERR, "berth: ", err) end
  end
end`;
}
