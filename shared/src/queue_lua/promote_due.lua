-- Moves due jobs from the scheduled set to the active list, at most ARGV[2] at a time.
-- apalis-redis 1.0's fetch promotes *every* due job with one `unpack`, which fails past about
-- 8,000 elements ("too many results to unpack") and then fails on every fetch: a burst of
-- that many jobs would stall the pool for good. Promoting in bounded chunks first keeps the
-- scheduled set small.
-- KEYS[1]: the scheduled set   KEYS[2]: the active list   KEYS[3]: the signal list
-- ARGV[1]: now (unix seconds)  ARGV[2]: chunk size
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
end
return #ids
