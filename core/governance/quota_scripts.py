"""The Lua scripts behind core.governance.quotas: each check-and-count runs atomically inside Redis."""

# KEYS: user_day, user_hour, inflight, community_day, budget_day, reservation
# ARGV: images, request_id, lim_day, lim_hour, lim_inflight, lim_community, lim_budget_units, cost_units (1/10000 USD),
#       ttl_day, ttl_hour, now, when this job's in-flight slot lapses (a slot never outlives its job),
#       the request's work in megapixel-steps (kept for operators; no limit counts it)
# Returns {0, …} reserved (or already charged), {code, used, limit} over a limit, {6, 0, 0} already ended.
RESERVE = """
local state = redis.call('HGET', KEYS[6], 'state')
if state == 'refunded' then return {6, 0, 0} end
if state then return {0, 0, 0} end
local n = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[11])
local function over(key, limit, amount)
  limit = tonumber(limit)
  if limit < 0 then return false end
  return tonumber(redis.call('GET', key) or '0') + amount > limit
end
if over(KEYS[1], ARGV[3], n) then return {1, tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[3])} end
if over(KEYS[2], ARGV[4], n) then return {2, tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[4])} end
local lim_inflight = tonumber(ARGV[5])
if lim_inflight >= 0 and redis.call('ZCARD', KEYS[3]) + 1 > lim_inflight then
  return {3, redis.call('ZCARD', KEYS[3]), lim_inflight}
end
if over(KEYS[4], ARGV[6], n) then return {4, tonumber(redis.call('GET', KEYS[4]) or '0'), tonumber(ARGV[6])} end
local cost = tonumber(ARGV[8])
if cost > 0 and over(KEYS[5], ARGV[7], cost) then
  return {5, tonumber(redis.call('GET', KEYS[5]) or '0'), tonumber(ARGV[7])}
end
redis.call('INCRBY', KEYS[1], n); redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('INCRBY', KEYS[2], n); redis.call('EXPIRE', KEYS[2], ARGV[10])
redis.call('INCRBY', KEYS[4], n); redis.call('EXPIRE', KEYS[4], ARGV[9])
if cost > 0 then redis.call('INCRBY', KEYS[5], cost); redis.call('EXPIRE', KEYS[5], ARGV[9]) end
redis.call('ZADD', KEYS[3], ARGV[12], ARGV[2]); redis.call('EXPIRE', KEYS[3], ARGV[9])
redis.call('HSET', KEYS[6], 'state', 'reserved', 'images', n, 'cost', cost, 'work', ARGV[13],
  'user_day', KEYS[1], 'user_hour', KEYS[2], 'inflight', KEYS[3], 'community_day', KEYS[4], 'budget', KEYS[5])
redis.call('EXPIRE', KEYS[6], ARGV[9])
return {0, 1, 0}
"""

# KEYS: reservation. ARGV: images to give back (refund: all; commit: the ones not delivered), final state.
SETTLE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'reserved' then return 0 end
local r = redis.call('HGETALL', KEYS[1])
local h = {}
for i = 1, #r, 2 do h[r[i]] = r[i + 1] end
local back = math.min(tonumber(ARGV[1]), tonumber(h.images))
if back > 0 then
  for _, key in ipairs({h.user_day, h.user_hour, h.community_day}) do
    if redis.call('EXISTS', key) == 1 then redis.call('DECRBY', key, back) end
  end
  local cost = tonumber(h.cost)
  if cost > 0 and redis.call('EXISTS', h.budget) == 1 then
    redis.call('DECRBY', h.budget, math.floor(cost * back / tonumber(h.images)))
  end
end
redis.call('ZREM', h.inflight, ARGV[3])
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return 1
"""

# KEYS: reservation, today's budget. ARGV: cost and budget limit in 1/10000 USD, ttl.
# Returns 1 charged (or already charged), 0 over budget, -1 no open reservation (quotas off or settled).
CHARGE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'reserved' then return -1 end
if tonumber(redis.call('HGET', KEYS[1], 'cost') or '0') > 0 then return 1 end
local cost = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') + cost > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[2], cost); redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'cost', cost, 'budget', KEYS[2])
return 1
"""
