"""The Lua scripts Frontlas runs in Redis, one per atomic step.

Every script touches only keys it declares, and all of them in one hash slot:
either the ``{frontiers}`` slot (the frontier records, their index and ordinal
counter) or one frontier's ``{<frontier_id>}`` slot (its state, edges, services and
sync staging). That is what keeps Frontlas correct on Redis Cluster. See
:mod:`frontlas.store` for the key layout.
"""

from __future__ import annotations

#: HSET/HDEL over a run of ARGV in bounded slices (Lua's unpack has a stack limit)
_HELPERS = r"""
local function hset_pairs(key, from, n)
  local i = 0
  while i < n do
    local m = math.min(n - i, 200)
    local args = {}
    for j = 0, m - 1 do
      args[#args + 1] = ARGV[from + 2 * (i + j)]
      args[#args + 1] = ARGV[from + 2 * (i + j) + 1]
    end
    redis.call('HSET', key, unpack(args))
    i = i + m
  end
  return from + 2 * n
end

local function hdel_ids(key, from, n)
  local i = 0
  while i < n do
    local m = math.min(n - i, 400)
    local args = {}
    for j = 0, m - 1 do
      args[#args + 1] = ARGV[from + i + j]
    end
    redis.call('HDEL', key, unpack(args))
    i = i + m
  end
  return from + n
end

local function expire_all(keys_ttls)
  for _, kt in ipairs(keys_ttls) do
    redis.call('EXPIRE', kt[1], kt[2])
  end
end
"""

#: {frontiers} slot. KEYS: frontier hash, index zset, ordinal counter.
#: ARGV: frontier_id, session, sb_addr, eb_addr, ttl, now.
#: -> {'ok', ordinal} or {'conflict', seconds the other registration still lives}
REGISTER = r"""
local cur = redis.call('HGET', KEYS[1], 'session')
if cur and cur ~= ARGV[2] then
  return {'conflict', redis.call('TTL', KEYS[1])}
end
if not cur then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'registered_at', ARGV[6], 'edge_count', 0, 'service_count', 0)
end
redis.call('HSET', KEYS[1], 'frontier_id', ARGV[1], 'session', ARGV[2],
  'advertised_sb_addr', ARGV[3], 'advertised_eb_addr', ARGV[4], 'update_time', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local ordinal = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not ordinal then
  ordinal = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], ordinal, ARGV[1])
end
return {'ok', tonumber(ordinal)}
"""

#: {frontiers} slot: a heartbeat of the frontier record, with the counts the
#: frontier's slot reported. KEYS: frontier hash, index zset, ordinal counter.
#: ARGV: frontier_id, session, ttl, now, edge_count (-1: keep), service_count (-1: keep).
#: -> 'ok' | 'unknown' | 'conflict'
TOUCH = r"""
local cur = redis.call('HGET', KEYS[1], 'session')
if not cur then return 'unknown' end
if cur ~= ARGV[2] then return 'conflict' end
redis.call('HSET', KEYS[1], 'update_time', ARGV[4])
if tonumber(ARGV[5]) >= 0 then redis.call('HSET', KEYS[1], 'edge_count', ARGV[5]) end
if tonumber(ARGV[6]) >= 0 then redis.call('HSET', KEYS[1], 'service_count', ARGV[6]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
end
return 'ok'
"""

#: {frontier} slot: apply one report. KEYS: state, edges, services.
#: ARGV: session, seq, edge_ttl, service_ttl, state_ttl,
#:       n_edges_on, n_edges_off, n_services_on, n_services_off,
#:       then (edge_id, record)*, edge_id*, (service_id, record)*, service_id*.
#: -> {status, edge_count, service_count}
APPLY = _HELPERS + r"""
local session = redis.call('HGET', KEYS[1], 'session')
if (not session) or session ~= ARGV[1] then
  return {'unknown', 0, 0}
end
local seq = tonumber(ARGV[2])
local status = 'stale'
if seq > tonumber(redis.call('HGET', KEYS[1], 'seq')) then
  local at = 10
  at = hset_pairs(KEYS[2], at, tonumber(ARGV[6]))
  at = hdel_ids(KEYS[2], at, tonumber(ARGV[7]))
  at = hset_pairs(KEYS[3], at, tonumber(ARGV[8]))
  at = hdel_ids(KEYS[3], at, tonumber(ARGV[9]))
  redis.call('HSET', KEYS[1], 'seq', seq)
  status = 'ok'
end
expire_all({{KEYS[1], ARGV[5]}, {KEYS[2], ARGV[3]}, {KEYS[3], ARGV[4]}})
return {status, redis.call('HLEN', KEYS[2]), redis.call('HLEN', KEYS[3])}
"""

#: {frontier} slot: one chunk of a snapshot. KEYS: state, edges, services, sync
#: marker, staging edges, staging services.
#: ARGV: session, seq, first (0/1), last (0/1), edge_ttl, service_ttl, state_ttl,
#:       staging_ttl, n_edges, n_services, then (edge_id, record)*, (service_id, record)*.
#: -> {status, edge_count, service_count}
SYNC = _HELPERS + r"""
local session, seq = ARGV[1], tonumber(ARGV[2])
local first, last = ARGV[3] == '1', ARGV[4] == '1'
local st_session = redis.call('HGET', KEYS[1], 'session')
if st_session == session and seq <= tonumber(redis.call('HGET', KEYS[1], 'seq')) then
  return {'stale', redis.call('HLEN', KEYS[2]), redis.call('HLEN', KEYS[3])}
end
local m_session = redis.call('HGET', KEYS[4], 'session')
local m_seq = tonumber(redis.call('HGET', KEYS[4], 'seq') or '0')
if first then
  if m_session == session and seq <= m_seq then return {'stale', 0, 0} end
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
  redis.call('HSET', KEYS[4], 'session', session)
else
  if m_session ~= session then return {'abort', 0, 0} end
  if seq <= m_seq then return {'stale', 0, 0} end
  if seq ~= m_seq + 1 then return {'abort', 0, 0} end
end
redis.call('HSET', KEYS[4], 'seq', seq)
local at = 11
at = hset_pairs(KEYS[5], at, tonumber(ARGV[9]))
at = hset_pairs(KEYS[6], at, tonumber(ARGV[10]))
if not last then
  expire_all({{KEYS[4], ARGV[8]}, {KEYS[5], ARGV[8]}, {KEYS[6], ARGV[8]}})
  return {'ok', 0, 0}
end
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('RENAME', KEYS[5], KEYS[2]) else redis.call('DEL', KEYS[2]) end
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('RENAME', KEYS[6], KEYS[3]) else redis.call('DEL', KEYS[3]) end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('HSET', KEYS[1], 'session', session, 'seq', seq)
expire_all({{KEYS[1], ARGV[7]}, {KEYS[2], ARGV[5]}, {KEYS[3], ARGV[6]}})
return {'ok', redis.call('HLEN', KEYS[2]), redis.call('HLEN', KEYS[3])}
"""

#: {frontiers} slot. KEYS: frontier hash, index zset. ARGV: frontier_id, session.
#: -> 1 if removed, 0 if it was not this session's
UNREGISTER_FRONTIER = r"""
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

#: {frontier} slot. KEYS: state, edges, services, sync marker, staging edges,
#: staging services. ARGV: session. -> 1 if removed
UNREGISTER_DATA = r"""
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return 1
"""

#: {frontiers} slot: every declared frontier hash, flattened (empty when gone)
MHGETALL = r"""
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HGETALL', key)
end
return out
"""

#: {frontiers} slot: drop index members whose record expired.
#: KEYS: index, then one frontier hash per ARGV frontier_id. -> members removed
PRUNE = r"""
local removed = 0
for i, fid in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], fid)
  end
end
return removed
"""
